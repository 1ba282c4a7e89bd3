//! Block and allow lists: parsing, validation, and the in-memory set the datapath installs.

mod error;
mod prefix;
mod set;

pub use error::{LineError, ListError};
pub use prefix::{Prefix, parse_prefix};
pub use set::{Entry, ListKind, ListSet, ListSummary, load_list, parse_list};
