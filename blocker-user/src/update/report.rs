//! What list operations report: to the CLI (human text and `--json`), to logs (counts and
//! places, never entries) and to metrics.

use std::{fmt, time::Duration};

use serde::Serialize;

use crate::{
    datapath::InstallReport,
    lists::{ListDiff, ListSummary, Refusal, SetDiff},
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// A new generation is live.
    Applied { generation: u64 },
    /// The last good generation was loaded from the state directory.
    Restored { generation: u64 },
    /// Nothing changed.
    Unchanged,
    /// Every change was refused: the live set is as it was.
    Refused,
    /// A dry run found changes (nothing was installed).
    DryRun,
}

/// What happened to one list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ListOutcome {
    pub list: String,
    /// `updated`, `unchanged`, `not_modified`, `refused`, `failed`, `restored`, `skipped`.
    pub result: String,
    /// For refused and failed: `signature`, `parse`, `guard`, `oversize`, `rolled_back`, `fetch`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<ListDiff>,
    /// What the logs say instead of `detail`, where that may quote a list's lines.
    #[serde(skip)]
    pub log: Option<String>,
}

impl ListOutcome {
    pub fn note(list: &str, result: &str, detail: &str) -> ListOutcome {
        ListOutcome { list: list.into(), result: result.into(), kind: None, detail: detail.into(), diff: None, log: None }
    }

    /// One line for logs: no entries, only counts and places (error messages cite file:line).
    pub fn log_line(&self) -> String {
        match (&self.diff, self.result.as_str()) {
            (Some(d), _) => format!("list {}: updated: {} -> {} entries (+{} -{})", self.list, d.before, d.after, d.added, d.removed),
            (None, "refused" | "failed") => {
                // Guard and parse refusals print entries to whoever asked; the log gets the
                // summary line, or for a parse refusal only the places.
                let first = self.log.as_deref().unwrap_or_else(|| self.detail.lines().next().unwrap_or(""));
                format!("list {}: {} ({}): {first}", self.list, self.result, self.kind.as_deref().unwrap_or("?"))
            }
            (None, r) => format!("list {}: {r}", self.list),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UpdateReport {
    #[serde(flatten)]
    pub outcome: Outcome,
    pub lists: Vec<ListOutcome>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refusals: Vec<Refusal>,
    pub diff: SetDiff,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub install: Option<InstallReport>,
    #[serde(serialize_with = "millis")]
    pub elapsed: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl UpdateReport {
    pub fn new(outcome: Outcome) -> UpdateReport {
        UpdateReport { outcome, lists: Vec::new(), refusals: Vec::new(), diff: SetDiff::default(), install: None, elapsed: Duration::ZERO }
    }

    pub fn list(&self, name: &str) -> Option<&ListOutcome> {
        self.lists.iter().find(|l| l.list == name)
    }

    /// Whether any list was refused or failed.
    pub fn has_problems(&self) -> bool {
        self.lists.iter().any(|l| l.result == "refused" || l.result == "failed")
    }

    pub fn headline(&self) -> String {
        match &self.outcome {
            Outcome::Applied { generation } => format!("generation {generation} is live ({} ms)", self.elapsed.as_millis()),
            Outcome::Restored { generation } => format!("generation {generation} restored from the state directory"),
            Outcome::Unchanged => "nothing changed; the live generation stays".into(),
            Outcome::Refused => "update refused; the live generation stays".into(),
            Outcome::DryRun => "changes found (dry run: nothing installed)".into(),
        }
    }
}

/// For people: the headline, each list's outcome, and for refusals what would have changed.
impl fmt::Display for UpdateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.headline())?;
        for l in &self.lists {
            match &l.diff {
                Some(d) => {
                    writeln!(f, "  {}", d.headline())?;
                    for s in &d.added_sample {
                        writeln!(f, "    + {s}")?;
                    }
                    for s in &d.removed_sample {
                        writeln!(f, "    - {s}")?;
                    }
                }
                None if l.detail.is_empty() => writeln!(f, "  {}: {}", l.list, l.result)?,
                None => {
                    let kind = l.kind.as_deref().map(|k| format!(" ({k})")).unwrap_or_default();
                    writeln!(f, "  {}: {}{kind}", l.list, l.result)?;
                    for line in l.detail.lines() {
                        writeln!(f, "    {line}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RollbackReport {
    pub from: u64,
    pub to: u64,
    /// The kernel still held the generation: one switch, no reload.
    pub instant: bool,
    #[serde(serialize_with = "millis")]
    pub elapsed: Duration,
}

impl fmt::Display for RollbackReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = if self.instant { "switched back in one step" } else { "installed again" };
        write!(
            f,
            "rolled back from generation {} to {} ({how}); the versions rolled away from are refused until forced",
            self.from, self.to
        )
    }
}

/// The last result for one list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ListStatus {
    pub result: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// Unix seconds of the last success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ok_at: Option<u64>,
}

impl ListStatus {
    pub fn ok(result: &str, at: u64) -> ListStatus {
        ListStatus { result: result.into(), kind: String::new(), detail: String::new(), ok_at: Some(at) }
    }

    pub fn problem(result: &str, kind: &str, detail: &str) -> ListStatus {
        ListStatus { result: result.into(), kind: kind.into(), detail: detail.lines().next().unwrap_or("").into(), ok_at: None }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ListView {
    pub name: String,
    pub source: String,
    pub format: String,
    pub action: String,
    pub shadow: bool,
    pub signed: bool,
    pub entries: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<ListSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetched_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ListStatus>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ListsView {
    pub generation: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installed_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<u64>,
    /// A rollback is one write: the previous generation, which the kernel holds beside the
    /// live one until the next install, is still a generation to switch back to (within the
    /// rollback window).
    pub previous_in_kernel: bool,
    /// For how many more seconds the rollback window lasts; None: until the next update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_kept_secs: Option<u64>,
    pub entries: usize,
    pub lists: Vec<ListView>,
}

impl fmt::Display for ListsView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prev = match (self.previous, self.previous_in_kernel, self.previous_kept_secs) {
            (None, ..) => String::new(),
            (Some(p), true, None) => format!(", previous {p} kept for a one-step rollback"),
            (Some(p), true, Some(s)) => format!(", previous {p} kept for a one-step rollback for {} min more", s.div_ceil(60)),
            (Some(p), false, _) => format!(", previous {p} kept on disk (a rollback installs it again)"),
        };
        writeln!(f, "generation {} live: {} entries{prev}", self.generation, self.entries)?;
        for l in &self.lists {
            let mut flags = vec![l.action.clone(), l.format.clone()];
            if l.shadow {
                flags.push("shadow".into());
            }
            flags.push(if l.signed { "signed".into() } else { "unsigned".into() });
            writeln!(f, "  {:<16} {:>9} entries  [{}]  {}", l.name, l.entries, flags.join(", "), l.source)?;
            if let Some(s) = &l.status {
                let detail = if s.detail.is_empty() { String::new() } else { format!(": {}", s.detail) };
                let kind = if s.kind.is_empty() { String::new() } else { format!(" ({})", s.kind) };
                writeln!(f, "  {:<16} last update: {}{kind}{detail}", "", s.result)?;
            }
        }
        Ok(())
    }
}
