//! Pulling one list: fetch (conditionally), fetch and verify its signature before a byte of
//! it is parsed, then parse it in its format.

use std::{
    fmt,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use sha2::{Digest, Sha256};

use super::spec::ListSpec;
use crate::lists::{
    FetchError, Fetched, ListError, ListSummary, ParsedEntry, SignatureError, TrustedKey, Validators, Verified, fetch, fetch_signature,
    parse_source, verify_signature,
};

/// One version of one list as received: the bytes that were verified, and what is needed to
/// ask for the next one.
#[derive(Clone, PartialEq, Eq)]
pub struct Version {
    /// The source it came from, for people (a URL's password masked).
    pub source: String,
    pub body: Arc<Vec<u8>>,
    pub signature: Option<Arc<Vec<u8>>>,
    /// SHA-256 of the body, hex.
    pub digest: String,
    pub validators: Validators,
    /// Unix seconds.
    pub fetched_at: u64,
}

impl fmt::Debug for Version {
    /// Sizes and digest, never the list.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Version")
            .field("source", &self.source)
            .field("bytes", &self.body.len())
            .field("digest", &self.digest)
            .field("signed", &self.signature.is_some())
            .finish()
    }
}

pub fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// What a pull brought.
#[derive(Debug)]
pub enum Pulled {
    NotModified,
    Fetched(Version),
}

/// Why a pull brought nothing usable. The list's last good version stays live.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("{0}")]
    Fetch(FetchError),
    #[error("{0}: update rejected, no signature")]
    NoSignature(FetchError),
    #[error("{at}: signature rejected: {error}")]
    Signature { at: String, error: SignatureError },
    #[error("{list}: signed updates are required but no key is configured")]
    NoKey { list: String },
}

impl PullError {
    /// A short word for the kind of failure, for reports and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            PullError::Fetch(FetchError::TooLarge { .. } | FetchError::DeclaredTooLarge { .. }) => "oversize",
            PullError::Fetch(_) => "fetch",
            PullError::NoSignature(_) | PullError::Signature { .. } | PullError::NoKey { .. } => "signature",
        }
    }
}

/// Pulls `spec`'s source. With `previous` validators the request is conditional. For a
/// signed list the signature is fetched and checked before the body is returned.
pub fn pull(spec: &ListSpec, key: Option<&TrustedKey>, previous: &Validators) -> Result<Pulled, PullError> {
    let (bytes, validators) = match fetch(&spec.source, previous, &spec.limits).map_err(PullError::Fetch)? {
        Fetched::NotModified => return Ok(Pulled::NotModified),
        Fetched::Body { bytes, validators } => (bytes, validators),
    };
    let mut v = Version {
        source: spec.source.to_string(),
        digest: digest(&bytes),
        body: Arc::new(bytes),
        signature: None,
        validators,
        fetched_at: now(),
    };
    if let Some(sig_source) = &spec.signature {
        let sig = fetch_signature(sig_source, &spec.limits).map_err(|e| match e {
            e @ FetchError::NoSignature { .. } => PullError::NoSignature(e),
            e => PullError::Fetch(e),
        })?;
        v.signature = Some(Arc::new(sig));
        verify(spec, key, &v)?;
    }
    Ok(Pulled::Fetched(v))
}

/// Checks a version's signature against the key (a no-op for unsigned lists).
pub fn verify(spec: &ListSpec, key: Option<&TrustedKey>, v: &Version) -> Result<Option<Verified>, PullError> {
    if !spec.is_signed() {
        return Ok(None);
    }
    let key = key.ok_or_else(|| PullError::NoKey { list: spec.name.clone() })?;
    let sig = v.signature.as_deref().map(Vec::as_slice).unwrap_or(&[]);
    verify_signature(key, &v.body, sig).map(Some).map_err(|error| PullError::Signature { at: v.source.clone(), error })
}

/// Parses a version in its list's format and defaults. Errors cite `source:line`.
pub fn parse(spec: &ListSpec, v: &Version) -> Result<(Vec<ParsedEntry>, ListSummary), ListError> {
    parse_source(std::path::Path::new(&v.source), &v.body, spec.format, &spec.options)
}
