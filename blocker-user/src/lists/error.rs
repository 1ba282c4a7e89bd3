use std::{fmt, path::PathBuf};

use super::entry::Locus;

/// One rejected line (or JSON element) of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub at: Locus,
    pub text: String,
    pub reason: String,
}

/// Most line errors reported for one file; a file with more is clearly not a list.
pub const MAX_REPORTED: usize = 20;

/// Why a whole source was refused before its entries were looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceProblem {
    /// Where, when the problem has a place (a CSV header line, a JSON syntax error).
    pub at: Option<Locus>,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("{path}: cannot read: {source}", path = path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The source as a whole is not a list of this format (no CSV header, not JSON, ...).
    #[error("{path}{at}: {reason}; nothing from this file was applied", path = path.display(), at = problem.at.as_ref().map(|a| format!(":{a}")).unwrap_or_default(), reason = problem.reason)]
    Malformed { path: PathBuf, problem: SourceProblem },
    /// At least one line is invalid; nothing from the file may be applied.
    #[error("{}", InvalidDisplay { path, errors, total: *total })]
    Invalid { path: PathBuf, errors: Vec<LineError>, total: usize },
}

struct InvalidDisplay<'a> {
    path: &'a PathBuf,
    errors: &'a [LineError],
    total: usize,
}

impl fmt::Display for InvalidDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}:{}: {} (in {:?})", e.at, e.reason, e.text)?;
        }
        // A JSON list's bad entries are elements, not lines.
        let what = if self.errors.iter().any(|e| matches!(e.at, Locus::Json(_))) { "element(s)" } else { "line(s)" };
        if self.total > self.errors.len() {
            write!(f, "\n{p}: {} more invalid {what} not shown", self.total - self.errors.len())?;
        }
        write!(f, "\n{p}: rejected: {} invalid {what}; nothing from this file was applied", self.total)
    }
}
