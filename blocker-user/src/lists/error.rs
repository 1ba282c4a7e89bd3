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

/// Every message says its cause itself (the io error of `Io` too): none is also a `source()`,
/// or a chain printer (anyhow's `{:#}`) would print it twice.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("{path}: cannot read: {error}", path = path.display())]
    Io { path: PathBuf, error: std::io::Error },
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

impl ListError {
    /// The refusal for logs: places and counts, never the text of a line, which may be an
    /// entry (a list's entries must not leak through logs). The full message goes to whoever
    /// asked.
    pub fn log_line(&self) -> String {
        match self {
            ListError::Io { .. } => self.to_string(),
            ListError::Malformed { path, problem } => {
                let at = problem.at.as_ref().map(|a| format!(":{a}")).unwrap_or_default();
                format!("{}{at}: not a list of its format; nothing from this file was applied", path.display())
            }
            ListError::Invalid { path, errors, total } => {
                const SHOWN: usize = 5;
                let p = path.display();
                let places: Vec<String> = errors.iter().take(SHOWN).map(|e| format!("{p}:{}", e.at)).collect();
                let more = if *total > places.len() { ", ..." } else { "" };
                let what = if errors.iter().any(|e| matches!(e.at, Locus::Json(_))) { "element(s)" } else { "line(s)" };
                format!("{p}: rejected: {total} invalid {what} ({}{more}); nothing from this file was applied", places.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_line_of_a_refused_list_names_places_and_counts_but_no_entry() {
        let line = |n: usize, text: &str| LineError { at: Locus::Line(n), text: text.into(), reason: format!("label {text:?} is not allowed") };
        let e = ListError::Invalid { path: "a.txt".into(), errors: vec![line(2, "bad,site.example"), line(9, "other!.example")], total: 2 };
        assert!(e.to_string().contains("bad,site.example"), "the operator's message shows the line");
        assert_eq!(e.log_line(), "a.txt: rejected: 2 invalid line(s) (a.txt:2, a.txt:9); nothing from this file was applied");
        let many = ListError::Invalid { path: "a.txt".into(), errors: (1..=20).map(|n| line(n, "x!.example")).collect(), total: 31 };
        assert!(many.log_line().starts_with("a.txt: rejected: 31 invalid line(s) (a.txt:1, a.txt:2, a.txt:3, a.txt:4, a.txt:5, ...)"), "{}", many.log_line());
        let header = ListError::Malformed {
            path: "a.csv".into(),
            problem: SourceProblem { at: Some(Locus::Line(1)), reason: "no entry column in \"first.example\"".into() },
        };
        assert_eq!(header.log_line(), "a.csv:1: not a list of its format; nothing from this file was applied");
    }
}
