//! The HTTP 451 response the program sends to blocked HTTP requests. It is deliberately small:
//! it carries the status and the `Link: <operator>; rel="blocked-by"` header (RFC 7725) that
//! tools and crawlers read, and sends the browser on to the stop-page service, which renders the
//! real page (language, reason, appeal contact) with the requested host escaped there.

use aya::maps::{Array, MapData};
use blocker_common::{
    config::FLAG_STOP_PAGE,
    stop_page::{PREFIX_MAX, SUFFIX_MAX, StopPageTemplate, ones_sum},
};

use super::{Datapath, DatapathError};

/// Where blocked HTTP requests are sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StopPageResponse {
    /// Base URL of the stop-page service as clients reach it, e.g. `http://192.0.2.1`.
    pub service_url: String,
    /// Whoever implements the block (the operator's page, else the list body's), for the
    /// `Link: rel="blocked-by"` header.
    pub blocked_by_url: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StopPageError {
    #[error("{what} {url:?} must be an http:// or https:// URL without spaces, quotes or angle brackets")]
    BadUrl { what: &'static str, url: String },
    #[error("the stop-page response would be {len} bytes; at most {max} fit")]
    TooLong { len: usize, max: usize },
}

fn check_url(what: &'static str, url: &str) -> Result<(), StopPageError> {
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    let chars_ok = url.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'<' | b'>' | b'\\' | b'`' | b'\''));
    if scheme_ok && chars_ok && url.len() > 8 {
        Ok(())
    } else {
        Err(StopPageError::BadUrl { what, url: url.to_string() })
    }
}

impl StopPageResponse {
    /// The response around the host: `prefix` ends where the host goes (in the refresh URL's
    /// query), `suffix` follows it. Hosts the program inserts are normalised names
    /// (`a-z 0-9 - _ .`), safe in both a URL and HTML.
    pub fn render(&self) -> Result<(Vec<u8>, Vec<u8>), StopPageError> {
        check_url("the stop-page service URL", &self.service_url)?;
        check_url("the blocked-by URL", &self.blocked_by_url)?;
        let base = self.service_url.trim_end_matches('/');
        // As small as the job allows: the frame it replaces may have little room to grow
        // (resize.rs), and everything a person reads comes from the service.
        let head = format!(
            "HTTP/1.1 451 Unavailable For Legal Reasons\r\n\
             Link: <{}>; rel=\"blocked-by\"\r\n\
             Content-Type: text/html\r\n\
             Cache-Control: no-store\r\n\r\n",
            self.blocked_by_url
        );
        let mut body = format!("<!DOCTYPE html><meta http-equiv=\"refresh\" content=\"0;url={base}/?host=");
        // The host must start on a 16-bit boundary (the program sums it as 16-bit words).
        if (head.len() + body.len()) % 2 == 1 {
            body.insert(0, '\n');
        }
        let prefix = format!("{head}{body}").into_bytes();
        let suffix = format!("\"><a href=\"{base}/\">451</a>\n").into_bytes();
        if prefix.len() >= PREFIX_MAX {
            return Err(StopPageError::TooLong { len: prefix.len(), max: PREFIX_MAX - 1 });
        }
        if suffix.len() >= SUFFIX_MAX {
            return Err(StopPageError::TooLong { len: suffix.len(), max: SUFFIX_MAX - 1 });
        }
        Ok((prefix, suffix))
    }

    pub fn template(&self) -> Result<StopPageTemplate, StopPageError> {
        let (prefix, suffix) = self.render()?;
        let mut t = StopPageTemplate::default();
        t.prefix[..prefix.len()].copy_from_slice(&prefix);
        t.suffix[..suffix.len()].copy_from_slice(&suffix);
        t.prefix_len = prefix.len() as u32;
        t.suffix_len = suffix.len() as u32;
        t.prefix_sum = ones_sum(&prefix);
        t.suffix_sum = ones_sum(&suffix);
        Ok(t)
    }
}

impl Datapath {
    /// Answer blocked HTTP requests with `response` (None: with a reset, like other TCP).
    pub fn set_stop_page(&mut self, response: Option<&StopPageResponse>) -> Result<(), DatapathError> {
        match response {
            Some(r) => {
                let t = r.template().map_err(DatapathError::StopPage)?;
                let mut map: Array<&mut MapData, StopPageTemplate> = self.map_mut("STOP_PAGE")?;
                map.set(0, t, 0).map_err(|e| DatapathError::map("STOP_PAGE", e))?;
                self.config.flags |= FLAG_STOP_PAGE;
            }
            None => self.config.flags &= !FLAG_STOP_PAGE,
        }
        self.write_config()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response() -> StopPageResponse {
        StopPageResponse { service_url: "http://192.0.2.1".into(), blocked_by_url: "https://list-body.example/".into() }
    }

    #[test]
    fn the_response_is_a_451_naming_the_list_body() {
        let (prefix, suffix) = response().render().unwrap();
        let text = String::from_utf8(prefix.clone()).unwrap();
        assert!(text.starts_with("HTTP/1.1 451 Unavailable For Legal Reasons\r\n"));
        assert!(text.contains("Link: <https://list-body.example/>; rel=\"blocked-by\"\r\n"));
        assert!(text.contains("Cache-Control: no-store"));
        // No `Connection: close`: the FIN that ends the response delimits it (no Content-Length,
        // RFC 9112 §6.3), and where the tail has no room every byte of the 451 beyond the
        // request's grows the frame into the 256 bytes XDP keeps at the head (ARCHITECTURE.md).
        assert!(!text.contains("Connection:"));
        assert!(text.ends_with("url=http://192.0.2.1/?host="));
        assert!(prefix.len() + suffix.len() < 300, "small enough to fit where frames can grow");
        assert_eq!(prefix.len() % 2, 0, "the host starts on a 16-bit boundary");
        assert!(String::from_utf8(suffix).unwrap().contains("href=\"http://192.0.2.1/\""));
    }

    #[test]
    fn urls_that_could_break_out_of_the_markup_are_refused() {
        for bad in ["http://x.example/\"><script>", "javascript:alert(1)", "http://a b.example", "ftp://x.example", "http://x.example/<"] {
            let r = StopPageResponse { service_url: bad.into(), ..response() };
            assert!(r.render().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_checksum_sums_match_the_bytes() {
        let t = response().template().unwrap();
        assert_eq!(t.prefix_sum, ones_sum(&t.prefix[..t.prefix_len as usize]));
        assert_eq!(t.suffix_sum, ones_sum(&t.suffix[..t.suffix_len as usize]));
    }
}
