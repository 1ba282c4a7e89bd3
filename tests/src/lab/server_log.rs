//! The log files of the lab's servers (HTTP, TLS, HTTP/3, DNS): one line per event,
//! `kind key=value key=value ...`, appended by the server process while a test reads it. A
//! test counts events in them (a blocked name must never show up as a completed handshake), so
//! reading is forgiving: a missing file is an empty log, and lines a server writes that are
//! not events are skipped by the server's parser.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};

/// One server's log file.
#[derive(Debug)]
pub(crate) struct ServerLog {
    path: PathBuf,
}

impl ServerLog {
    /// Creates (or empties) the file, so that a server started on it starts from no events.
    pub(crate) fn create(path: PathBuf) -> Result<Self> {
        fs::write(&path, "").with_context(|| format!("creating {}", path.display()))?;
        Ok(ServerLog { path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The text so far.
    pub(crate) fn text(&self) -> String {
        fs::read_to_string(&self.path).unwrap_or_default()
    }

    /// The number of lines so far: a mark to read only what came after it.
    pub(crate) fn mark(&self) -> usize {
        self.text().lines().count()
    }

    /// The events so far, by the server's own parser.
    pub(crate) fn events<T>(&self, parse: fn(&str) -> Option<T>) -> Vec<T> {
        self.events_since(0, parse)
    }

    /// The events of the lines after `mark`.
    pub(crate) fn events_since<T>(&self, mark: usize, parse: fn(&str) -> Option<T>) -> Vec<T> {
        self.text().lines().skip(mark).filter_map(parse).collect()
    }
}

/// The value of `key=value` in a log line (values have no spaces, except a quoted request line,
/// which the servers write where no key follows it).
pub(crate) fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!(" {key}=");
    let start = line.find(&needle)? + needle.len();
    let rest = &line[start..];
    Some(rest.split(' ').next().unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_by_whole_key() {
        let line = "query client=192.0.2.2 server=198.51.100.2 name=allowed.example type=A";
        assert_eq!(field(line, "client"), Some("192.0.2.2"));
        assert_eq!(field(line, "type"), Some("A"));
        // `name=` is not the end of `hostname=`, nor is the kind a field.
        assert_eq!(field("x hostname=a.example", "name"), None);
        assert_eq!(field(line, "query"), None);
    }

    #[test]
    fn reads_events_after_a_mark() {
        let dir = std::env::temp_dir().join(format!("blocker-server-log-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let log = ServerLog::create(dir.join("events.log")).unwrap();
        let words = |l: &str| Some(l.split(' ').count());
        assert_eq!(log.mark(), 0);
        fs::write(log.path(), "a b\nc\n").unwrap();
        let mark = log.mark();
        fs::write(log.path(), "a b\nc\nd e f\n").unwrap();
        assert_eq!(log.events(words), [2, 1, 3]);
        assert_eq!(log.events_since(mark, words), [3]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
