//! Who may wake an environment, decided before any AWS call (pure).
//!
//! Crawlers, uptime monitors, link unfurlers and scanners must not keep environments awake, nor
//! strangers who learn the load balancer's name. A request for a configured host is refused
//! (answered statically, nothing started) when:
//!
//! - its method is `HEAD` or `OPTIONS` (monitors and CORS preflights, never a person);
//! - its path is one a person does not open (`/robots.txt`, `/.well-known/*`, `/wp-*`, ...);
//! - its `User-Agent` names a well-known bot (a built-in list, extendable, switchable off);
//! - `wake_from` is set and the client's address is in none of its networks. The client is the
//!   **right-most** `X-Forwarded-For` entry: the one the ALB appended from the connection it
//!   accepted (its `routing.http.xff_header_processing.mode` is `append`, the default; with
//!   `routing.http.xff_client_port.enabled` the entry is `ip:port`, or `[ipv6]:port`; ELBv2 API
//!   reference, LoadBalancerAttribute). Entries to its left come from the request as sent, so
//!   anyone can write them, except those `trusted_proxies` (a CDN, a corporate proxy in front of
//!   the ALB) appended: the client is then the right-most entry outside those networks.

use std::net::IpAddr;

use serde::Deserialize;

use crate::http::Request;

/// Why a request was refused: the `Reason` of the `Refused` metric and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Method,
    Path,
    Bot,
    Network,
    /// A click-mode rule asked to wake by a request that is not its button's POST.
    ClickRequired,
    /// A rule behind SSO asked by a request without a valid sign-in (`x-amzn-oidc-data`).
    Unauthenticated,
}

impl Reason {
    /// Every reason, in declaration order: `ALL[reason as usize] == reason`.
    pub const ALL: [Reason; 6] =
        [Reason::Method, Reason::Path, Reason::Bot, Reason::Network, Reason::ClickRequired, Reason::Unauthenticated];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Method => "method",
            Reason::Path => "path",
            Reason::Bot => "bot",
            Reason::Network => "network",
            Reason::ClickRequired => "click_required",
            Reason::Unauthenticated => "unauthenticated",
        }
    }
}

/// User agents that never wake anything, matched case-insensitively as substrings.
pub const DEFAULT_BOTS: &[&str] = &[
    // search and AI crawlers
    "googlebot",
    "bingbot",
    "slurp",
    "duckduckbot",
    "baiduspider",
    "yandexbot",
    "applebot",
    "gptbot",
    "ccbot",
    "claudebot",
    "bytespider",
    "petalbot",
    "ahrefsbot",
    "semrushbot",
    "mj12bot",
    "dotbot",
    "crawler",
    "spider",
    // link unfurlers
    "slackbot",
    "slack-imgproxy",
    "facebookexternalhit",
    "twitterbot",
    "linkedinbot",
    "discordbot",
    "telegrambot",
    "whatsapp",
    "skypeuripreview",
    "microsoftpreview",
    "embedly",
    "redditbot",
    // uptime monitors
    "pingdom",
    "uptimerobot",
    "statuscake",
    "site24x7",
    "newrelicpinger",
    "datadogsynthetics",
    "betteruptime",
    "uptime-kuma",
    "elb-healthchecker",
    // scanners
    "zgrab",
    "masscan",
    "nmap",
    "nuclei",
    "sqlmap",
    "nikto",
    "censysinspect",
    "expanse",
];

/// Paths a person does not open: `*` at the end matches any rest.
pub const DEFAULT_PATHS: &[&str] =
    &["/robots.txt", "/favicon.ico", "/.well-known/*", "/wp-*", "/.env", "/.git/*", "/xmlrpc.php", "/phpmyadmin*"];

/// An IPv4 or IPv6 network, `10.0.0.0/8` or `2001:db8::/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let bad = || format!("`{text}` is not a network like \"10.0.0.0/8\" or \"2001:db8::/32\"");
        let (addr, prefix) = text.trim().split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(format!("`{text}`: a prefix of at most {max} bits"));
        }
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            _ => ip,
        };
        let (net, ip, bits) = match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => (u32::from(n) as u128, u32::from(i) as u128, 32),
            (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
            _ => return false,
        };
        let shift = bits - self.prefix as u32;
        shift >= bits || (net >> shift) == (ip >> shift)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The header an API client wakes a click-mode rule with, and the environment variable
/// holding the shared secret (`wake_token = { header, env }`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WakeToken {
    pub header: String,
    pub env: String,
}

/// What may wake a rule (the top-level settings merged with the rule's).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gate {
    /// `None`: any network.
    pub wake_from: Option<Vec<Cidr>>,
    /// Lower case substrings.
    pub user_agents: Vec<String>,
    pub paths: Vec<String>,
    /// Proxies in front of the load balancer whose `X-Forwarded-For` entries are skipped, from
    /// the right, to find the client.
    pub trusted_proxies: Vec<Cidr>,
    /// `wake = "click"`: a sleeping rule wakes only from its page's button or with the
    /// `wake_token` secret (the click mode of `serve`).
    pub click: bool,
}

impl Gate {
    /// The built-in lists, then `user_agents` and `paths` added; `defaults = false` leaves the
    /// built-in lists out.
    pub fn new(wake_from: Option<Vec<Cidr>>, defaults: bool, user_agents: &[String], paths: &[String]) -> Gate {
        let builtin = |list: &[&str]| if defaults { list.iter().map(|s| s.to_string()).collect() } else { Vec::new() };
        let mut ua = builtin(DEFAULT_BOTS);
        ua.extend(user_agents.iter().map(|u| u.to_ascii_lowercase()));
        let mut p = builtin(DEFAULT_PATHS);
        p.extend(paths.iter().cloned());
        Gate { wake_from, user_agents: ua, paths: p, trusted_proxies: Vec::new(), click: false }
    }

    /// `None`: the request may wake the rule.
    pub fn refuse(&self, req: &Request) -> Option<Reason> {
        if matches!(req.method.as_str(), "HEAD" | "OPTIONS") {
            return Some(Reason::Method);
        }
        if self.paths.iter().any(|p| path_matches(p, &req.path)) {
            return Some(Reason::Path);
        }
        let ua = req.user_agent.to_ascii_lowercase();
        if self.user_agents.iter().any(|b| ua.contains(b.as_str())) {
            return Some(Reason::Bot);
        }
        match &self.wake_from {
            Some(nets)
                if !client_ip(&req.forwarded_for, &self.trusted_proxies)
                    .is_some_and(|ip| nets.iter().any(|n| n.contains(ip))) =>
            {
                Some(Reason::Network)
            }
            _ => None,
        }
    }
}

fn path_matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => path == pattern,
    }
}

/// The client's address: the right-most `X-Forwarded-For` entry that is not one of the
/// `trusted` proxies. `None` when there is none, or an entry on the way is not an address (an
/// entry the client wrote stands left of every trusted one).
pub fn client_ip(forwarded_for: &str, trusted: &[Cidr]) -> Option<IpAddr> {
    for entry in forwarded_for.rsplit(',') {
        let ip = entry_ip(entry.trim())?;
        if !trusted.iter().any(|n| n.contains(ip)) {
            return Some(ip);
        }
    }
    None
}

/// One `X-Forwarded-For` entry's address: `203.0.113.7`, `203.0.113.7:5432` (the ALB's client
/// port), `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:5432`.
fn entry_ip(entry: &str) -> Option<IpAddr> {
    if let Some(rest) = entry.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(|p| p.parse::<u16>().is_ok());
        return port_ok.then(|| ip.parse().ok()).flatten();
    }
    if let Ok(ip) = entry.parse() {
        return Some(ip);
    }
    let (ip, port) = entry.rsplit_once(':')?;
    let v4: std::net::Ipv4Addr = ip.parse().ok()?;
    port.parse::<u16>().ok().map(|_| IpAddr::V4(v4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_reasons_are_indexed_by_their_discriminant() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?}");
        }
    }
    use aws_lambda_events::http::Method;

    fn req(method: &str, path: &str, ua: &str, xff: &str) -> Request {
        Request {
            method: Method::from_bytes(method.as_bytes()).unwrap(),
            host: Some("api.x.com".into()),
            path: path.into(),
            accept: "text/html".into(),
            user_agent: ua.into(),
            forwarded_for: xff.into(),
            ..Request::default()
        }
    }

    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0";

    #[test]
    fn the_client_is_the_right_most_forwarded_for_entry() {
        for (xff, want) in [
            ("203.0.113.7", Some("203.0.113.7")),
            ("10.9.9.9, 203.0.113.7", Some("203.0.113.7")),
            ("spoofed, 10.0.0.1 , 198.51.100.2", Some("198.51.100.2")),
            ("2001:db8::1", Some("2001:db8::1")),
            ("[2001:db8::2]:443", Some("2001:db8::2")),
            ("203.0.113.7:51234", Some("203.0.113.7")),
            ("10.0.0.1, 198.51.100.2:443", Some("198.51.100.2")),
            ("203.0.113.7:port", None),
            ("203.0.113.7:99999", None),
            ("", None),
            ("not-an-ip", None),
            ("10.0.0.1, ", None),
        ] {
            assert_eq!(client_ip(xff, &[]), want.map(|w| w.parse().unwrap()), "{xff}");
        }
    }

    #[test]
    fn behind_trusted_proxies_the_client_is_the_right_most_entry_outside_them() {
        let cloudfront = [Cidr::parse("130.176.0.0/16").unwrap(), Cidr::parse("2600:9000::/28").unwrap()];
        for (xff, want) in [
            ("198.51.100.2, 130.176.4.9", Some("198.51.100.2")),
            ("10.9.9.9, 198.51.100.2, 130.176.4.9:443", Some("198.51.100.2")),
            ("198.51.100.2, [2600:9000::1]:443", Some("198.51.100.2")),
            ("130.176.4.9", None),
            ("garbage, 130.176.4.9", None),
        ] {
            assert_eq!(client_ip(xff, &cloudfront), want.map(|w| w.parse().unwrap()), "{xff}");
        }
        assert_eq!(
            client_ip("198.51.100.2, 130.176.4.9", &[]),
            Some("130.176.4.9".parse().unwrap()),
            "untrusted: the CDN"
        );
    }

    #[test]
    fn networks_contain_their_addresses_v4_and_v6() {
        let v4 = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(v4.contains("10.255.1.2".parse().unwrap()));
        assert!(!v4.contains("11.0.0.1".parse().unwrap()));
        assert!(v4.contains("::ffff:10.1.2.3".parse().unwrap()), "IPv4-mapped IPv6");
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("198.51.100.1".parse().unwrap()));
        assert!(Cidr::parse("198.51.100.1/32").unwrap().contains("198.51.100.1".parse().unwrap()));
        for bad in ["10.0.0.0", "10.0.0.0/33", "2001:db8::/129", "ten/8", "10.0.0.0/x"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn who_may_wake() {
        let office = Gate::new(Some(vec![Cidr::parse("10.0.0.0/8").unwrap()]), true, &[], &[]);
        let open = Gate::new(None, true, &["acme-monitor".into()], &["/healthz".into()]);
        let bare = Gate::new(None, false, &[], &[]);
        use Reason::*;
        for (gate, method, path, ua, xff, want) in [
            (&open, "GET", "/", FIREFOX, "198.51.100.2", None),
            (&open, "POST", "/v1/items", "curl/8.5", "198.51.100.2", None),
            (&open, "HEAD", "/", FIREFOX, "198.51.100.2", Some(Method)),
            (&open, "OPTIONS", "/v1", FIREFOX, "198.51.100.2", Some(Method)),
            (&open, "GET", "/robots.txt", FIREFOX, "", Some(Path)),
            (&open, "GET", "/.well-known/security.txt", FIREFOX, "", Some(Path)),
            (&open, "GET", "/wp-login.php", FIREFOX, "", Some(Path)),
            (&open, "GET", "/.git/config", FIREFOX, "", Some(Path)),
            (&open, "GET", "/healthz", FIREFOX, "", Some(Path)),
            (&open, "GET", "/environment", FIREFOX, "", None),
            (&open, "GET", "/", "Mozilla/5.0 (compatible; Googlebot/2.1)", "", Some(Bot)),
            (&open, "GET", "/", "Slackbot-LinkExpanding 1.0", "", Some(Bot)),
            (&open, "GET", "/", "UptimeRobot/2.0", "", Some(Bot)),
            (&open, "GET", "/", "Acme-Monitor/3", "", Some(Bot)),
            (&bare, "GET", "/robots.txt", "Googlebot", "", None),
            (&bare, "HEAD", "/", FIREFOX, "", Some(Method)),
            (&office, "GET", "/", FIREFOX, "10.1.2.3", None),
            (&office, "GET", "/", FIREFOX, "10.1.2.3, 198.51.100.2", Some(Network)),
            (&office, "GET", "/", FIREFOX, "198.51.100.2, 10.1.2.3", None),
            (&office, "GET", "/", FIREFOX, "", Some(Network)),
            (&office, "GET", "/", FIREFOX, "garbage", Some(Network)),
        ] {
            assert_eq!(gate.refuse(&req(method, path, ua, xff)), want, "{method} {path} {ua} [{xff}]");
        }
    }
}
