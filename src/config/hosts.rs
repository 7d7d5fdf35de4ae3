//! Which autostopping rule a request's `Host` belongs to (pure).
//!
//! Hosts are normalised (lower case, no port, no trailing dot) and looked up in an index built
//! once at load. An exact host wins over a wildcard; among wildcards the most specific (longest
//! suffix) wins. `*.x` matches one or more labels under `x`, never `x` itself.

use std::collections::HashMap;

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

    /// The rule that claims exactly this host, if one does.
    pub fn exact(&self, host: &str) -> Option<usize> {
        self.exact.get(host).copied()
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
    fn a_pattern_claimed_twice_reports_the_holder() {
        let mut idx = index();
        assert_eq!(idx.insert("api.dev.example.com", 5), Err(0));
        assert_eq!(idx.insert("*.dev.example.com", 5), Err(2));
        assert_eq!(idx.insert("api.dev.example.com", 0), Ok(()), "same rule is fine");
    }
}
