//! The page itself: what is taken from a request (and how it is cleaned) and the HTML.

use std::fmt::Write as _;

use super::config::{Language, StopPageConfig, valid_list_id};

/// Longest host shown, in characters (a DNS name's longest text form).
pub const MAX_HOST_CHARS: usize = 253;
/// Query parameters looked at; later ones are ignored.
const MAX_QUERY_PAIRS: usize = 32;

/// Escapes text for HTML element content and quoted attribute values: `& < > " '`.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A requested host made fit to show: control characters and invisible or bidirectional formatting
/// characters (which could disguise the text) removed, surrounding whitespace trimmed, cut to
/// [`MAX_HOST_CHARS`] characters. `None` if nothing is left. Still needs [`escape_html`].
pub fn sanitize_host(raw: &str) -> Option<String> {
    let cleaned: String = raw.chars().filter(|&c| !c.is_control() && !is_invisible(c)).collect();
    let s: String = cleaned.trim().chars().take(MAX_HOST_CHARS).collect();
    let s = s.trim_end().to_string();
    if s.is_empty() { None } else { Some(s) }
}

/// Unicode format characters (Cf) and separators that render as nothing or reorder text.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}' | '\u{E0000}'..='\u{E0FFF}')
}

/// The three query parameters the page reads, first occurrence of each.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct PageQuery {
    pub lang: Option<Language>,
    /// A configured list id (unknown ids are dropped here).
    pub list: Option<String>,
    /// `?host=`, decoded and sanitized.
    pub host: Option<String>,
    /// `?host=` was present, even empty: the data plane sent the browser here and knew no
    /// name (a blocked address), so the page must not fall back to its own Host header.
    pub host_given: bool,
}

impl PageQuery {
    pub(crate) fn parse(query: Option<&str>, config: &StopPageConfig) -> PageQuery {
        let mut q = PageQuery::default();
        let Some(query) = query else { return q };
        let (mut seen_lang, mut seen_list, mut seen_host) = (false, false, false);
        for pair in query.split('&').take(MAX_QUERY_PAIRS) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "lang" if !seen_lang => {
                    seen_lang = true;
                    q.lang = Language::from_tag(&percent_decode(v));
                }
                "list" if !seen_list => {
                    seen_list = true;
                    let id = percent_decode(v);
                    if valid_list_id(&id) && config.reasons.contains_key(&id) {
                        q.list = Some(id);
                    }
                }
                "host" if !seen_host => {
                    seen_host = true;
                    q.host_given = true;
                    q.host = sanitize_host(&percent_decode(v));
                }
                _ => {}
            }
        }
        q
    }
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; a stray `%` stays;
/// invalid UTF-8 becomes U+FFFD.
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() && hex(b[i + 1]).is_some() && hex(b[i + 2]).is_some() => {
                out.push(hex(b[i + 1]).unwrap() << 4 | hex(b[i + 2]).unwrap());
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// What one page shows.
pub(crate) struct PageInput<'a> {
    pub lang: Language,
    /// A configured list id, or `None` for the default reason.
    pub list: Option<&'a str>,
    /// The sanitized host (not yet escaped).
    pub host: Option<&'a str>,
    /// Whether the host came from `?host=` (then the other-language link carries it).
    pub host_from_query: bool,
}

struct Texts {
    title: &'static str,
    lead_host: (&'static str, &'static str),
    lead_no_host: &'static str,
    reason: &'static str,
    list_heading: &'static str,
    list_text: (&'static str, &'static str),
    appeal_heading: &'static str,
    appeal_text: &'static str,
    status: &'static str,
    other_lang: &'static str,
    nav_label: &'static str,
}

const JA: Texts = Texts {
    title: "このサイトへのアクセスは制限されています",
    lead_host: ("", " は、ブロッキングの対象となっているため表示できません。"),
    lead_no_host: "お探しのサイトは、ブロッキングの対象となっているため表示できません。",
    reason: "理由",
    list_heading: "ブロッキングリストについて",
    list_text: ("このブロッキングは、", " が作成・管理するリストに基づいて行われています。"),
    appeal_heading: "誤りだと思われる場合",
    appeal_text: "このサイトが誤ってブロックされているとお考えの場合は、次の窓口までご連絡ください。",
    status: "HTTP 451（法的理由により利用できません）",
    other_lang: "English",
    nav_label: "言語 / Language",
};

const EN: Texts = Texts {
    title: "Access to this site has been blocked",
    lead_host: ("The site ", " cannot be shown because it is on a blocking list."),
    lead_no_host: "The site you requested cannot be shown because it is on a blocking list.",
    reason: "Reason",
    list_heading: "About the blocking list",
    list_text: ("The block is based on a list compiled and maintained by ", "."),
    appeal_heading: "If you think this is a mistake",
    appeal_text: "If you believe this site has been blocked in error, please contact:",
    status: "HTTP 451 (Unavailable For Legal Reasons)",
    other_lang: "日本語",
    nav_label: "Language / 言語",
};

const STYLE: &str = "\
:root{color-scheme:light dark}\
*{box-sizing:border-box}\
body{margin:0;padding:1rem;background:#f3f4f6;color:#1f2328;line-height:1.7;\
font-family:system-ui,-apple-system,\"Hiragino Sans\",\"Hiragino Kaku Gothic ProN\",\"Noto Sans JP\",\
\"Yu Gothic\",Meiryo,sans-serif;-webkit-text-size-adjust:100%;text-size-adjust:100%}\
main{max-width:42rem;margin:0 auto;padding:1.5rem 1.25rem;background:#fff;border-radius:.5rem;\
border-top:.35rem solid #b3261e}\
nav{max-width:42rem;margin:0 auto .5rem;text-align:right}\
h1{font-size:1.5rem;line-height:1.4;margin:0 0 1rem}\
h2{font-size:1.1rem;margin:1.5rem 0 .25rem}\
p,ul{margin:.25rem 0 .75rem}\
a{color:#0b57d0;overflow-wrap:anywhere}\
a:focus{outline:2px solid currentColor;outline-offset:2px}\
bdi{font-weight:700;overflow-wrap:anywhere;word-break:break-all}\
.status{margin-top:1.5rem;color:#57606a;font-size:.875rem}\
@media (prefers-color-scheme:dark){body{background:#111315;color:#e6e6e6}main{background:#1c1e21}\
a{color:#8ab4f8}.status{color:#a0a6ad}}";

/// The complete HTML page.
pub(crate) fn render(config: &StopPageConfig, input: &PageInput<'_>) -> String {
    let lang = input.lang;
    let t = match lang {
        Language::Ja => &JA,
        Language::En => &EN,
    };
    let reason = input.list.and_then(|id| config.reasons.get(id)).unwrap_or(&config.default_reason).get(lang);
    let body_name = config.list_body.name.get(lang);

    // The same page in the other language: a relative reference, so it keeps the path and host.
    let other = lang.other();
    let mut other_href = format!("?lang={}", other.tag());
    if let Some(id) = input.list {
        let _ = write!(other_href, "&list={}", percent_encode(id));
    }
    if let (true, Some(h)) = (input.host_from_query, input.host) {
        let _ = write!(other_href, "&host={}", percent_encode(h));
    }

    let mut p = String::with_capacity(4096);
    p.push_str("<!DOCTYPE html>\n");
    let _ = writeln!(p, "<html lang=\"{}\">", lang.tag());
    p.push_str("<head>\n<meta charset=\"utf-8\">\n");
    p.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    p.push_str("<meta name=\"robots\" content=\"noindex, nofollow\">\n");
    let _ = writeln!(p, "<title>{}</title>", t.title);
    let _ = writeln!(p, "<style>{STYLE}</style>");
    p.push_str("</head>\n<body>\n");
    let _ = writeln!(
        p,
        "<nav aria-label=\"{}\"><a href=\"{}\" lang=\"{}\" hreflang=\"{}\">{}</a></nav>",
        t.nav_label,
        escape_html(&other_href),
        other.tag(),
        other.tag(),
        t.other_lang
    );
    p.push_str("<main>\n");
    let _ = writeln!(p, "<h1>{}</h1>", t.title);
    match input.host {
        Some(h) => {
            let _ = writeln!(p, "<p>{}<bdi>{}</bdi>{}</p>", t.lead_host.0, escape_html(h), t.lead_host.1);
        }
        None => {
            let _ = writeln!(p, "<p>{}</p>", t.lead_no_host);
        }
    }
    let _ = writeln!(
        p,
        "<section aria-labelledby=\"reason\">\n<h2 id=\"reason\">{}</h2>\n<p>{}</p>\n</section>",
        t.reason,
        escape_html(reason)
    );
    let _ = writeln!(
        p,
        "<section aria-labelledby=\"list\">\n<h2 id=\"list\">{}</h2>\n<p>{}<a href=\"{}\">{}</a>{}</p>\n</section>",
        t.list_heading,
        t.list_text.0,
        escape_html(&config.list_body.url),
        escape_html(body_name),
        t.list_text.1
    );
    let _ = writeln!(
        p,
        "<section aria-labelledby=\"appeal\">\n<h2 id=\"appeal\">{}</h2>\n<p>{}</p>\n<ul>",
        t.appeal_heading, t.appeal_text
    );
    let appeal = &config.appeal;
    if let Some(name) = &appeal.name {
        let _ = writeln!(p, "<li>{}</li>", escape_html(name.get(lang)));
    }
    if let Some(url) = &appeal.url {
        let u = escape_html(url);
        let _ = writeln!(p, "<li><a href=\"{u}\">{u}</a></li>");
    }
    if let Some(email) = &appeal.email {
        let e = escape_html(email);
        let _ = writeln!(p, "<li><a href=\"mailto:{e}\">{e}</a></li>");
    }
    p.push_str("</ul>\n</section>\n");
    let _ = writeln!(p, "<p class=\"status\">{}</p>", t.status);
    p.push_str("</main>\n</body>\n</html>\n");
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stoppage::config::{AppealContact, ListBody, LocalText};

    fn config() -> StopPageConfig {
        let mut c = StopPageConfig::new(
            ListBody { name: LocalText::new("協会", "Association"), url: "https://body.example/?a=1&b=2".into() },
            AppealContact {
                name: Some(LocalText::same("Desk <1>")),
                url: Some("https://body.example/appeal".into()),
                email: Some("appeal@body.example".into()),
            },
        );
        c.reasons.insert("csam".into(), LocalText::new("児童ポルノ", "Child abuse material"));
        c.validate().unwrap();
        c
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_html(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(escape_html("例え.jp"), "例え.jp");
    }

    #[test]
    fn host_sanitizing() {
        assert_eq!(sanitize_host("  example.com  "), Some("example.com".into()));
        assert_eq!(sanitize_host("ex\u{0}am\r\npl\u{7f}e\u{85}.com"), Some("example.com".into()));
        assert_eq!(sanitize_host("moc.\u{202E}evil"), Some("moc.evil".into()));
        assert_eq!(sanitize_host("\u{200B}\t"), None);
        assert_eq!(sanitize_host(""), None);
        let long = "a".repeat(1000);
        assert_eq!(sanitize_host(&long).unwrap().chars().count(), MAX_HOST_CHARS);
        let wide = "あ".repeat(300);
        assert_eq!(sanitize_host(&wide).unwrap().chars().count(), MAX_HOST_CHARS);
    }

    #[test]
    fn percent_coding() {
        assert_eq!(percent_decode("a+b%20c%3Cd%3e%zz%"), "a b c<d>%zz%");
        assert_eq!(percent_decode("%E4%BE%8B"), "例");
        assert_eq!(percent_decode("%FF"), "\u{FFFD}");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_encode("a b<例>.-_~"), "a%20b%3C%E4%BE%8B%3E.-_~");
    }

    #[test]
    fn query() {
        let c = config();
        let q = PageQuery::parse(Some("lang=EN&list=csam&host=%3Cx%3E.example&lang=ja"), &c);
        assert_eq!(
            q,
            PageQuery { lang: Some(Language::En), list: Some("csam".into()), host: Some("<x>.example".into()), host_given: true }
        );
        // An empty host= still says the data plane sent the browser here (a blocked address).
        let q = PageQuery::parse(Some("list=unknown&lang=fr&host="), &c);
        assert_eq!(q, PageQuery { host_given: true, ..PageQuery::default() });
        assert_eq!(PageQuery::parse(None, &c), PageQuery::default());
    }

    #[test]
    fn page_contents() {
        let c = config();
        let h = "<script>alert('x')</script>.example";
        let ja =
            render(&c, &PageInput { lang: Language::Ja, list: Some("csam"), host: Some(h), host_from_query: true });
        assert!(ja.contains("<html lang=\"ja\">"));
        assert!(ja.contains("児童ポルノ"));
        assert!(ja.contains("協会"));
        assert!(ja.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;.example"));
        assert!(!ja.contains("<script"));
        assert!(ja.contains("href=\"https://body.example/?a=1&amp;b=2\""));
        assert!(ja.contains("Desk &lt;1&gt;"));
        assert!(ja.contains("mailto:appeal@body.example"));
        assert!(ja.contains(
            "href=\"?lang=en&amp;list=csam&amp;host=%3Cscript%3Ealert%28%27x%27%29%3C%2Fscript%3E.example\""
        ));
        let en = render(&c, &PageInput { lang: Language::En, list: None, host: None, host_from_query: false });
        assert!(en.contains("<html lang=\"en\">"));
        assert!(en.contains("Association"));
        assert!(en.contains(c.default_reason.en.as_str()));
        assert!(en.contains("The site you requested"));
        assert!(en.contains("href=\"?lang=ja\""));
    }
}
