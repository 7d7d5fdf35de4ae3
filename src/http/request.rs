//! An ALB request as autostop reads it: straight from the event's JSON (ALB guide, "Lambda
//! functions as targets"), headers in either mode, the query as sent, a base64 body decoded.
//! Nothing here knows a rule, a wake or AWS.

use aws_lambda_events::http::Method;
use serde_json::Value;

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
    /// `x-amzn-oidc-data`: the user claims an ALB authenticate action signed, or anything a
    /// client sent under that name (it is verified before it counts).
    pub oidc_data: Option<String>,
}

impl Request {
    /// Reads an ALB event (ALB guide, "Lambda functions as targets": `httpMethod`, `path`,
    /// `headers` or, with multi-value headers on, `multiValueHeaders`, the query parameters,
    /// `body`, `isBase64Encoded`) straight from its JSON: no header map is built, since under a
    /// scan most requests are answered from three headers. Header names match case-insensitively.
    /// `wake_header` names the header read into [`Request::wake_token`].
    pub fn from_event(event: &Value, wake_header: Option<&str>) -> Result<Request, String> {
        let method = match event.get("httpMethod") {
            Some(Value::String(m)) => {
                Method::from_bytes(m.as_bytes()).map_err(|_| format!("httpMethod `{m}` is not a method"))?
            }
            other => return Err(format!("httpMethod must be a string, got {}", other.unwrap_or(&Value::Null))),
        };
        let headers = Headers::of(event);
        Ok(Request {
            method,
            host: headers.first("host").map(str::to_string),
            path: event.get("path").and_then(Value::as_str).unwrap_or("/").to_string(),
            query: raw_query(event),
            accept: headers.first("accept").unwrap_or_default().to_string(),
            user_agent: headers.first("user-agent").unwrap_or_default().to_string(),
            forwarded_for: headers.all("x-forwarded-for", ", "),
            multi_value: headers.multi,
            cookie: headers.all("cookie", "; "),
            origin: headers.first("origin").unwrap_or_default().to_string(),
            fetch_site: headers.first("sec-fetch-site").unwrap_or_default().to_string(),
            body: body_text(event),
            https: headers.first("x-forwarded-proto").is_some_and(|p| p.eq_ignore_ascii_case("https")),
            wake_token: wake_header.and_then(|h| headers.first(h)).map(str::to_string),
            oidc_data: headers.first("x-amzn-oidc-data").map(str::to_string),
        })
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

/// An ALB event's headers: `multiValueHeaders` when the target group has them on (the event then
/// has no `headers`), else `headers`.
struct Headers<'a> {
    map: Option<&'a serde_json::Map<String, Value>>,
    multi: bool,
}

impl<'a> Headers<'a> {
    fn of(event: &'a Value) -> Headers<'a> {
        match event.get("multiValueHeaders").and_then(Value::as_object) {
            Some(m) if !m.is_empty() => Headers { map: Some(m), multi: true },
            _ => Headers { map: event.get("headers").and_then(Value::as_object), multi: false },
        }
    }

    /// Every value of `name`, in order.
    fn values(&self, name: &str) -> Vec<&'a str> {
        let mut out = Vec::new();
        for (_, v) in self.map.into_iter().flatten().filter(|(k, _)| k.eq_ignore_ascii_case(name)) {
            match v {
                Value::Array(vs) => out.extend(vs.iter().filter_map(Value::as_str)),
                Value::String(s) => out.push(s.as_str()),
                _ => {}
            }
        }
        out
    }

    fn first(&self, name: &str) -> Option<&'a str> {
        self.values(name).first().copied()
    }

    fn all(&self, name: &str, separator: &str) -> String {
        self.values(name).join(separator)
    }
}

/// The body as text; only small form bodies matter, so a large or binary one reads as empty.
fn body_text(event: &Value) -> String {
    use base64::Engine;
    let Some(body) = event.get("body").and_then(Value::as_str).filter(|b| b.len() <= 4096) else {
        return String::new();
    };
    if event.get("isBase64Encoded").and_then(Value::as_bool) != Some(true) {
        return body.to_string();
    }
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default()
}

/// The query string of an ALB event, rebuilt in the order the event lists keys and values, as
/// the ALB passed them (not decoded). Multi-value mode lists every value of a repeated key; in
/// single-value mode the ALB keeps only the last one (ALB guide, Lambda functions as targets), so
/// multi-value mode is the one to use. A key with an empty list contributes nothing.
pub fn raw_query(event: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(Value::Object(multi)) = event.get("multiValueQueryStringParameters") {
        for (k, values) in multi {
            for v in values.as_array().into_iter().flatten() {
                parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
            }
        }
    } else if let Some(Value::Object(single)) = event.get("queryStringParameters") {
        for (k, v) in single {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    parts.join("&")
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

    /// The event read without a header map: single and multi-value modes, names in any case,
    /// repeated headers joined, the wake header only when configured, bad methods refused.
    #[test]
    fn requests_are_read_from_the_event_json() {
        let single = serde_json::json!({
            "httpMethod": "POST", "path": "/a", "queryStringParameters": {"x": "1"},
            "headers": {"Host": "api.x.com", "USER-AGENT": "curl/8", "x-forwarded-for": "1.2.3.4, 10.0.0.9",
                        "x-forwarded-proto": "HTTPS", "x-autostop-wake": "s3cret"},
            "body": "YT0x", "isBase64Encoded": true
        });
        let r = Request::from_event(&single, Some("X-Autostop-Wake")).unwrap();
        assert_eq!((r.method.as_str(), r.host.as_deref(), r.path.as_str()), ("POST", Some("api.x.com"), "/a"));
        assert_eq!((r.user_agent.as_str(), r.query.as_str(), r.body.as_str()), ("curl/8", "x=1", "a=1"));
        assert_eq!(r.forwarded_for, "1.2.3.4, 10.0.0.9");
        assert!(r.https && !r.multi_value);
        assert_eq!(r.wake_token.as_deref(), Some("s3cret"));
        assert_eq!(Request::from_event(&single, None).unwrap().wake_token, None);

        let multi = serde_json::json!({
            "httpMethod": "GET", "headers": {},
            "multiValueHeaders": {"host": ["api.x.com"], "x-forwarded-for": ["1.2.3.4", "10.0.0.9"],
                                  "cookie": ["a=1", "b=2"]}
        });
        let r = Request::from_event(&multi, None).unwrap();
        assert!(r.multi_value);
        assert_eq!(
            (r.path.as_str(), r.forwarded_for.as_str(), r.cookie.as_str()),
            ("/", "1.2.3.4, 10.0.0.9", "a=1; b=2")
        );

        for bad in [
            serde_json::json!({"path": "/"}),
            serde_json::json!({"httpMethod": 5}),
            serde_json::json!({"httpMethod": "G T"}),
        ] {
            assert!(Request::from_event(&bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_query_keeps_the_event_order_repeats_and_encoding() {
        let multi = serde_json::json!({"multiValueQueryStringParameters": {"z": ["1", "2"], "a": ["x%20y"], "e": []}});
        assert_eq!(raw_query(&multi), "z=1&z=2&a=x%20y");
        let single = serde_json::json!({"queryStringParameters": {"sig": "ab%2Bc", "expires": "9"}});
        assert_eq!(raw_query(&single), "sig=ab%2Bc&expires=9");
        assert_eq!(raw_query(&serde_json::json!({})), "");
    }
}
