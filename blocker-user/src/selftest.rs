//! The conformance self-test: the corpus of `tests/conformance/` (captures with the verdict
//! each frame must get) run through the real XDP program with BPF_PROG_TEST_RUN, exactly as
//! `blocker replay` runs a capture. `blocker selftest` prints the result as a table an operator
//! can file with a list body.
//!
//! The corpus is embedded in the binary (`tests/conformance/embedded.rs`, written by the
//! generator with the rest of the corpus), so an installed appliance can test itself without
//! the repository; [`Corpus::from_dir`] reads another corpus of the same format
//! (tests/conformance/README.md).
//!
//! Each case runs on a freshly loaded program (empty flow table, the corpus lists installed,
//! DNS answering as `blocker run` and `blocker replay` default to: NXDOMAIN with an Extended
//! DNS Error), so no case sees another's flow state.

use std::{
    collections::BTreeMap,
    io::Cursor,
    path::{Path, PathBuf},
};

use blocker_common::verdict::{Action, Reason};
use serde::{Deserialize, Serialize};

use crate::{
    capture,
    datapath::{Datapath, DatapathError, DnsPolicy, Options, fingerprint},
    lists::{ListError, ListKind, ListSet, parse_list},
    replay,
};

/// The manifest format this build reads (`format` in corpus.toml).
pub const FORMAT: u32 = 1;

/// Every file of the corpus in tests/conformance, as (path, bytes).
static EMBEDDED: &[(&str, &[u8])] = include!("../../tests/conformance/embedded.rs");

#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("{path}: cannot read: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {detail}")]
    Manifest { path: String, detail: String },
    #[error(transparent)]
    Capture(#[from] capture::CaptureError),
    #[error(transparent)]
    List(#[from] ListError),
}

#[derive(Debug, thiserror::Error)]
pub enum SelftestError {
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    #[error("{case}: {source}")]
    Datapath { case: String, source: Box<DatapathError> },
}

/// A corpus read and checked: every capture read, every expectation naming a real reason and
/// verdict, one expectation per frame.
#[derive(Clone, Debug)]
pub struct Corpus {
    /// Where it came from: "embedded" or the directory.
    pub source: String,
    /// List files as (path inside the corpus, text).
    pub block: Vec<(String, String)>,
    pub allow: Vec<(String, String)>,
    pub groups: Vec<Group>,
}

#[derive(Clone, Debug)]
pub struct Group {
    pub name: String,
    pub title: String,
    pub cases: Vec<Case>,
}

#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub capture: String,
    pub covers: String,
    pub description: String,
    /// A documented limit: the case records listed traffic that passes (fail open).
    pub limit: bool,
    pub frames: Vec<Vec<u8>>,
    pub expect: Vec<Expected>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    pub reason: String,
    pub verdict: String,
    #[serde(default)]
    pub note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CorpusManifest {
    format: u32,
    #[serde(default)]
    block: Vec<String>,
    #[serde(default)]
    allow: Vec<String>,
    groups: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupManifest {
    #[serde(default)]
    title: String,
    #[serde(default, rename = "case")]
    cases: Vec<CaseManifest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseManifest {
    name: String,
    capture: String,
    #[serde(default)]
    covers: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    limit: bool,
    frames: Vec<Expected>,
}

enum Source<'a> {
    Embedded(&'a [(&'a str, &'a [u8])]),
    Dir(PathBuf),
}

impl Source<'_> {
    fn bytes(&self, path: &str) -> Result<Vec<u8>, CorpusError> {
        match self {
            Source::Embedded(files) => files.iter().find(|(p, _)| *p == path).map(|(_, b)| b.to_vec()).ok_or_else(|| CorpusError::Io {
                path: path.to_string(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "not in the embedded corpus"),
            }),
            Source::Dir(root) => {
                let p = root.join(path);
                std::fs::read(&p).map_err(|source| CorpusError::Io { path: p.display().to_string(), source })
            }
        }
    }

    fn text(&self, path: &str) -> Result<String, CorpusError> {
        String::from_utf8(self.bytes(path)?).map_err(|e| CorpusError::Manifest { path: self.name(path), detail: format!("not UTF-8: {e}") })
    }

    fn frames(&self, path: &str) -> Result<Vec<Vec<u8>>, CorpusError> {
        match self {
            Source::Embedded(_) => {
                pcap_frames(&self.bytes(path)?).map_err(|detail| CorpusError::Manifest { path: path.to_string(), detail })
            }
            Source::Dir(root) => Ok(capture::read_frames(&root.join(path))?.into_iter().map(|f| f.data).collect()),
        }
    }

    fn name(&self, path: &str) -> String {
        match self {
            Source::Embedded(_) => path.to_string(),
            Source::Dir(root) => root.join(path).display().to_string(),
        }
    }
}

/// Frames of a classic pcap held in memory (what the generator writes).
fn pcap_frames(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut r = pcap_file::pcap::PcapReader::new(Cursor::new(bytes)).map_err(|e| e.to_string())?;
    if r.header().datalink != pcap_file::DataLink::ETHERNET {
        return Err(format!("a {:?} capture; only Ethernet can be replayed", r.header().datalink));
    }
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        out.push(p.map_err(|e| e.to_string())?.data.into_owned());
    }
    Ok(out)
}

fn toml_from<T: for<'de> Deserialize<'de>>(source: &Source, path: &str) -> Result<T, CorpusError> {
    toml::from_str(&source.text(path)?).map_err(|e| CorpusError::Manifest { path: source.name(path), detail: e.to_string() })
}

impl Corpus {
    /// The corpus built into this binary (tests/conformance at build time).
    pub fn embedded() -> Result<Corpus, CorpusError> {
        Self::load(Source::Embedded(EMBEDDED), "embedded".to_string())
    }

    /// A corpus directory: `corpus.toml`, the list files it names, and per group
    /// `<group>/cases.toml` with the captures (pcap or pcapng) its cases name.
    pub fn from_dir(dir: &Path) -> Result<Corpus, CorpusError> {
        Self::load(Source::Dir(dir.to_path_buf()), dir.display().to_string())
    }

    /// The embedded files themselves, (path, bytes), as tests/conformance held them at build time.
    pub fn embedded_files() -> &'static [(&'static str, &'static [u8])] {
        EMBEDDED
    }

    fn load(source: Source, name: String) -> Result<Corpus, CorpusError> {
        let top: CorpusManifest = toml_from(&source, "corpus.toml")?;
        if top.format != FORMAT {
            return Err(CorpusError::Manifest {
                path: source.name("corpus.toml"),
                detail: format!("format {} (this blocker reads format {FORMAT})", top.format),
            });
        }
        let read_lists = |paths: &[String]| -> Result<Vec<(String, String)>, CorpusError> {
            paths.iter().map(|p| Ok((p.clone(), source.text(p)?))).collect()
        };
        let block = read_lists(&top.block)?;
        let allow = read_lists(&top.allow)?;
        let mut groups = Vec::new();
        for g in &top.groups {
            let manifest_path = format!("{g}/cases.toml");
            let manifest: GroupManifest = toml_from(&source, &manifest_path)?;
            let mut cases = Vec::new();
            for c in manifest.cases {
                let capture = format!("{g}/{}", c.capture);
                let frames = source.frames(&capture)?;
                let bad = |detail: String| CorpusError::Manifest {
                    path: source.name(&manifest_path),
                    detail: format!("case {}: {detail}", c.name),
                };
                if frames.len() != c.frames.len() {
                    return Err(bad(format!("{} holds {} frames but {} are expected", c.capture, frames.len(), c.frames.len())));
                }
                for (i, e) in c.frames.iter().enumerate() {
                    if !Reason::ALL.iter().any(|r| r.name() == e.reason) {
                        return Err(bad(format!("frame {}: no reason named {:?}", i + 1, e.reason)));
                    }
                    if !Action::ALL.iter().any(|a| a.name() == e.verdict) {
                        return Err(bad(format!("frame {}: no verdict named {:?}", i + 1, e.verdict)));
                    }
                }
                cases.push(Case {
                    name: c.name,
                    capture: c.capture,
                    covers: c.covers,
                    description: c.description,
                    limit: c.limit,
                    frames,
                    expect: c.frames,
                });
            }
            groups.push(Group { name: g.clone(), title: manifest.title, cases });
        }
        let corpus = Corpus { source: name, block, allow, groups };
        corpus.list_set()?;
        Ok(corpus)
    }

    /// The corpus lists as one set, as `blocker replay --list … --allow …` loads them.
    pub fn list_set(&self) -> Result<ListSet, ListError> {
        let mut set = ListSet::new();
        for (kind, files) in [(ListKind::Block, &self.block), (ListKind::Allow, &self.allow)] {
            for (path, text) in files {
                let (parsed, _) = parse_list(Path::new(path), text, kind)?;
                set.add_parsed(Path::new(path), parsed);
            }
        }
        Ok(set)
    }

    pub fn cases(&self) -> impl Iterator<Item = (&Group, &Case)> {
        self.groups.iter().flat_map(|g| g.cases.iter().map(move |c| (g, c)))
    }

    pub fn frame_count(&self) -> usize {
        self.cases().map(|(_, c)| c.frames.len()).sum()
    }
}

/// One frame whose verdict differs from the expectation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    /// 1-based, as in the capture.
    pub frame: usize,
    pub expected: Expected,
    /// What the program counted (None: not exactly one counter moved).
    pub reason: Option<String>,
    pub verdict: Option<String>,
    pub action: String,
    pub summary: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    pub group: String,
    pub case: String,
    pub frames: usize,
    pub passed: bool,
    pub limit: bool,
    pub covers: String,
    pub description: String,
    pub mismatches: Vec<Mismatch>,
}

impl CaseResult {
    pub fn id(&self) -> String {
        format!("{}/{}", self.group, self.case)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub passed: bool,
    /// `blocker <version>`.
    pub binary: String,
    /// The fingerprint of the XDP program built into this binary (as `blocker status` shows).
    pub program: String,
    /// `uname -r`.
    pub kernel: String,
    /// When the run started, UTC, RFC 3339.
    pub timestamp: String,
    pub corpus: String,
    pub cases_total: usize,
    pub cases_passed: usize,
    pub frames_total: usize,
    pub frames_passed: usize,
    pub cases: Vec<CaseResult>,
}

/// Runs one case on a freshly loaded program with the corpus lists installed.
pub fn run_case(set: &ListSet, group: &Group, case: &Case) -> Result<CaseResult, SelftestError> {
    let id = format!("{}/{}", group.name, case.name);
    let err = |source| SelftestError::Datapath { case: id.clone(), source: Box::new(source) };
    let mut dp = Datapath::load(Options::default()).map_err(err)?;
    dp.set_dns(&DnsPolicy::default()).map_err(err)?;
    dp.install(set).map_err(err)?;
    let mut mismatches = Vec::new();
    for (i, (frame, e)) in case.frames.iter().zip(&case.expect).enumerate() {
        let (line, _) = replay::replay_frame(&dp, i + 1, frame).map_err(err)?;
        if line.reason != Some(e.reason.as_str()) || line.verdict != Some(e.verdict.as_str()) {
            mismatches.push(Mismatch {
                frame: i + 1,
                expected: e.clone(),
                reason: line.reason.map(str::to_string),
                verdict: line.verdict.map(str::to_string),
                action: line.action.name().to_string(),
                summary: line.summary,
            });
        }
    }
    Ok(CaseResult {
        group: group.name.clone(),
        case: case.name.clone(),
        frames: case.frames.len(),
        passed: mismatches.is_empty(),
        limit: case.limit,
        covers: case.covers.clone(),
        description: case.description.clone(),
        mismatches,
    })
}

/// Runs every case in order; `progress` sees each result as it comes.
pub fn run(corpus: &Corpus, mut progress: impl FnMut(&CaseResult)) -> Result<Report, SelftestError> {
    let timestamp = rfc3339_utc(std::time::SystemTime::now());
    let set = corpus.list_set().map_err(CorpusError::from)?;
    let mut cases = Vec::new();
    for (g, c) in corpus.cases() {
        let r = run_case(&set, g, c)?;
        progress(&r);
        cases.push(r);
    }
    let frames_total = cases.iter().map(|c| c.frames).sum();
    let frames_passed = frames_total - cases.iter().map(|c| c.mismatches.len()).sum::<usize>();
    let cases_passed = cases.iter().filter(|c| c.passed).count();
    Ok(Report {
        passed: cases_passed == cases.len(),
        binary: format!("blocker {}", env!("CARGO_PKG_VERSION")),
        program: fingerprint(),
        kernel: kernel_release(),
        timestamp,
        corpus: corpus.source.clone(),
        cases_total: cases.len(),
        cases_passed,
        frames_total,
        frames_passed,
        cases,
    })
}

impl Report {
    /// The table `blocker selftest` prints: a header, one line per case, every mismatch, and a
    /// summary line.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "blocker conformance self-test");
        let _ = writeln!(s, "  binary:  {}", self.binary);
        let _ = writeln!(s, "  program: {} (the XDP program built into this binary, the one `blocker run` attaches)", self.program);
        let _ = writeln!(s, "  kernel:  {}", self.kernel);
        let _ = writeln!(s, "  time:    {}", self.timestamp);
        let _ = writeln!(s, "  corpus:  {} ({} cases, {} frames)", self.corpus, self.cases_total, self.frames_total);
        let _ = writeln!(s);
        let width = self.cases.iter().map(|c| c.id().len()).max().unwrap_or(4).max(4);
        let _ = writeln!(s, "{:<width$}  {:>6}  {:<7}  covers", "case", "frames", "result");
        for c in &self.cases {
            let result = match (c.passed, c.limit) {
                (true, false) => "pass",
                (true, true) => "limit",
                (false, _) => "FAIL",
            };
            let _ = writeln!(s, "{:<width$}  {:>6}  {:<7}  {}", c.id(), c.frames, result, c.covers);
        }
        if self.cases.iter().any(|c| c.limit) {
            let _ = writeln!(
                s,
                "\nlimit: the program did what the case records, and what it records is a known limit (listed traffic\n\
                 that passes, or a connection that stalls); the case's description (--json) says which."
            );
        }
        let failed: Vec<&CaseResult> = self.cases.iter().filter(|c| !c.passed).collect();
        if !failed.is_empty() {
            let _ = writeln!(s, "\nmismatches:");
            for c in failed {
                for m in &c.mismatches {
                    let _ = writeln!(
                        s,
                        "  {} frame {}: expected {}/{}, got {}/{} ({}); {}; {}",
                        c.id(),
                        m.frame,
                        m.expected.reason,
                        m.expected.verdict,
                        m.reason.as_deref().unwrap_or("?"),
                        m.verdict.as_deref().unwrap_or("?"),
                        m.action,
                        m.expected.note,
                        m.summary
                    );
                }
            }
        }
        let _ = writeln!(s, "\n{}", self.summary());
        s
    }

    /// One line: the result and what produced it.
    pub fn summary(&self) -> String {
        format!(
            "{}: {}/{} cases, {}/{} frames as expected; {}, program {}, kernel {}, {}",
            if self.passed { "PASS" } else { "FAIL" },
            self.cases_passed,
            self.cases_total,
            self.frames_passed,
            self.frames_total,
            self.binary,
            self.program,
            self.kernel,
            self.timestamp
        )
    }
}

/// The running kernel's release, as `uname -r` prints it.
pub fn kernel_release() -> String {
    // SAFETY: uname fills the struct it is given.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return "unknown".to_string();
    }
    // SAFETY: uname NUL-terminates release.
    unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }.to_string_lossy().into_owned()
}

/// `2026-11-28T20:58:17Z`.
pub fn rfc3339_utc(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Counts of the embedded corpus by group, for documentation and tests: (group, cases, frames).
pub fn outline(corpus: &Corpus) -> BTreeMap<String, (usize, usize)> {
    corpus.groups.iter().map(|g| (g.name.clone(), (g.cases.len(), g.cases.iter().map(|c| c.frames.len()).sum()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_corpus_loads_and_is_consistent() {
        let c = Corpus::embedded().expect("the embedded corpus loads");
        assert!(c.groups.len() >= 8, "{:?}", outline(&c));
        assert!(c.cases().all(|(_, case)| !case.frames.is_empty() && case.frames.len() == case.expect.len()));
        let set = c.list_set().unwrap();
        assert!(set.len() >= 6);
    }

    #[test]
    fn a_corpus_directory_reads_like_the_embedded_one() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance");
        let from_dir = Corpus::from_dir(&dir).expect("tests/conformance loads");
        let embedded = Corpus::embedded().unwrap();
        assert_eq!(outline(&from_dir), outline(&embedded));
        let frames = |c: &Corpus| c.cases().flat_map(|(_, k)| k.frames.clone()).collect::<Vec<_>>();
        assert_eq!(frames(&from_dir), frames(&embedded));
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = |s| rfc3339_utc(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_795_900_000), "2026-11-28T21:06:40Z");
    }

    #[test]
    fn bad_expectations_are_refused_with_their_place() {
        let dir = std::env::temp_dir().join(format!("blocker-selftest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("g")).unwrap();
        std::fs::write(dir.join("corpus.toml"), "format = 1\ngroups = [\"g\"]\n").unwrap();
        let frame = [&[0u8; 12][..], &[0x08, 0x06], &[0; 28]].concat();
        let mut pcap = Vec::new();
        {
            let mut w = pcap_file::pcap::PcapWriter::new(&mut pcap).unwrap();
            w.write_packet(&pcap_file::pcap::PcapPacket::new(std::time::Duration::ZERO, frame.len() as u32, &frame)).unwrap();
        }
        std::fs::write(dir.join("g/arp.pcap"), &pcap).unwrap();
        let manifest = |reason: &str| {
            format!("[[case]]\nname = \"arp\"\ncapture = \"arp.pcap\"\nframes = [{{ reason = \"{reason}\", verdict = \"pass\" }}]\n")
        };
        std::fs::write(dir.join("g/cases.toml"), manifest("not_ip")).unwrap();
        let c = Corpus::from_dir(&dir).expect("a minimal corpus loads");
        assert_eq!(c.frame_count(), 1);
        std::fs::write(dir.join("g/cases.toml"), manifest("not_a_reason")).unwrap();
        let e = Corpus::from_dir(&dir).unwrap_err().to_string();
        assert!(e.contains("cases.toml") && e.contains("case arp: frame 1") && e.contains("not_a_reason"), "{e}");
        std::fs::write(
            dir.join("g/cases.toml"),
            manifest("not_ip").replace("frames = [", "frames = [{ reason = \"not_ip\", verdict = \"pass\" }, "),
        )
        .unwrap();
        let e = Corpus::from_dir(&dir).unwrap_err().to_string();
        assert!(e.contains("holds 1 frames but 2 are expected"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
