//! Plain-HTTP clients for the stop-page tests: curl that keeps the whole response (status, head
//! and body), and headless Chromium that either prints the DOM it ends on or saves a screenshot.
//! Both run in the client namespace with a deadline.
//!
//! Chromium follows the data plane's `<meta http-equiv="refresh" content="0; url=...">` to the
//! stop-page service. A plain `--dump-dom` or `--screenshot` may act on the first document (the
//! small 451) before that navigation has happened, so every run passes
//! `--virtual-time-budget`: headless Chromium then waits until the page has been idle for that
//! much virtual time, which covers the refresh and the second load.

use std::{fmt, fs, path::Path, process::ExitStatus, time::Duration};

use anyhow::{Context, Result, bail};

use super::{
    Lab, Node,
    headless::{Quic, run_headless},
};

/// Deadline of one curl (connect and transfer); the process is killed a little after it.
pub const CURL_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline of one headless Chromium run, start-up included.
pub const BROWSER_TIMEOUT: Duration = Duration::from_secs(30);
/// Virtual time Chromium gives a page (and the pages it is sent on to) before it dumps or shoots.
pub const VIRTUAL_TIME_BUDGET_MS: u32 = 5000;

/// One HTTP response as curl received it.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status of the last response head (curl prints one head per response).
    pub status: u16,
    /// The last response head as received, status line included, CRLFs kept.
    pub head: String,
    /// The body, lossily decoded as UTF-8.
    pub body: String,
}

impl HttpResponse {
    /// The value of the first header `name` (any case), surrounding whitespace trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers(name).into_iter().next()
    }

    /// The values of every header `name` (any case), in order.
    pub fn headers(&self, name: &str) -> Vec<&str> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
            })
            .collect()
    }
}

impl fmt::Display for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.head, self.body)
    }
}

/// `curl -sS -D - <args...>` in the client namespace, within [`CURL_TIMEOUT`]: the response
/// head and body. Fails when curl fails (no response, timeout, reset) with curl's message.
pub fn curl(lab: &Lab, args: &[&str]) -> Result<HttpResponse> {
    let secs = CURL_TIMEOUT.as_secs().to_string();
    let mut argv = vec![
        "curl",
        "-sS",
        "-D",
        "-",
        "--connect-timeout",
        &secs,
        "--max-time",
        &secs,
    ];
    argv.extend_from_slice(args);
    let out = lab.exec_timeout(Node::Client, &argv, CURL_TIMEOUT + Duration::from_secs(2));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}\nreceived:\n{stdout}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    parse_response(&stdout).with_context(|| format!("`{}` printed:\n{stdout}", argv.join(" ")))
}

/// Splits what `curl -D -` printed (heads, then the body) at the end of the last head.
pub fn parse_response(text: &str) -> Result<HttpResponse> {
    let mut rest = text;
    loop {
        let Some(end) = rest.find("\r\n\r\n") else {
            bail!("no complete response head");
        };
        let (head, after) = (&rest[..end + 4], &rest[end + 4..]);
        let status: u16 = head
            .strip_prefix("HTTP/")
            .and_then(|s| s.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .with_context(|| format!("no status line in {head:?}"))?;
        // A 1xx head is followed by the real one.
        if (100..200).contains(&status) && after.starts_with("HTTP/") {
            rest = after;
            continue;
        }
        return Ok(HttpResponse {
            status,
            head: head.to_string(),
            body: after.to_string(),
        });
    }
}

/// What one headless Chromium run left.
#[derive(Debug, Clone)]
pub struct BrowserRun {
    /// The URL it was given.
    pub url: String,
    /// `--dump-dom`: the serialised DOM of the document it ended on (empty for screenshots).
    pub dom: String,
    /// Its stderr, less the D-Bus noise of a machine without a session bus.
    pub log: String,
    pub status: ExitStatus,
    pub elapsed: Duration,
}

impl BrowserRun {
    /// `net::ERR_...` if Chromium reported that the page failed to load.
    pub fn net_error(&self) -> Option<&str> {
        self.log.lines().find_map(|l| {
            let at = l.find("net::ERR_")?;
            l[at..].split_whitespace().next()
        })
    }
}

impl fmt::Display for BrowserRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "chromium {} ({} after {:?})\n--- DOM ---\n{}\n--- log ---\n{}",
            self.url, self.status, self.elapsed, self.dom, self.log
        )
    }
}

/// What a Chromium run produces.
#[derive(Debug, Clone, Copy)]
pub enum BrowserOutput<'a> {
    /// `--dump-dom`: the DOM on stdout.
    Dom,
    /// `--screenshot=<file> --window-size=1200,900`.
    Screenshot(&'a Path),
}

/// Headless Chromium as root in the client namespace, a fresh profile per run, QUIC and
/// background traffic off, `extra` flags after the fixed ones (`--host-resolver-rules=...`,
/// `--accept-lang=...`), bounded by [`BROWSER_TIMEOUT`]. Fails only if Chromium cannot run to
/// the end or (for a screenshot) wrote no file; a page that failed to load is in the log.
pub fn chromium(
    lab: &Lab,
    url: &str,
    output: BrowserOutput<'_>,
    extra: &[&str],
) -> Result<BrowserRun> {
    let budget = format!("--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}");
    let mut args = vec!["--hide-scrollbars", &budget];
    let shot;
    match output {
        BrowserOutput::Dom => args.push("--dump-dom"),
        BrowserOutput::Screenshot(path) => {
            let _ = fs::remove_file(path);
            shot = format!("--screenshot={}", path.display());
            args.push(&shot);
            args.push("--window-size=1200,900");
        }
    }
    args.extend_from_slice(extra);
    args.push(url);

    let headless = run_headless(lab, Quic::Off, &args, BROWSER_TIMEOUT)?;
    let run = BrowserRun {
        url: url.to_string(),
        log: headless.log(),
        dom: headless.stdout,
        status: headless.status,
        elapsed: headless.elapsed,
    };
    if !run.status.success() {
        bail!("Chromium did not finish cleanly:\n{run}");
    }
    if let BrowserOutput::Screenshot(path) = output {
        let len = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if len == 0 {
            bail!("Chromium wrote no screenshot to {}:\n{run}", path.display());
        }
    }
    Ok(run)
}

/// Text of an HTML document as a reader sees it, roughly: tags removed, the five entities HTML
/// escaping produces decoded, whitespace collapsed. For "does the page say X" checks; the raw
/// markup is what escaping checks look at.
pub fn visible_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    // Skip <style> and <script> contents entirely.
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        text.push(' ');
        let tag = &rest[open..];
        let lower = tag.get(..8).unwrap_or(tag).to_ascii_lowercase();
        let skip_to = if lower.starts_with("<style") {
            tag.find("</style>").map(|e| e + "</style>".len())
        } else if lower.starts_with("<script") {
            tag.find("</script>").map(|e| e + "</script>".len())
        } else {
            tag.find('>').map(|e| e + 1)
        };
        match skip_to {
            Some(n) => rest = &tag[n..],
            None => {
                rest = "";
                break;
            }
        }
    }
    text.push_str(rest);
    let decoded = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_split_at_the_last_head() {
        let r = parse_response(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 451 Unavailable For Legal Reasons\r\n\
             Link: <https://x.example/>; rel=\"blocked-by\"\r\ncache-control:  no-store \r\n\r\n<p>hi</p>",
        )
        .unwrap();
        assert_eq!(r.status, 451);
        assert_eq!(
            r.header("LINK"),
            Some("<https://x.example/>; rel=\"blocked-by\"")
        );
        assert_eq!(r.header("Cache-Control"), Some("no-store"));
        assert_eq!(r.header("Content-Language"), None);
        assert_eq!(r.body, "<p>hi</p>");
        assert!(parse_response("HTTP/1.1 200 OK\r\n").is_err());
    }

    #[test]
    fn visible_text_drops_markup() {
        let html = "<html><head><style>p{color:red}</style><title>T</title></head>\
                    <body><p>The site <bdi>&lt;script&gt;x</bdi>\n  is\tblocked</p></body></html>";
        assert_eq!(visible_text(html), "T The site <script>x is blocked");
    }
}
