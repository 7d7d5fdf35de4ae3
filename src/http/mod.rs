//! The ALB protocol: [`Request`] read from an ALB event and [`Reply`] shaped as the ALB reads a
//! Lambda target's answer. It knows headers, encodings and media types; it imports nothing of
//! autostop's domain (no rule, no wake, no AWS call).

mod reply;
mod request;

pub use reply::{AlbReply, Reply};
pub use request::{accepts_html, prefers_json, raw_query, Request};
