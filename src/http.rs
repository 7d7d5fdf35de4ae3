//! Which response for which request: the HTTP table of SPEC, as pure functions over
//! [`Request`] plus builders for `AlbTargetGroupResponse`.

use aws_lambda_events::alb::{AlbTargetGroupRequest, AlbTargetGroupResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{self, HeaderMap, HeaderName, HeaderValue, Method};

/// Path of the status endpoint on every rule's host.
pub const STATUS_PATH: &str = "/__autostop/status";

/// What the wake path needs to know about an ALB request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    pub method: Method,
    /// Raw `Host` header, if any.
    pub host: Option<String>,
    pub path: String,
    /// Query string as received (ALB does not decode it), without `?`.
    pub query: String,
    pub accept: String,
    pub user_agent: String,
    /// `X-Forwarded-For` as received (every value, comma-separated).
    pub forwarded_for: String,
    /// The target group has multi-value headers on: answer in kind.
    pub multi_value: bool,
    /// `Cookie`, `Origin` and `Sec-Fetch-Site` as received, and the body as text (decoded when
    /// the ALB sent it base64-encoded): what a wake button's POST is checked against.
    pub cookie: String,
    pub origin: String,
    pub fetch_site: String,
    pub body: String,
    /// The client reached the load balancer over HTTPS (`X-Forwarded-Proto`).
    pub https: bool,
    /// The value of the `wake_token` header, when the config names one and the request has it.
    pub wake_token: Option<String>,
}

impl Request {
    /// `query` is the event's query string as it lists it ([`crate::event::raw_query`]).
    pub fn from_alb(req: &AlbTargetGroupRequest, query: String) -> Request {
        let multi_value = !req.multi_value_headers.is_empty();
        let headers = if multi_value { &req.multi_value_headers } else { &req.headers };
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let host = headers.get("host").and_then(|v| v.to_str().ok()).map(str::to_string);
        Request {
            method: req.http_method.clone(),
            host,
            path: req.path.clone().unwrap_or_else(|| "/".into()),
            query,
            accept: header("accept"),
            user_agent: header("user-agent"),
            forwarded_for: headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect::<Vec<_>>()
                .join(", "),
            multi_value,
            cookie: headers.get_all("cookie").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join("; "),
            origin: header("origin"),
            fetch_site: header("sec-fetch-site"),
            body: body_text(req),
            https: header("x-forwarded-proto").eq_ignore_ascii_case("https"),
            wake_token: None,
        }
    }

    /// Reads the header `name` into [`Request::wake_token`].
    pub fn with_wake_token(mut self, req: &AlbTargetGroupRequest, name: &str) -> Request {
        let headers = if self.multi_value { &req.multi_value_headers } else { &req.headers };
        self.wake_token = headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        self
    }

    /// The ALB health checker probing the Lambda target group.
    pub fn is_health_check(&self) -> bool {
        self.user_agent.starts_with("ELB-HealthChecker")
    }

    /// A browser navigation: GET/HEAD that accepts HTML.
    pub fn is_browser(&self) -> bool {
        (self.method == Method::GET || self.method == Method::HEAD) && accepts_html(&self.accept)
    }

    /// Where a 307 sends the client: the same path and query on the same host, as a valid URI
    /// reference. Relative, so it can never point at another host (a path starting `//` would be
    /// read as one). What a URI may not hold raw (spaces, control characters, non-ASCII, `#`
    /// inside the query, a stray `%`) is percent-encoded, never dropped; existing escapes stay.
    pub fn same_url(&self) -> String {
        let path = format!("/{}", self.path.trim_start_matches(['/', '\\']));
        let path = percent_encode(&path, b"/");
        if self.query.is_empty() {
            path
        } else {
            format!("{path}?{}", percent_encode(&self.query, b"/?"))
        }
    }
}

/// The body as text; only small form bodies matter, so a large or binary one reads as empty.
fn body_text(req: &AlbTargetGroupRequest) -> String {
    use base64::Engine;
    let Some(body) = req.body.as_deref().filter(|b| b.len() <= 4096) else { return String::new() };
    if !req.is_base64_encoded {
        return body.to_string();
    }
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default()
}

/// Percent-encodes every byte a URI path or query may not hold raw: RFC 3986 allows unreserved
/// characters, sub-delimiters, `:` and `@`, plus `keep` (`/` in a path; `/` and `?` in a query).
/// A `%` that starts a valid escape is kept as it is.
fn percent_encode(text: &str, keep: &[u8]) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    for (i, &b) in bytes.iter().enumerate() {
        let escape =
            b == b'%' && bytes.len() > i + 2 && bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit();
        let plain = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) || keep.contains(&b);
        if plain || escape {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// q-value the Accept header gives a media type (exact match or `type/*`; `*/*` is not counted,
/// so `curl`'s default `*/*` is an API client, not a browser).
fn quality(accept: &str, media: &str) -> f32 {
    let (kind, _) = media.split_once('/').unwrap_or((media, ""));
    let mut best: f32 = 0.0;
    for part in accept.split(',') {
        let mut fields = part.split(';');
        let range = fields.next().unwrap_or("").trim().to_ascii_lowercase();
        let matches = range == media || range == format!("{kind}/*");
        if !matches {
            continue;
        }
        let q = fields.filter_map(|f| f.trim().strip_prefix("q=")).find_map(|q| q.parse::<f32>().ok()).unwrap_or(1.0);
        best = best.max(q);
    }
    best
}

pub fn accepts_html(accept: &str) -> bool {
    quality(accept, "text/html") > 0.0 || quality(accept, "application/xhtml+xml") > 0.0
}

/// JSON is asked for more than HTML.
pub fn prefers_json(accept: &str) -> bool {
    quality(accept, "application/json") > quality(accept, "text/html")
}

/// A response before it is shaped for the ALB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Reply {
    fn new(status: u16, content_type: &str, body: String, kind: &str) -> Reply {
        Reply {
            status,
            headers: vec![
                ("content-type", content_type.to_string()),
                // Never cached by a CDN or shared cache; the answer depends on these headers.
                ("cache-control", "no-store, private".to_string()),
                ("vary", "Accept, User-Agent".to_string()),
                // Nothing autostop answers belongs in a search index.
                ("x-robots-tag", "noindex".to_string()),
                ("x-autostop", kind.to_string()),
            ],
            body,
        }
    }

    pub fn html(status: u16, body: String, kind: &str) -> Reply {
        Reply::new(status, "text/html; charset=utf-8", body, kind)
    }

    pub fn json(status: u16, body: String, kind: &str) -> Reply {
        Reply::new(status, "application/json", body, kind)
    }

    pub fn text(status: u16, body: &str, kind: &str) -> Reply {
        Reply::new(status, "text/plain; charset=utf-8", body.to_string(), kind)
    }

    /// 307 keeps the method and body.
    pub fn redirect(location: String) -> Reply {
        let mut r = Reply::new(307, "text/plain; charset=utf-8", String::new(), "redirect");
        r.headers.push(("location", location));
        r
    }

    /// 303: the browser follows with a GET (after a form's POST).
    pub fn see_other(location: String) -> Reply {
        let mut r = Reply::new(303, "text/plain; charset=utf-8", String::new(), "redirect");
        r.headers.push(("location", location));
        r
    }

    pub fn with(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }

    /// The ALB response, with headers in the mode the request came in (an ALB with multi-value
    /// headers on ignores `headers` and vice versa).
    pub fn into_alb(self, multi_value: bool) -> AlbTargetGroupResponse {
        let mut map = HeaderMap::new();
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                map.append(HeaderName::from_static(name), v);
            }
        }
        let mut resp = AlbTargetGroupResponse::default();
        resp.status_code = self.status as i64;
        resp.status_description = Some(format!("{} {}", self.status, reason(self.status)));
        if multi_value {
            resp.multi_value_headers = map;
        } else {
            resp.headers = map;
        }
        resp.body = Some(Body::Text(self.body));
        resp.is_base64_encoded = false;
        resp
    }
}

fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, path: &str, query: &str, accept: &str) -> Request {
        Request {
            method,
            host: Some("api.dev.example.com".into()),
            path: path.into(),
            query: query.into(),
            accept: accept.into(),
            user_agent: "test".into(),
            ..Request::default()
        }
    }

    const CHROME: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8";

    #[test]
    fn browsers_are_get_or_head_accepting_html() {
        assert!(req(Method::GET, "/", "", CHROME).is_browser());
        assert!(req(Method::HEAD, "/", "", "text/html").is_browser());
        assert!(!req(Method::POST, "/", "", CHROME).is_browser());
        assert!(!req(Method::GET, "/", "", "*/*").is_browser(), "curl");
        assert!(!req(Method::GET, "/", "", "application/json").is_browser());
        assert!(!req(Method::GET, "/", "", "text/html;q=0").is_browser());
    }

    #[test]
    fn json_preference() {
        assert!(prefers_json("application/json"));
        assert!(prefers_json("application/json, text/html;q=0.5"));
        assert!(!prefers_json(CHROME));
        assert!(!prefers_json("*/*"));
    }

    #[test]
    fn redirect_stays_on_the_same_host_and_path() {
        assert_eq!(req(Method::POST, "/v1/items", "a=1&b=%20x", "").same_url(), "/v1/items?a=1&b=%20x");
        assert_eq!(req(Method::GET, "//evil.example/x", "", "").same_url(), "/evil.example/x");
        assert_eq!(req(Method::GET, "/\\evil.example", "", "").same_url(), "/evil.example");
    }

    #[test]
    fn the_location_is_a_valid_uri_reference_nothing_dropped() {
        let url = |path: &str, query: &str| req(Method::GET, path, query, "").same_url();
        assert_eq!(url("/", "q=a b"), "/?q=a%20b");
        assert_eq!(url("/ü", ""), "/%C3%BC");
        assert_eq!(url("/a\r\nSet-Cookie: x", ""), "/a%0D%0ASet-Cookie:%20x", "CR/LF encoded, never a header");
        assert_eq!(url("/x", "frag=a#b&c=1"), "/x?frag=a%23b&c=1", "# stays in the query");
        assert_eq!(url("/50%", "p=100%&q=%41"), "/50%25?p=100%25&q=%41", "stray % encoded, escapes kept");
        assert_eq!(url("/a\\b", "x=<y>"), "/a%5Cb?x=%3Cy%3E");
        for location in [url("/ü x", "a=é b#"), url("/\u{7f}", "\u{0}")] {
            assert!(location.bytes().all(|b| b.is_ascii_graphic()), "{location}");
            assert!(aws_lambda_events::http::HeaderValue::from_str(&location).is_ok());
        }
    }

    #[test]
    fn alb_response_uses_the_request_header_mode() {
        let single = Reply::text(200, "ok", "health").into_alb(false);
        assert_eq!(single.status_description.as_deref(), Some("200 OK"));
        assert_eq!(single.headers.get("x-autostop").unwrap(), "health");
        assert!(single.multi_value_headers.is_empty());
        let multi = Reply::redirect("/x".into()).into_alb(true);
        assert!(multi.headers.is_empty());
        assert_eq!(multi.multi_value_headers.get("location").unwrap(), "/x");
        assert_eq!(multi.status_description.as_deref(), Some("307 Temporary Redirect"));
    }
}
