//! Rules and host matching: which autostopping rule a request's `Host` belongs to.
//!
//! Everything here is pure: hosts are normalised (lower case, no port, no trailing dot) and looked
//! up in an index built once at start. An exact host wins over a wildcard; among wildcards the most
//! specific (longest suffix) wins. `*.x` matches one or more labels under `x`, never `x` itself.

use std::collections::HashMap;
use std::time::Duration;

/// One autostopping rule, validated (see [`crate::config`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    /// Host patterns as written in the config, normalised: `api.dev.example.com` or `*.api.dev.example.com`.
    pub hosts: Vec<String>,
    /// The app's target group; `None` for a rule that only serves as a dependency (no hosts).
    pub target_group_arn: Option<String>,
    pub idle: Duration,
    /// Configured ALB priority for the first host chunk, if any (see [`crate::priority`]).
    pub priority: Option<u32>,
    pub ec2: Option<Ec2Resources>,
    pub ecs: Option<EcsService>,
    pub asg: Option<AsgSpec>,
    pub rds: Option<RdsSpec>,
    pub busy_when: Option<BusySignal>,
    /// What the rule's resources cost per hour while awake (any currency), for the savings report.
    pub hourly_cost: Option<f64>,
    /// Who may wake it ([`crate::gate`]).
    pub gate: crate::gate::Gate,
    /// Working hours and forced sleep ([`crate::schedule`]).
    pub schedule: Option<std::sync::Arc<crate::schedule::Schedule>>,
    /// Rules readied first, in this order, when this one wakes; stopped after it.
    pub depends_on: Vec<String>,
    /// How long after its dependencies are ready this rule's own resources start.
    pub delay: Duration,
}

impl Rule {
    /// The app's target group as the standing rules name it. Only a rule with hosts has
    /// standing rules, and a rule with hosts always has a target group; "" otherwise.
    pub fn app_group(&self) -> &str {
        self.target_group_arn.as_deref().unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec2Resources {
    pub instance_ids: Vec<String>,
    /// Stop with `Hibernate=true`: RAM is kept, so the app resumes where it was.
    pub hibernate: bool,
}

/// RDS DB instances and Aurora DB clusters: started on wake, stopped to sleep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdsSpec {
    pub instances: Vec<String>,
    pub clusters: Vec<String>,
}

/// An Auto Scaling group: scaled to 0 (min size and desired capacity) to sleep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsgSpec {
    pub name: String,
    /// Capacity to restore on wake; when absent, the one remembered at scale-down, else 1.
    pub desired: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsService {
    pub cluster: String,
    pub service: String,
    /// Count to scale to on wake; when absent, the count remembered at scale-down, else 1.
    pub desired_count: Option<u32>,
}

/// Extra activity signal for long-lived connections (read by the idle check).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BusySignal {
    /// EC2 `NetworkPacketsIn` per minute, summed over the rule's instances.
    NetworkPacketsIn(u64),
    /// `CPUUtilization` of the ECS service, or of the EC2 instances.
    CpuPercent(f64),
}

/// Normalise a `Host` header value: lower case, no port, no trailing dot.
/// Returns `None` when nothing usable is left.
pub fn normalize_host(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let without_port = if let Some(rest) = raw.strip_prefix('[') {
        // IPv6 literal: "[::1]:8080"
        let end = rest.find(']')?;
        &raw[..end + 2]
    } else {
        match raw.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => raw,
        }
    };
    let host = without_port.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// ALB's host-header matching: case-insensitive; `*` matches any run of characters (dots
/// included, possibly none), `?` exactly one (ALB guide, "Host conditions"). Not ours: ours
/// ([`HostIndex`]) prefers exact hosts and longer suffixes; ALB takes the first rule by priority.
pub fn alb_host_match(pattern: &str, host: &str) -> bool {
    fn go(p: &[u8], h: &[u8]) -> bool {
        match (p.first(), h.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], h) || (!h.is_empty() && go(p, &h[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &h[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &h[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), host.as_bytes())
}

/// Host -> rule index lookup, built once from the config.
#[derive(Debug, Default, Clone)]
pub struct HostIndex {
    exact: HashMap<String, usize>,
    /// Keyed by the suffix after `*.`: `*.api.dev.example.com` -> `api.dev.example.com`.
    wildcard: HashMap<String, usize>,
}

impl HostIndex {
    /// Adds a normalised pattern. Returns the index of the rule already holding it, if any.
    pub fn insert(&mut self, pattern: &str, rule: usize) -> Result<(), usize> {
        let (map, key) = match pattern.strip_prefix("*.") {
            Some(suffix) => (&mut self.wildcard, suffix),
            None => (&mut self.exact, pattern),
        };
        match map.get(key) {
            Some(&other) if other != rule => Err(other),
            _ => {
                map.insert(key.to_string(), rule);
                Ok(())
            }
        }
    }

    /// The rule index for a normalised host: exact first, then the most specific wildcard.
    pub fn lookup(&self, host: &str) -> Option<usize> {
        if let Some(&i) = self.exact.get(host) {
            return Some(i);
        }
        // Walk suffixes from the longest: "a.b.c" tries "b.c", then "c".
        let mut rest = host;
        while let Some((_, suffix)) = rest.split_once('.') {
            if let Some(&i) = self.wildcard.get(suffix) {
                return Some(i);
            }
            rest = suffix;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_strips_port_case_and_trailing_dot() {
        assert_eq!(normalize_host("API.Dev.Example.com.:8080").as_deref(), Some("api.dev.example.com"));
        assert_eq!(normalize_host("api.dev.example.com").as_deref(), Some("api.dev.example.com"));
        assert_eq!(normalize_host(" web.localhost:80 ").as_deref(), Some("web.localhost"));
        assert_eq!(normalize_host("[::1]:8080").as_deref(), Some("[::1]"));
        assert_eq!(normalize_host(""), None);
        assert_eq!(normalize_host(":80"), None);
        assert_eq!(normalize_host("."), None);
    }

    fn index() -> HostIndex {
        let mut idx = HostIndex::default();
        idx.insert("api.dev.example.com", 0).unwrap();
        idx.insert("*.api.dev.example.com", 1).unwrap();
        idx.insert("*.dev.example.com", 2).unwrap();
        idx.insert("special.pr.api.dev.example.com", 3).unwrap();
        idx
    }

    #[test]
    fn exact_beats_wildcard_and_longest_wildcard_wins() {
        let idx = index();
        assert_eq!(idx.lookup("api.dev.example.com"), Some(0));
        assert_eq!(idx.lookup("pr-1.api.dev.example.com"), Some(1));
        assert_eq!(idx.lookup("a.b.api.dev.example.com"), Some(1), "one or more labels");
        assert_eq!(idx.lookup("special.pr.api.dev.example.com"), Some(3));
        assert_eq!(idx.lookup("web.dev.example.com"), Some(2));
        assert_eq!(idx.lookup("dev.example.com"), None, "*.x does not match x");
        assert_eq!(idx.lookup("example.com"), None);
        assert_eq!(idx.lookup("api.dev.example.org"), None);
    }

    #[test]
    fn alb_matching_is_a_glob_over_the_whole_host() {
        assert!(alb_host_match("*.dev.example.com", "a.b.dev.example.com"), "* spans dots");
        assert!(alb_host_match("API.dev.example.com", "api.DEV.example.com"), "case-insensitive");
        assert!(alb_host_match("api-?.x.com", "api-7.x.com"));
        assert!(!alb_host_match("api-?.x.com", "api-77.x.com"), "? is exactly one");
        assert!(alb_host_match("*.x.com", ".x.com"), "* may match nothing");
        assert!(!alb_host_match("*.x.com", "x.com"));
        assert!(alb_host_match("a*z.x.com", "abcz.x.com"));
    }

    #[test]
    fn a_pattern_claimed_twice_reports_the_holder() {
        let mut idx = index();
        assert_eq!(idx.insert("api.dev.example.com", 5), Err(0));
        assert_eq!(idx.insert("*.dev.example.com", 5), Err(2));
        assert_eq!(idx.insert("api.dev.example.com", 0), Ok(()), "same rule is fine");
    }
}
