//! A test-only minisign signer: a fresh key pair per [`TestSigner`], so tests sign the lists they
//! serve at run time instead of shipping fixture keys and signatures.
//!
//! The output is what the `minisign` tool writes: [`TestSigner::public_key_file`] is a
//! `minisign.pub` file, [`TestSigner::sign`] a `.minisig` file with a pre-hashed ("ED")
//! signature. The secret key lives only in memory and is never written anywhere.
//!
//! This file depends on nothing but `minisign` and `std`: blocker-user's integration tests
//! include it by path (blocker-user cannot depend on this crate, which depends on it).

use std::io::Cursor;

use minisign::{KeyPair, PublicKey, SecretKey};

/// An in-memory minisign key pair for signing test lists.
pub struct TestSigner {
    public: PublicKey,
    secret: SecretKey,
}

impl Default for TestSigner {
    fn default() -> Self {
        Self::new()
    }
}

impl TestSigner {
    /// A fresh random key pair (no password).
    pub fn new() -> Self {
        let KeyPair { pk, sk } = KeyPair::generate_unencrypted_keypair().expect("generate a minisign key pair");
        TestSigner { public: pk, secret: sk }
    }

    /// The public key alone, as `minisign -P` takes it: `RWQ…` (56 base64 characters).
    pub fn public_key_base64(&self) -> String {
        self.public.to_base64()
    }

    /// The public key as a `minisign.pub` file: `untrusted comment: minisign public key: <ID>`,
    /// then the base64 key, each line ending in a newline.
    pub fn public_key_file(&self) -> String {
        self.public.to_box().expect("encode the public key").into_string()
    }

    /// The key id as minisign prints it: 16 upper-case hex digits (the id's bytes read as a
    /// little-endian u64).
    pub fn key_id_hex(&self) -> String {
        let id: [u8; 8] = self.public.keynum().try_into().expect("an 8-byte key id");
        format!("{:016X}", u64::from_le_bytes(id))
    }

    /// A detached `.minisig` for `body`: pre-hashed ("ED") Ed25519 over BLAKE2b-512 of the body,
    /// with `trusted_comment` covered by the global signature.
    pub fn sign(&self, body: &[u8], trusted_comment: &str) -> Vec<u8> {
        let signature = minisign::sign(Some(&self.public), &self.secret, Cursor::new(body), Some(trusted_comment), None)
            .expect("sign with minisign");
        signature.into_string().into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_with_the_public_key() {
        let signer = TestSigner::new();
        let body = b"192.0.2.0/24\nexample.com\n";
        let sig = signer.sign(body, "timestamp:1 file:test.list");
        let text = String::from_utf8(sig).unwrap();
        assert!(text.starts_with("untrusted comment: "), "{text}");
        assert!(text.contains("\ntrusted comment: timestamp:1 file:test.list\n"), "{text}");

        let pk = PublicKey::from_base64(&signer.public_key_base64()).unwrap();
        let sig_box = minisign::SignatureBox::from_string(&text).unwrap();
        minisign::verify(&pk, &sig_box, Cursor::new(&body[..]), true, false, false).unwrap();
        assert!(minisign::verify(&pk, &sig_box, Cursor::new(&b"tampered"[..]), true, false, false).is_err());
    }

    #[test]
    fn public_key_file_has_comment_and_key() {
        let signer = TestSigner::new();
        let file = signer.public_key_file();
        let lines: Vec<&str> = file.lines().collect();
        assert_eq!(lines.len(), 2, "{file}");
        assert!(lines[0].starts_with("untrusted comment: "), "{file}");
        assert!(lines[0].ends_with(&signer.key_id_hex()), "{file}");
        assert_eq!(lines[1], signer.public_key_base64());
        assert!(lines[1].starts_with("RWQ") || lines[1].starts_with("RW"), "{file}");
        assert_ne!(TestSigner::new().public_key_base64(), signer.public_key_base64());
    }
}
