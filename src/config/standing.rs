//! The standing ALB rules a config needs, and their priorities, as pure functions: planned when
//! the config loads, so a config that ALB would order wrongly never loads.
//!
//! An ALB listener walks its rules by priority, lowest first, and the first match wins (ALB
//! guide, "Listener rules"). autostop's own host matching prefers an exact host to a wildcard and
//! a longer wildcard suffix to a shorter one. For ALB to give the same answer, every ALB rule whose
//! host values are more specific must come before every rule whose values also match those hosts:
//!
//! - each configured rule's hosts become one or more ALB rules ("chunks") of at most
//!   [`MAX_HOSTS_PER_ALB_RULE`] values (a rule takes one host-header condition, and a condition
//!   up to three match evaluations);
//! - a rule whose patterns overlap another rule's patterns is chunked by specificity class (exact
//!   hosts; wildcards by the number of labels of their suffix), so no chunk mixes classes that
//!   must sit on both sides of another rule's chunk; a rule that overlaps nothing keeps its hosts
//!   together;
//! - chunks are ordered by class (exact first, then longer wildcard suffixes first), then by rule
//!   order in the config; derived priorities count up from [`DERIVED_BASE`] in that order, skipping
//!   priorities that are configured or held by rules autostop does not own.
//!
//! A configured `priority` pins its rule's first chunk (and `priority + k` for chunk `k`); one that
//! would put a less specific pattern before a more specific one it overlaps is a config error
//! naming both rules.

use std::collections::HashSet;

use super::error::{err, ConfigError};
use super::rule::Rule;

pub use crate::cloud::alb::{MAX_HOSTS_PER_ALB_RULE, MAX_PRIORITY};
/// Derived priorities start here, leaving the low ones to people.
pub const DERIVED_BASE: u32 = 10_000;

/// One ALB rule a configured rule needs (on every listener).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Index of the configured rule in `Config::rules`.
    pub rule: usize,
    /// The configured rule's name (the `autostop:rule` tag).
    pub owner: String,
    /// Position among the rule's chunks.
    pub index: usize,
    pub hosts: Vec<String>,
    /// Specificity class: 0 for exact hosts, then larger for shorter wildcard suffixes.
    pub rank: u32,
    /// Set when the rule has a configured priority: `priority + index`.
    pub pinned: Option<u32>,
}

/// What the planner needs of a configured rule.
#[derive(Debug, Clone, Copy)]
pub struct RuleHosts<'a> {
    pub name: &'a str,
    pub hosts: &'a [String],
    pub priority: Option<u32>,
}

/// A pattern's specificity class: lower is evaluated earlier.
pub fn rank(pattern: &str) -> u32 {
    match pattern.strip_prefix("*.") {
        None => 0,
        Some(suffix) => 1000 - (suffix.split('.').count() as u32).min(999),
    }
}

/// Whether some host matches both patterns (normalised, `*.` only as a whole first label).
pub fn overlaps(a: &str, b: &str) -> bool {
    match (a.strip_prefix("*."), b.strip_prefix("*.")) {
        (None, None) => a == b,
        (None, Some(s)) | (Some(s), None) => {
            let exact = if a.starts_with("*.") { b } else { a };
            exact.len() > s.len() + 1 && exact.ends_with(s) && exact.as_bytes()[exact.len() - s.len() - 1] == b'.'
        }
        (Some(s), Some(t)) => s == t || s.ends_with(&format!(".{t}")) || t.ends_with(&format!(".{s}")),
    }
}

/// Every chunk of every rule, in the order ALB must evaluate them.
pub fn chunks(rules: &[RuleHosts]) -> Vec<Chunk> {
    let mut out = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let mut hosts: Vec<&String> = rule.hosts.iter().collect();
        hosts.sort_by_key(|h| rank(h));
        let alone = rule.hosts.iter().all(|p| {
            rules.iter().enumerate().filter(|(j, _)| *j != i).all(|(_, o)| o.hosts.iter().all(|q| !overlaps(p, q)))
        });
        let groups: Vec<Vec<&String>> = if alone {
            vec![hosts]
        } else {
            let mut groups: Vec<Vec<&String>> = Vec::new();
            for h in hosts {
                match groups.last_mut() {
                    Some(g) if rank(g[0]) == rank(h) => g.push(h),
                    _ => groups.push(vec![h]),
                }
            }
            groups
        };
        let mut index = 0;
        for group in groups {
            for part in group.chunks(MAX_HOSTS_PER_ALB_RULE) {
                let hosts: Vec<String> = part.iter().map(|h| h.to_string()).collect();
                out.push(Chunk {
                    rule: i,
                    owner: rule.name.to_string(),
                    index,
                    rank: hosts.iter().map(|h| rank(h)).min().unwrap_or(0),
                    hosts,
                    pinned: rule.priority.map(|p| p + index as u32),
                });
                index += 1;
            }
        }
    }
    out.sort_by_key(|c| (c.rank, c.rule, c.index));
    out
}

/// Priorities for `chunks` (in their order): pinned ones as configured, the others counting up
/// from [`DERIVED_BASE`], skipping pinned priorities and `taken` (rules that are not ours).
/// `None` when the listener has no room left.
pub fn assign(chunks: &[Chunk], taken: &HashSet<u32>) -> Option<Vec<u32>> {
    let pinned: HashSet<u32> = chunks.iter().filter_map(|c| c.pinned).collect();
    let mut next = DERIVED_BASE;
    let mut out = Vec::with_capacity(chunks.len());
    for c in chunks {
        if let Some(p) = c.pinned {
            out.push(p);
            continue;
        }
        while pinned.contains(&next) || taken.contains(&next) {
            next += 1;
        }
        if next > MAX_PRIORITY {
            return None;
        }
        out.push(next);
        next += 1;
    }
    Some(out)
}

/// Two chunks in an order ALB would get wrong: `first` would capture hosts of `second`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderConflict {
    /// The less specific chunk, evaluated first.
    pub first: (String, String, u32),
    /// The more specific chunk it overlaps, evaluated later.
    pub second: (String, String, u32),
}

impl std::fmt::Display for OrderConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ((a, ah, ap), (b, bh, bp)) = (&self.first, &self.second);
        write!(
            f,
            "rule `{a}` ({ah}, priority {ap}) would be evaluated before rule `{b}` ({bh}, priority {bp}) and \
             capture its hosts: ALB takes the first match, so the more specific host needs the lower priority"
        )
    }
}

/// Checks that every pair of overlapping chunks of different rules is ordered more specific
/// first under `priorities`.
pub fn check_order(chunks: &[Chunk], priorities: &[u32]) -> Result<(), OrderConflict> {
    for (i, a) in chunks.iter().enumerate() {
        for (j, b) in chunks.iter().enumerate() {
            if a.rule == b.rule || priorities[i] >= priorities[j] {
                continue;
            }
            // a comes first; wrong if some pattern of a overlaps a more specific pattern of b.
            for p in &a.hosts {
                if let Some(q) = b.hosts.iter().find(|q| overlaps(p, q) && rank(q) < rank(p)) {
                    return Err(OrderConflict {
                        first: (a.owner.clone(), p.clone(), priorities[i]),
                        second: (b.owner.clone(), q.clone(), priorities[j]),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Same host set, order and case aside.
pub fn same_hosts(a: &[String], b: &[String]) -> bool {
    let norm = |v: &[String]| {
        let mut v: Vec<String> = v.iter().map(|h| h.to_ascii_lowercase()).collect();
        v.sort();
        v.dedup();
        v
    };
    norm(a) == norm(b)
}

/// The standing ALB rules and their priorities. Configured priorities must not overlap one
/// another (two rules would fight over one ALB priority forever) and must keep ALB's first match
/// in agreement with autostop's host matching.
pub(super) fn plan(rules: &[Rule]) -> Result<(Vec<Chunk>, Vec<u32>), ConfigError> {
    let hosts: Vec<RuleHosts> =
        rules.iter().map(|r| RuleHosts { name: &r.name, hosts: &r.hosts, priority: r.priority }).collect();
    let chunks = chunks(&hosts);
    let key = |name: &str| {
        let i = rules.iter().position(|r| r.name == name).unwrap_or(0);
        format!("rules[{i}] ({name}).priority")
    };
    let mut ranges: Vec<(u32, u32, &str)> = Vec::new();
    for rule in rules {
        let Some(p) = rule.priority else { continue };
        let n = chunks.iter().filter(|c| c.owner == rule.name).count() as u32;
        let last = p + n - 1;
        if last > MAX_PRIORITY {
            return Err(err(key(&rule.name), format!("{p} leaves no room for its {n} ALB rules (max {MAX_PRIORITY})")));
        }
        if let Some((_, _, other)) = ranges.iter().find(|(a, b, _)| p <= *b && *a <= last) {
            return Err(err(key(&rule.name), format!("{p} overlaps the priorities of rule `{other}`")));
        }
        ranges.push((p, last, &rule.name));
    }
    let priorities = assign(&chunks, &Default::default())
        .ok_or_else(|| err("rules", "more standing ALB rules than ALB has priorities"))?;
    check_order(&chunks, &priorities).map_err(|c| {
        let pinned = rules.iter().find(|r| r.name == c.first.0 && r.priority.is_some()).map(|r| &r.name);
        err(key(pinned.unwrap_or(&c.second.0)), c.to_string())
    })?;
    Ok((chunks, priorities))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|h| h.to_string()).collect()
    }

    fn plan(rules: &[(&str, Vec<String>, Option<u32>)]) -> Vec<Chunk> {
        let hosts: Vec<RuleHosts> =
            rules.iter().map(|(n, h, p)| RuleHosts { name: n, hosts: h.as_slice(), priority: *p }).collect();
        chunks(&hosts)
    }

    #[test]
    fn overlap_follows_alb_host_matching() {
        assert!(overlaps("api.dev.example.com", "*.dev.example.com"));
        assert!(overlaps("*.dev.example.com", "a.b.dev.example.com"), "* spans dots in ALB");
        assert!(!overlaps("dev.example.com", "*.dev.example.com"), "*.x never matches x itself here");
        assert!(!overlaps("xdev.example.com", "*.dev.example.com"));
        assert!(overlaps("*.api.dev.example.com", "*.dev.example.com"));
        assert!(!overlaps("*.api.dev.example.com", "*.web.dev.example.com"));
        assert!(!overlaps("a.x", "b.x"));
    }

    #[test]
    fn a_rule_that_overlaps_nothing_keeps_its_hosts_in_one_alb_rule() {
        let c = plan(&[("api", s(&["api.x.com", "*.api.x.com"]), None), ("web", s(&["web.x.com"]), None)]);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].hosts, s(&["api.x.com", "*.api.x.com"]), "exact first within the chunk");
        assert_eq!(assign(&c, &HashSet::new()), Some(vec![10_000, 10_001]));
    }

    #[test]
    fn exact_hosts_come_before_wildcards_and_longer_suffixes_first() {
        let c = plan(&[
            ("wild", s(&["*.dev.x.com"]), None),
            ("api", s(&["api.dev.x.com", "*.api.dev.x.com"]), None),
            ("pr", s(&["special.pr.api.dev.x.com"]), None),
        ]);
        let order: Vec<(&str, &str)> = c.iter().map(|c| (c.owner.as_str(), c.hosts[0].as_str())).collect();
        assert_eq!(
            order,
            vec![
                ("api", "api.dev.x.com"),
                ("pr", "special.pr.api.dev.x.com"),
                ("api", "*.api.dev.x.com"),
                ("wild", "*.dev.x.com"),
            ]
        );
        let p = assign(&c, &HashSet::new()).unwrap();
        assert_eq!(p, vec![10_000, 10_001, 10_002, 10_003]);
        assert_eq!(check_order(&c, &p), Ok(()));
    }

    #[test]
    fn more_than_three_hosts_become_several_chunks_with_consecutive_pins() {
        let hosts: Vec<String> = (0..7).map(|i| format!("h{i}.x.com")).collect();
        let c = plan(&[("many", hosts, Some(300))]);
        let sizes: Vec<(usize, Option<u32>)> = c.iter().map(|c| (c.hosts.len(), c.pinned)).collect();
        assert_eq!(sizes, vec![(3, Some(300)), (3, Some(301)), (1, Some(302))]);
    }

    #[test]
    fn derived_priorities_skip_pinned_and_foreign_ones() {
        let c = plan(&[("a", s(&["a.x"]), None), ("b", s(&["b.x"]), Some(10_001)), ("c", s(&["c.x"]), None)]);
        let taken: HashSet<u32> = [10_000].into();
        assert_eq!(assign(&c, &taken), Some(vec![10_002, 10_001, 10_003]));
    }

    #[test]
    fn a_pinned_wildcard_ahead_of_an_exact_host_it_captures_is_a_conflict_naming_both() {
        let c = plan(&[("wild", s(&["*.dev.x.com"]), Some(1200)), ("api", s(&["api.dev.x.com"]), None)]);
        let p = assign(&c, &HashSet::new()).unwrap();
        let e = check_order(&c, &p).unwrap_err();
        assert_eq!(e.first, ("wild".into(), "*.dev.x.com".into(), 1200));
        assert_eq!(e.second, ("api".into(), "api.dev.x.com".into(), 10_000));
        assert!(e.to_string().contains("rule `wild`") && e.to_string().contains("rule `api`"), "{e}");
    }

    #[test]
    fn no_room_left_is_none() {
        let c = plan(&[("a", s(&["a.x"]), None)]);
        let taken: HashSet<u32> = (DERIVED_BASE..=MAX_PRIORITY).collect();
        assert_eq!(assign(&c, &taken), None);
    }

    #[test]
    fn host_sets_compare_without_order_or_case() {
        assert!(same_hosts(&s(&["A.x", "b.x"]), &s(&["b.x", "a.x"])));
        assert!(!same_hosts(&s(&["a.x", "b.x"]), &s(&["b.x"])));
    }
}
