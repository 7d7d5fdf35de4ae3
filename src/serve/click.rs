//! Wake on a click (`wake = "click"`), decided before any AWS call (pure, but for the token's
//! randomness).
//!
//! A sleeping rule in click mode answers a browser with a page holding a "Wake" button; only
//! that button's POST wakes it. Link prefetchers and unfurlers fetch the page and wake nothing.
//! The POST must carry the page's token twice (a double-submit token): in a form field and in a
//! `SameSite=Strict` cookie set with the page. Another site can make a browser POST to us, but
//! it can neither read our cookie nor, being cross-site, have the browser send it, so it cannot
//! make the two agree. Every Lambda environment checks this alone: nothing is stored.
//! When the browser says where the POST came from (`Origin`, `Sec-Fetch-Site`), it must be us.
//!
//! API clients wake a click-mode rule with a shared secret in a header (`wake_token`).

use std::io::Read;

use crate::http::Request;

/// Name of the cookie and of the form field that carry the page's token.
pub const FIELD: &str = "autostop_wake";
/// Lifetime of the click page's cookie: a page left open longer needs a reload.
pub const COOKIE_MAX_AGE_SECS: u64 = 3600;

/// A fresh token: 16 random bytes from the kernel, as hex. `None` if the kernel gave none (the
/// caller answers without a button rather than with a guessable token).
pub fn new_token() -> Option<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The `Set-Cookie` value that pairs with the page's form. `Secure` when the client reached the
/// load balancer over HTTPS (a browser drops Secure cookies set over plain HTTP).
pub fn set_cookie(token: &str, https: bool) -> String {
    let secure = if https { "; Secure" } else { "" };
    format!("{FIELD}={token}; Path=/; Max-Age={COOKIE_MAX_AGE_SECS}; HttpOnly; SameSite=Strict{secure}")
}

/// The POST is the click page's own: same origin as far as the browser tells, and the form's
/// token equal to the cookie's.
pub fn is_click(req: &Request, host: &str) -> bool {
    if req.method != "POST" || !same_origin(req, host) {
        return false;
    }
    let (Some(cookie), Some(field)) = (cookie(&req.cookie, FIELD), form_field(&req.body, FIELD)) else {
        return false;
    };
    cookie.len() == 32 && cookie.bytes().all(|b| b.is_ascii_hexdigit()) && constant_time_eq(cookie, &field)
}

/// `Origin` (sent with every browser POST) names this host, and `Sec-Fetch-Site`, when sent,
/// is `same-origin`. Absent headers are not held against the request: the tokens decide.
fn same_origin(req: &Request, host: &str) -> bool {
    let fetch_ok = req.fetch_site.is_empty() || req.fetch_site.eq_ignore_ascii_case("same-origin");
    let origin_host = req.origin.split_once("://").map(|(_, rest)| rest.trim_end_matches('/'));
    let origin_ok = req.origin.is_empty()
        || origin_host.is_some_and(|o| {
            let o =
                o.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(o, |(h, _)| h);
            o.eq_ignore_ascii_case(host)
        });
    fetch_ok && origin_ok
}

/// A cookie's value from a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').filter_map(|c| c.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v.trim())
}

/// A field of an `application/x-www-form-urlencoded` body (our token is hex: no decoding needed
/// beyond `+`/`%` being absent from it, so an encoded value simply does not match).
pub fn form_field(body: &str, name: &str) -> Option<String> {
    body.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
}

/// Equal, in a time that depends only on the lengths (secrets are compared with this).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The API client presented the shared secret (`wake_token`). An unset secret admits no one.
pub fn has_secret(presented: Option<&str>, secret: Option<&str>) -> bool {
    match (presented, secret) {
        (Some(p), Some(s)) if !s.is_empty() => constant_time_eq(p.trim(), s),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::http::Method;

    fn post(cookie: &str, body: &str, origin: &str, fetch_site: &str) -> Request {
        Request {
            method: Method::POST,
            host: Some("api.dev.example.com".into()),
            path: "/".into(),
            accept: "text/html".into(),
            user_agent: "Mozilla/5.0".into(),
            cookie: cookie.into(),
            body: body.into(),
            origin: origin.into(),
            fetch_site: fetch_site.into(),
            ..Request::default()
        }
    }

    const T: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn tokens_are_fresh_hex() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn only_the_pages_own_post_is_a_click() {
        let c = format!("theme=dark; {FIELD}={T}");
        let f = format!("{FIELD}={T}");
        let host = "api.dev.example.com";
        for (cookie, body, origin, site, want) in [
            (c.as_str(), f.as_str(), "https://api.dev.example.com", "same-origin", true),
            (c.as_str(), f.as_str(), "http://API.dev.example.com:8080", "", true),
            (c.as_str(), f.as_str(), "", "", true),
            // another site: wrong origin, cross-site fetch, no cookie, or a token it made up
            (c.as_str(), f.as_str(), "https://evil.example", "", false),
            (c.as_str(), f.as_str(), "https://api.dev.example.com.evil.example", "", false),
            (c.as_str(), f.as_str(), "", "cross-site", false),
            (c.as_str(), f.as_str(), "null", "", false),
            ("", f.as_str(), "", "", false),
            (c.as_str(), "", "", "", false),
            (c.as_str(), "autostop_wake=ffffffffffffffffffffffffffffffff", "", "", false),
            ("autostop_wake=x", "autostop_wake=x", "", "", false),
        ] {
            assert_eq!(
                is_click(&post(cookie, body, origin, site), host),
                want,
                "{cookie} | {body} | {origin} | {site}"
            );
        }
        let mut get = post(&c, &f, "", "");
        get.method = Method::GET;
        assert!(!is_click(&get, host), "a GET is never a click");
    }

    #[test]
    fn the_cookie_is_strict_and_secure_over_https() {
        assert_eq!(
            set_cookie(T, true),
            format!("{FIELD}={T}; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict; Secure")
        );
        assert!(!set_cookie(T, false).contains("Secure"));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(has_secret(Some("s3cret-value"), Some("s3cret-value")));
        assert!(!has_secret(Some("s3cret-valu"), Some("s3cret-value")));
        assert!(!has_secret(Some("s3cret-valuf"), Some("s3cret-value")));
        assert!(!has_secret(None, Some("s3cret-value")));
        assert!(!has_secret(Some(""), Some("")), "an empty secret admits no one");
        assert!(!has_secret(Some("x"), None));
    }
}
