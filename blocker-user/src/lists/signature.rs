//! Minisign verification of list updates: a list's bytes are checked against a detached
//! `.minisig` with an operator-configured public key before anything parses them.
//!
//! Formats (<https://jedisct1.github.io/minisign/>): a public key is `base64("Ed" || key id (8) ||
//! Ed25519 key (32))`, on its own or as the second line of a `minisign.pub` file after an
//! `untrusted comment:` line. A signature file has four lines: `untrusted comment: …`,
//! `base64(algorithm (2) || key id (8) || signature (64))`, `trusted comment: …`, and
//! `base64(global signature (64))` over the signature and the trusted comment. Algorithm `ED`
//! (what minisign writes by default) signs the BLAKE2b-512 hash of the content, the legacy `Ed`
//! signs the content itself; both are accepted, as `minisign-verify` supports them.
//!
//! Key ids are shown the way minisign prints them: 16 upper-case hex digits, the id's bytes read
//! as a little-endian u64 (`minisign -G` prints the same for the key it makes).

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use thiserror::Error;

/// The public key list updates must be signed with.
#[derive(Clone)]
pub struct TrustedKey {
    key: minisign_verify::PublicKey,
    key_id: [u8; 8],
}

/// What a good signature vouches for: its trusted comment (covered by the signature) and the
/// key that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The text after `trusted comment: ` (minisign puts a timestamp and the file name there).
    pub trusted_comment: String,
    /// The signing key's id, as minisign prints it (16 upper-case hex digits).
    pub key_id: String,
}

#[derive(Debug, Error)]
pub enum SignatureError {
    #[error("signature missing: the signature is empty")]
    Empty,
    #[error("not a minisign signature: {reason}")]
    NotMinisign { reason: String },
    #[error("signed by another key: the signature's key id is {found}, the trusted key's is {expected}")]
    OtherKey { expected: String, found: String },
    #[error("the signature does not match the content (key id {key_id}): the list or its signature was altered")]
    Mismatch { key_id: String },
    #[error("malformed minisign public key: {reason}")]
    KeyMalformed { reason: String },
    /// The io error is in the message, not also the `source()` (anyhow's `{:#}` would print it
    /// twice).
    #[error("cannot read the minisign public key file {}: {error}", path.display())]
    KeyIo { path: PathBuf, error: std::io::Error },
}

/// minisign's algorithm tags: legacy Ed25519 over the content, and Ed25519 over its BLAKE2b-512.
const ALG_LEGACY: [u8; 2] = *b"Ed";
const ALG_PREHASHED: [u8; 2] = *b"ED";
const UNTRUSTED_PREFIX: &str = "untrusted comment:";
const TRUSTED_PREFIX: &str = "trusted comment: ";

fn key_id_hex(id: &[u8; 8]) -> String {
    format!("{:016X}", u64::from_le_bytes(*id))
}

fn decode_base64(line: &str) -> Option<Vec<u8>> {
    BASE64.decode(line.trim()).ok()
}

fn malformed_key(reason: impl Into<String>) -> SignatureError {
    SignatureError::KeyMalformed { reason: reason.into() }
}

impl TrustedKey {
    /// A key from its base64 form (`RWQ…`) or from a `minisign.pub` file's text
    /// (`untrusted comment: …` then the base64 key). Surrounding blank lines and spaces are ignored.
    pub fn parse(text: &str) -> Result<TrustedKey, SignatureError> {
        let mut lines = text.lines().map(str::trim).filter(|line| !line.is_empty());
        let first = lines.next().ok_or_else(|| malformed_key("empty"))?;
        let key_line = if first.starts_with(UNTRUSTED_PREFIX) {
            lines.next().ok_or_else(|| malformed_key("an untrusted comment but no key line after it"))?
        } else {
            first
        };
        if lines.next().is_some() {
            return Err(malformed_key("text after the key line (expected the key alone, or a minisign.pub file)"));
        }
        let bytes = decode_base64(key_line).ok_or_else(|| malformed_key("the key line is not base64"))?;
        if bytes.len() != 42 {
            return Err(malformed_key(format!("{} bytes once decoded, a minisign public key has 42", bytes.len())));
        }
        if bytes[..2] != ALG_LEGACY {
            return Err(malformed_key(format!(
                "algorithm {:?}, a minisign public key has \"Ed\"",
                String::from_utf8_lossy(&bytes[..2])
            )));
        }
        let key = minisign_verify::PublicKey::from_base64(key_line).map_err(|error| malformed_key(error.to_string()))?;
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&bytes[2..10]);
        Ok(TrustedKey { key, key_id })
    }

    /// [`TrustedKey::parse`] of a file's contents (a `minisign.pub`, or the base64 key alone).
    pub fn load(path: &Path) -> Result<TrustedKey, SignatureError> {
        let text = std::fs::read(path).map_err(|error| SignatureError::KeyIo { path: path.to_path_buf(), error })?;
        let text = std::str::from_utf8(&text).map_err(|_| malformed_key(format!("{} is not UTF-8 text", path.display())))?;
        TrustedKey::parse(text).map_err(|error| match error {
            SignatureError::KeyMalformed { reason } => malformed_key(format!("{}: {reason}", path.display())),
            other => other,
        })
    }

    /// The key id as minisign prints it (16 upper-case hex digits).
    pub fn key_id(&self) -> String {
        key_id_hex(&self.key_id)
    }
}

impl fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedKey").field("key_id", &self.key_id()).finish()
    }
}

fn not_minisign(reason: impl Into<String>) -> SignatureError {
    SignatureError::NotMinisign { reason: reason.into() }
}

/// The parts of a signature file checked before the cryptography: structure, algorithm, key id.
fn signature_key_id(text: &str) -> Result<[u8; 8], SignatureError> {
    let mut lines = text.lines();
    let untrusted = lines.next().unwrap_or_default();
    if !untrusted.starts_with(UNTRUSTED_PREFIX) {
        return Err(not_minisign("the first line is not an \"untrusted comment:\""));
    }
    let sig_line = lines.next().ok_or_else(|| not_minisign("no signature line"))?;
    let sig = decode_base64(sig_line).ok_or_else(|| not_minisign("the signature line is not base64"))?;
    if sig.len() != 74 {
        return Err(not_minisign(format!("the signature line holds {} bytes, minisign's holds 74", sig.len())));
    }
    let algorithm = [sig[0], sig[1]];
    if algorithm != ALG_PREHASHED && algorithm != ALG_LEGACY {
        return Err(not_minisign(format!(
            "unsupported signature algorithm {:?} (minisign's are \"ED\" and the legacy \"Ed\")",
            String::from_utf8_lossy(&algorithm)
        )));
    }
    let trusted = lines.next().ok_or_else(|| not_minisign("no trusted comment line"))?;
    if !trusted.starts_with(TRUSTED_PREFIX) {
        return Err(not_minisign("the third line is not a \"trusted comment: \""));
    }
    let global = lines.next().ok_or_else(|| not_minisign("no global signature line"))?;
    match decode_base64(global) {
        Some(global) if global.len() == 64 => {}
        Some(global) => return Err(not_minisign(format!("the global signature holds {} bytes, minisign's holds 64", global.len()))),
        None => return Err(not_minisign("the global signature line is not base64")),
    }
    if lines.any(|line| !line.trim().is_empty()) {
        return Err(not_minisign("text after the global signature"));
    }
    let mut key_id = [0u8; 8];
    key_id.copy_from_slice(&sig[2..10]);
    Ok(key_id)
}

/// Checks that `signature` (a `.minisig` file's bytes) is `key`'s signature of exactly `body`,
/// trusted comment included. Nothing in `body` is looked at beyond hashing it.
pub fn verify(key: &TrustedKey, body: &[u8], signature: &[u8]) -> Result<Verified, SignatureError> {
    if signature.iter().all(u8::is_ascii_whitespace) {
        return Err(SignatureError::Empty);
    }
    let text = std::str::from_utf8(signature).map_err(|_| not_minisign("not UTF-8 text"))?;
    let text = text.trim_start_matches('\u{feff}');
    let found = signature_key_id(text)?;
    if found != key.key_id {
        return Err(SignatureError::OtherKey { expected: key.key_id(), found: key_id_hex(&found) });
    }
    let decoded = minisign_verify::Signature::decode(text).map_err(|error| not_minisign(error.to_string()))?;
    match key.key.verify(body, &decoded, true) {
        Ok(()) => Ok(Verified { trusted_comment: decoded.trusted_comment().to_string(), key_id: key.key_id() }),
        Err(minisign_verify::Error::InvalidSignature) => Err(SignatureError::Mismatch { key_id: key.key_id() }),
        Err(minisign_verify::Error::UnexpectedKeyId) => {
            Err(SignatureError::OtherKey { expected: key.key_id(), found: key_id_hex(&found) })
        }
        Err(error) => Err(not_minisign(error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A legacy ("Ed") signature of `test`, from minisign-verify's own tests.
    const LEGACY_KEY: &str = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";
    const LEGACY_SIG: &str = "untrusted comment: signature from minisign secret key
RWQf6LRCGA9i59SLOFxz6NxvASXDJeRtuZykwQepbDEGt87ig1BNpWaVWuNrm73YiIiJbq71Wi+dP9eKL8OC351vwIasSSbXxwA=
trusted comment: timestamp:1555779966\tfile:test
QtKMXWyYcwdpZAlPF7tE2ENJkRd1ujvKjlj1m9RtHTBnZPa5WKU5uWRs5GoP5M/VqE81QFuMKI5k/SfNQUaOAA==
";

    struct Signer {
        public: minisign::PublicKey,
        secret: minisign::SecretKey,
    }

    impl Signer {
        fn new() -> Signer {
            let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
            Signer { public: pair.pk, secret: pair.sk }
        }
        fn key(&self) -> TrustedKey {
            TrustedKey::parse(&self.public.to_base64()).unwrap()
        }
        fn sign(&self, body: &[u8], comment: &str) -> Vec<u8> {
            minisign::sign(Some(&self.public), &self.secret, std::io::Cursor::new(body), Some(comment), None)
                .unwrap()
                .into_string()
                .into_bytes()
        }
    }

    #[test]
    fn key_parses_from_base64_and_pub_file() {
        let signer = Signer::new();
        let base64 = signer.public.to_base64();
        let file = signer.public.to_box().unwrap().into_string();
        let a = TrustedKey::parse(&base64).unwrap();
        let b = TrustedKey::parse(&file).unwrap();
        let c = TrustedKey::parse(&format!("\n  {base64}  \n\n")).unwrap();
        let d = TrustedKey::parse(&file.replace('\n', "\r\n")).unwrap();
        assert_eq!(a.key_id(), b.key_id());
        assert_eq!(a.key_id(), c.key_id());
        assert_eq!(a.key_id(), d.key_id());
        // minisign.pub names the key id in its comment, in the same form.
        assert!(file.lines().next().unwrap().ends_with(&a.key_id()), "{file} vs {}", a.key_id());
        assert_eq!(a.key_id().len(), 16);
        assert!(format!("{a:?}").contains(&a.key_id()));
    }

    #[test]
    fn key_load_reads_a_file() {
        let signer = Signer::new();
        let dir = std::env::temp_dir().join(format!("blocker-sigkey-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("minisign.pub");
        std::fs::write(&path, signer.public.to_box().unwrap().into_string()).unwrap();
        assert_eq!(TrustedKey::load(&path).unwrap().key_id(), signer.key().key_id());
        let missing = dir.join("missing.pub");
        let err = TrustedKey::load(&missing).unwrap_err();
        assert!(matches!(err, SignatureError::KeyIo { .. }), "{err}");
        assert!(err.to_string().contains("missing.pub"), "{err}");
        let chained = format!("{:#}", anyhow::Error::new(err));
        assert_eq!(chained.matches("No such file or directory").count(), 1, "printed once: {chained}");
        std::fs::write(&path, "untrusted comment: nothing else\n").unwrap();
        let err = TrustedKey::load(&path).unwrap_err();
        assert!(err.to_string().contains("minisign.pub"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn malformed_keys_are_refused() {
        for (text, want) in [
            ("", "empty"),
            ("untrusted comment: x", "no key line"),
            ("not base64!", "not base64"),
            ("RWQf6LRCGA9i5w==", "42"),
            (&format!("{LEGACY_KEY}\n{LEGACY_KEY}"), "text after the key line"),
            // A valid signature line is base64 of the right kind but not a key.
            ("RWQf6LRCGA9i59SLOFxz6NxvASXDJeRtuZykwQepbDEGt87ig1BNpWaVWuNrm73YiIiJbq71Wi+dP9eKL8OC351vwIasSSbXxwA=", "42"),
        ] {
            let err = TrustedKey::parse(text).unwrap_err();
            assert!(matches!(err, SignatureError::KeyMalformed { .. }), "{text:?}: {err}");
            assert!(err.to_string().contains(want), "{text:?}: {err}");
            assert!(err.to_string().starts_with("malformed minisign public key"), "{err}");
        }
        // Right length, wrong algorithm tag.
        let mut bytes = BASE64.decode(LEGACY_KEY).unwrap();
        bytes[1] = b'X';
        let err = TrustedKey::parse(&BASE64.encode(&bytes)).unwrap_err();
        assert!(err.to_string().contains("algorithm"), "{err}");
    }

    #[test]
    fn good_prehashed_signature_verifies() {
        let signer = Signer::new();
        let body = b"192.0.2.0/24\nexample.com\n";
        let sig = signer.sign(body, "timestamp:1700000000\tfile:court.list");
        let verified = verify(&signer.key(), body, &sig).unwrap();
        assert_eq!(verified.trusted_comment, "timestamp:1700000000\tfile:court.list");
        assert_eq!(verified.key_id, signer.key().key_id());
        // CRLF line ends (a signature that went through a Windows editor) still verify.
        let crlf = String::from_utf8(sig).unwrap().replace('\n', "\r\n");
        verify(&signer.key(), body, crlf.as_bytes()).unwrap();
    }

    #[test]
    fn legacy_signature_verifies() {
        let key = TrustedKey::parse(LEGACY_KEY).unwrap();
        let verified = verify(&key, b"test", LEGACY_SIG.as_bytes()).unwrap();
        assert_eq!(verified.trusted_comment, "timestamp:1555779966\tfile:test");
        let err = verify(&key, b"test!", LEGACY_SIG.as_bytes()).unwrap_err();
        assert!(matches!(err, SignatureError::Mismatch { .. }), "{err}");
    }

    #[test]
    fn tampered_body_or_comment_is_refused() {
        let signer = Signer::new();
        let body = b"example.com\n";
        let sig = signer.sign(body, "timestamp:1");
        let err = verify(&signer.key(), b"example.org\n", &sig).unwrap_err();
        assert!(matches!(err, SignatureError::Mismatch { .. }), "{err}");
        assert!(err.to_string().contains("does not match the content"), "{err}");
        assert!(err.to_string().contains(&signer.key().key_id()), "{err}");
        // The trusted comment is covered too.
        let text = String::from_utf8(sig).unwrap().replace("timestamp:1", "timestamp:2");
        let err = verify(&signer.key(), body, text.as_bytes()).unwrap_err();
        assert!(matches!(err, SignatureError::Mismatch { .. }), "{err}");
    }

    #[test]
    fn another_keys_signature_is_refused_with_both_ids() {
        let trusted = Signer::new();
        let other = Signer::new();
        let body = b"example.com\n";
        let err = verify(&trusted.key(), body, &other.sign(body, "c")).unwrap_err();
        match &err {
            SignatureError::OtherKey { expected, found } => {
                assert_eq!(expected, &trusted.key().key_id());
                assert_eq!(found, &other.key().key_id());
            }
            other => panic!("{other}"),
        }
        let message = err.to_string();
        assert!(message.contains("signed by another key"), "{message}");
        assert!(message.contains(&trusted.key().key_id()) && message.contains(&other.key().key_id()), "{message}");
    }

    #[test]
    fn empty_and_garbage_signatures_are_refused() {
        let signer = Signer::new();
        for empty in [&b""[..], b"\n", b"  \r\n"] {
            let err = verify(&signer.key(), b"x", empty).unwrap_err();
            assert!(matches!(err, SignatureError::Empty), "{err}");
            assert!(err.to_string().contains("signature missing"), "{err}");
        }
        let good = String::from_utf8(signer.sign(b"x", "c")).unwrap();
        let lines: Vec<&str> = good.lines().collect();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"<html>404 Not Found</html>".to_vec(), "untrusted comment"),
            (vec![0xff, 0xfe, 0x00], "UTF-8"),
            (lines[..2].join("\n").into_bytes(), "no trusted comment"),
            (format!("{}\n!!!\n{}\n{}", lines[0], lines[2], lines[3]).into_bytes(), "not base64"),
            (format!("{}\nRWQf6LRCGA9i5w==\n{}\n{}", lines[0], lines[2], lines[3]).into_bytes(), "74"),
            (format!("{}\n{}\nno comment\n{}", lines[0], lines[1], lines[3]).into_bytes(), "trusted comment"),
            (format!("{}\n{}\n{}\nAAAA", lines[0], lines[1], lines[2]).into_bytes(), "global signature"),
            (format!("{good}extra\n").into_bytes(), "after the global signature"),
        ];
        for (sig, want) in cases {
            let err = verify(&signer.key(), b"x", &sig).unwrap_err();
            assert!(matches!(err, SignatureError::NotMinisign { .. }), "{want}: {err}");
            assert!(err.to_string().starts_with("not a minisign signature"), "{err}");
            assert!(err.to_string().contains(want), "{want}: {err}");
        }
        // An unknown algorithm tag.
        let mut raw = BASE64.decode(lines[1]).unwrap();
        raw[1] = b'Z';
        let sig = format!("{}\n{}\n{}\n{}\n", lines[0], BASE64.encode(&raw), lines[2], lines[3]);
        let err = verify(&signer.key(), b"x", sig.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("unsupported signature algorithm"), "{err}");
    }
}
