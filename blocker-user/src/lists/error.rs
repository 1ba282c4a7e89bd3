use std::{fmt, path::PathBuf};

/// One rejected line of a list file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub text: String,
    pub reason: String,
}

/// Most line errors reported for one file; a file with more is clearly not a list.
pub const MAX_REPORTED: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("{path}: cannot read: {source}", path = path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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
            write!(f, "{p}:{}: {} (in {:?})", e.line, e.reason, e.text)?;
        }
        if self.total > self.errors.len() {
            write!(f, "\n{p}: {} more invalid lines not shown", self.total - self.errors.len())?;
        }
        write!(f, "\n{p}: rejected: {} invalid line(s); nothing from this file was applied", self.total)
    }
}
