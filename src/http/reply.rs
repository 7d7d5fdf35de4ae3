//! A response and the shape the ALB reads it in (`statusCode`, `headers` or
//! `multiValueHeaders`, `body`): serialised straight from its parts.

use aws_lambda_events::http;
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// Most values are constants: borrowed, not copied, on every answer.
    pub headers: Vec<(&'static str, Cow<'static, str>)>,
    pub body: String,
}

impl Reply {
    fn new(status: u16, content_type: &'static str, body: String, kind: &'static str) -> Reply {
        let mut headers = Vec::with_capacity(7);
        headers.extend([
            ("content-type", Cow::Borrowed(content_type)),
            // Never cached by a CDN or shared cache; the answer depends on these headers.
            ("cache-control", Cow::Borrowed("no-store, private")),
            ("vary", Cow::Borrowed("Accept, User-Agent")),
            // Nothing autostop answers belongs in a search index.
            ("x-robots-tag", Cow::Borrowed("noindex")),
            ("x-autostop", Cow::Borrowed(kind)),
        ]);
        Reply { status, headers, body }
    }

    pub fn html(status: u16, body: String, kind: &'static str) -> Reply {
        Reply::new(status, "text/html; charset=utf-8", body, kind)
    }

    pub fn json(status: u16, body: String, kind: &'static str) -> Reply {
        Reply::new(status, "application/json", body, kind)
    }

    pub fn text(status: u16, body: &str, kind: &'static str) -> Reply {
        Reply::new(status, "text/plain; charset=utf-8", body.to_string(), kind)
    }

    /// 307 keeps the method and body.
    pub fn redirect(location: String) -> Reply {
        let mut r = Reply::new(307, "text/plain; charset=utf-8", String::new(), "redirect");
        r.headers.push(("location", Cow::Owned(location)));
        r
    }

    /// 303: the browser follows with a GET (after a form's POST).
    pub fn see_other(location: String) -> Reply {
        let mut r = Reply::new(303, "text/plain; charset=utf-8", String::new(), "redirect");
        r.headers.push(("location", Cow::Owned(location)));
        r
    }

    pub fn with(mut self, name: &'static str, value: impl Into<Cow<'static, str>>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// The answer as the ALB reads it, with headers in the mode the request came in.
    pub fn into_alb(self, multi_value: bool) -> AlbReply {
        AlbReply { reply: self, multi_value }
    }
}

/// A [`Reply`] in the shape the ALB reads from a Lambda target: `statusCode`,
/// `statusDescription`, `headers` or `multiValueHeaders`, `body`, `isBase64Encoded` (ALB guide,
/// "Lambda functions as targets"; an ALB with multi-value headers on reads only
/// `multiValueHeaders`, and with them off only `headers`). Serialised straight from the reply,
/// with no header map or JSON tree in between: on the refused and unknown-host answers, which a
/// scan makes most of, those copies cost more than deciding the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlbReply {
    pub reply: Reply,
    pub multi_value: bool,
}

impl Serialize for AlbReply {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = &self.reply;
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry("statusCode", &r.status)?;
        map.serialize_entry("statusDescription", &format!("{} {}", r.status, reason(r.status)))?;
        let (single, multi) = (HeaderList(&r.headers, false), HeaderList(&r.headers, true));
        let none = HeaderList(&[], false);
        map.serialize_entry("headers", if self.multi_value { &none } else { &single })?;
        map.serialize_entry("multiValueHeaders", if self.multi_value { &multi } else { &none })?;
        map.serialize_entry("body", &r.body)?;
        map.serialize_entry("isBase64Encoded", &false)?;
        map.end()
    }
}

/// Header values as the ALB takes them: a name once with its first value, or (multi-value) once
/// with all its values in order. A value HTTP does not allow (a control character) is left out.
struct HeaderList<'a>(&'a [(&'static str, Cow<'static, str>)], bool);

impl Serialize for HeaderList<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let HeaderList(headers, multi) = *self;
        let valid: Vec<&(&str, Cow<str>)> = headers.iter().filter(|(_, v)| is_header_value(v)).collect();
        let mut map = serializer.serialize_map(None)?;
        for (i, (name, value)) in valid.iter().enumerate() {
            if valid[..i].iter().any(|(n, _)| n == name) {
                continue;
            }
            if multi {
                let values: Vec<&str> = valid[i..].iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_ref()).collect();
                map.serialize_entry(name, &values)?;
            } else {
                map.serialize_entry(name, value)?;
            }
        }
        map.end()
    }
}

/// What `http::HeaderValue` accepts: visible characters, space and tab; no other control byte.
fn is_header_value(v: &str) -> bool {
    v.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alb_response_uses_the_request_header_mode() {
        let single = serde_json::to_value(Reply::text(200, "ok", "health").into_alb(false)).unwrap();
        assert_eq!(single["statusCode"], 200);
        assert_eq!(single["statusDescription"], "200 OK");
        assert_eq!(single["headers"]["x-autostop"], "health");
        assert_eq!(single["multiValueHeaders"], serde_json::json!({}));
        assert_eq!(single["body"], "ok");
        assert_eq!(single["isBase64Encoded"], false);
        let multi = serde_json::to_value(Reply::redirect("/x".into()).into_alb(true)).unwrap();
        assert_eq!(multi["headers"], serde_json::json!({}));
        assert_eq!(multi["multiValueHeaders"]["location"], serde_json::json!(["/x"]));
        assert_eq!(multi["statusDescription"], "307 Temporary Redirect");
    }

    /// What the header map did before: a repeated name keeps its first value (single-value
    /// mode) or all of them in order (multi-value); a value with CR or LF is never sent.
    #[test]
    fn repeated_and_invalid_header_values() {
        let reply = Reply::text(200, "ok", "health")
            .with("set-cookie", "a=1")
            .with("set-cookie", "b=2")
            .with("location", "/x\r\nSet-Cookie: evil=1");
        let single = serde_json::to_value(reply.clone().into_alb(false)).unwrap();
        assert_eq!(single["headers"]["set-cookie"], "a=1");
        assert!(single["headers"].get("location").is_none());
        let multi = serde_json::to_value(reply.into_alb(true)).unwrap();
        assert_eq!(multi["multiValueHeaders"]["set-cookie"], serde_json::json!(["a=1", "b=2"]));
        assert!(multi["multiValueHeaders"].get("location").is_none());
    }
}
