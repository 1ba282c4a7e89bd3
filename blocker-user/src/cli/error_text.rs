//! How an error reads on the terminal and in logs: the message, then each cause in its chain
//! that the message before it does not already end with. Library errors here put their cause
//! in their own message (`{path}: cannot read: {source}`), so that a report or a log line that
//! shows one message says why; printing the chain as well (`{:#}`) would say it twice.

use std::fmt::Write;

pub fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut last = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !last.is_empty() && last.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        let _ = write!(out, "{text}");
        last = text;
    }
    out
}

#[cfg(test)]
mod tests {
    use std::io;

    use anyhow::Context;

    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("list.txt: cannot read: {source}")]
    struct Unreadable {
        source: io::Error,
    }

    fn missing() -> io::Error {
        io::Error::new(io::ErrorKind::NotFound, "No such file or directory")
    }

    #[test]
    fn a_cause_the_message_already_gives_is_not_said_twice() {
        let e = anyhow::Error::new(Unreadable { source: missing() });
        assert_eq!(format!("{e:#}"), "list.txt: cannot read: No such file or directory: No such file or directory");
        assert_eq!(error_text(&e), "list.txt: cannot read: No such file or directory");
    }

    #[test]
    fn context_and_causes_the_messages_do_not_give_are_all_said() {
        let e = Err::<(), _>(missing()).context("--key").unwrap_err();
        assert_eq!(error_text(&e), "--key: No such file or directory");
        let e = Err::<(), _>(Unreadable { source: missing() }).context("loading the lists").unwrap_err();
        assert_eq!(error_text(&e), "loading the lists: list.txt: cannot read: No such file or directory");
    }
}
