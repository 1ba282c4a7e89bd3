//! The lab's self-signed certificates, made with the `openssl` command line (no crypto crate in
//! the lab library): one certificate covers every lab name, so one server answers for all of
//! them; Chromium trusts it by its SPKI pin.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context, Result, bail};

use super::{TLS_NAMES, cmd::run_checked};

/// How long one `openssl` step may take.
const OPENSSL_TIMEOUT: Duration = Duration::from_secs(10);

/// A self-signed P-256 certificate for every name in [`TLS_NAMES`] and `*.example`, subject
/// `/CN=<common_name>`, as `<dir>/<prefix>_cert.pem` and `<dir>/<prefix>_key.pem`: each server
/// has files of its own (another server's may exist next to them). Made once per lab
/// directory. Returns (certificate, key).
pub(crate) fn make_certificate(
    dir: &Path,
    prefix: &str,
    common_name: &str,
) -> Result<(PathBuf, PathBuf)> {
    let cert = dir.join(format!("{prefix}_cert.pem"));
    let key = dir.join(format!("{prefix}_key.pem"));
    if cert.is_file() && key.is_file() {
        return Ok((cert, key));
    }
    let mut cmd = Command::new("openssl");
    cmd.args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
    ])
    .args([
        "-nodes",
        "-days",
        "30",
        "-subj",
        &format!("/CN={common_name}"),
    ])
    .arg("-keyout")
    .arg(&key)
    .arg("-out")
    .arg(&cert)
    .args([
        "-addext",
        &format!("subjectAltName={}", subject_alt_names()),
    ]);
    openssl(cmd, &format!("making the lab's {prefix} certificate"))?;
    Ok((cert, key))
}

/// `DNS:*.example,DNS:blocked.example,...`: every lab name, and any other under `example`.
fn subject_alt_names() -> String {
    std::iter::once("DNS:*.example".to_string())
        .chain(TLS_NAMES.iter().map(|n| format!("DNS:{n}")))
        .collect::<Vec<_>>()
        .join(",")
}

/// `openssl x509 -pubkey | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary`,
/// base64: the SPKI pin of `cert` (what Chromium's `--ignore-certificate-errors-spki-list`
/// takes). The intermediate files go next to the certificate.
pub(crate) fn spki_sha256_base64(cert: &Path) -> Result<String> {
    let public = cert.with_extension("pub.pem");
    let der = cert.with_extension("pub.der");
    let mut cmd = Command::new("openssl");
    cmd.args(["x509", "-noout", "-pubkey", "-in"])
        .arg(cert)
        .arg("-out")
        .arg(&public);
    openssl(cmd, "reading the certificate's public key")?;
    let mut cmd = Command::new("openssl");
    cmd.args(["pkey", "-pubin", "-outform", "der", "-in"])
        .arg(&public)
        .arg("-out")
        .arg(&der);
    openssl(cmd, "encoding the public key as DER")?;
    let mut cmd = Command::new("openssl");
    cmd.args(["dgst", "-sha256", "-binary"]).arg(&der);
    let digest = openssl(cmd, "hashing the public key")?;
    if digest.len() != 32 {
        bail!("openssl dgst -sha256 -binary gave {} bytes", digest.len());
    }
    Ok(base64(&digest))
}

/// Runs one `openssl` step within [`OPENSSL_TIMEOUT`]; its stdout, or an error saying which
/// step failed and why.
fn openssl(cmd: Command, what: &str) -> Result<Vec<u8>> {
    run_checked(cmd, OPENSSL_TIMEOUT).with_context(|| what.to_string())
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn the_certificate_names_every_lab_name() {
        let san = subject_alt_names();
        assert!(san.starts_with("DNS:*.example,"));
        for name in TLS_NAMES {
            assert!(san.split(',').any(|n| n == format!("DNS:{name}")), "{name}");
        }
    }
}
