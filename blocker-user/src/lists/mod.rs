//! Block and allow lists: parsing, validation, the in-memory set the datapath installs, and the
//! reference matcher that says which entry a name or address meets.
//!
//! List syntax (one entry per line, `#` comments, blank lines ignored; see `parse.rs`):
//! `192.0.2.0/24` or `2001:db8::1` (an address or CIDR), `example.com` (the name and its
//! subdomains), `=example.com` (the name only), `*.example.com` (its subdomains only).

mod diff;
mod entry;
mod error;
mod fetch;
mod format;
mod guard;
mod lookup;
mod name;
mod parse;
mod prefix;
mod set;
mod signature;

pub use diff::{ListDiff, SetDiff, diff_sets};
pub use entry::{Entry, ListKind, Locus, Target};
pub use guard::{Conflict, DEFAULT_MAX_CHANGE_RATIO, Guards, Protected, Refusal, check as check_guards, check_protected};
pub use error::{LineError, ListError, SourceProblem};
pub use fetch::{
    FetchError, FetchLimits, Fetched, MAX_REDIRECTS, SIGNATURE_MAX_BYTES, SIGNATURE_SUFFIX, Source, USER_AGENT, Validators, fetch, fetch_signature,
    signature_source,
};
pub use format::{Format, load_list, load_source, parse_source};
pub use lookup::{Lookup, Match, Query, QueryError, Verdict};
pub use name::{EmptyAt, NameEntry, NameError, NameMode, normalise_name, normalise_query, parse_name_entry};
pub use parse::{
    Collector, EntryError, ListSummary, ParseOptions, ParsedEntry, parse_address_entry, parse_entry, parse_entry_with, parse_list,
    parse_text,
};
pub use prefix::{Prefix, parse_prefix};
pub use set::{ListInfo, ListSet};
pub use signature::{SignatureError, TrustedKey, Verified, verify as verify_signature};
