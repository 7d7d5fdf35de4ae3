//! ALB rule priorities and host chunks, as pure functions.
//!
//! An ALB rule takes at most [`MAX_HOSTS_PER_ALB_RULE`] host-header values, so a rule with more
//! hosts becomes several ALB rules ("chunks"), chunk `k` preferring priority `base + k`. The base is
//! the configured priority, else derived from the rule's name with a stable hash, so every Lambda
//! instance racing to insert the same rule asks for the same priority and the loser sees our own
//! rule there (`PriorityInUse` by ours = done). A foreign rule in the way moves us to the next free
//! priority, again chosen the same way by everyone.

/// ALB's highest rule priority.
pub const MAX_PRIORITY: u32 = 50_000;
/// ALB's limit of condition values per rule.
pub const MAX_HOSTS_PER_ALB_RULE: usize = 5;
/// Derived priorities live in `DERIVED_BASE..MAX_PRIORITY`, leaving the low ones to people.
const DERIVED_BASE: u32 = 10_000;
const DERIVED_SPAN: u32 = 39_000;

/// Number of ALB rules a rule with `hosts` hosts needs.
pub fn chunk_count(hosts: usize) -> usize {
    hosts.div_ceil(MAX_HOSTS_PER_ALB_RULE).max(1)
}

/// The rule's hosts split into ALB-sized chunks, in config order.
pub fn host_chunks(hosts: &[String]) -> Vec<Vec<String>> {
    hosts.chunks(MAX_HOSTS_PER_ALB_RULE).map(|c| c.to_vec()).collect()
}

/// The preferred priority of chunk `chunk` of a rule.
pub fn preferred(name: &str, configured: Option<u32>, chunk: usize) -> u32 {
    let base = configured.unwrap_or_else(|| DERIVED_BASE + fnv1a(name.as_bytes()) % DERIVED_SPAN);
    let p = base + chunk as u32;
    if p > MAX_PRIORITY {
        // Wrap into the derived range rather than fail; only reachable for derived bases.
        DERIVED_BASE + (p - MAX_PRIORITY - 1) % DERIVED_SPAN
    } else {
        p
    }
}

/// The first priority at or after `want` that is not in `taken` (wrapping within 1..=MAX).
pub fn next_free(want: u32, taken: &[u32]) -> Option<u32> {
    (0..MAX_PRIORITY).map(|k| (want - 1 + k) % MAX_PRIORITY + 1).find(|p| !taken.contains(p))
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

/// FNV-1a, 32 bit: tiny, stable across builds and platforms (std's hasher is not).
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| (h ^ *b as u32).wrapping_mul(0x0100_0193))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("h{i}.dev.example.com")).collect()
    }

    #[test]
    fn derived_priority_is_stable_and_in_range() {
        let p = preferred("api", None, 0);
        assert_eq!(p, preferred("api", None, 0));
        assert_eq!(p, DERIVED_BASE + fnv1a(b"api") % DERIVED_SPAN);
        assert!((DERIVED_BASE..MAX_PRIORITY).contains(&p));
        assert_ne!(p, preferred("web", None, 0), "different names spread out");
        assert_eq!(preferred("api", None, 2), p + 2);
    }

    #[test]
    fn configured_priority_wins() {
        assert_eq!(preferred("api", Some(1200), 0), 1200);
        assert_eq!(preferred("api", Some(1200), 1), 1201);
    }

    #[test]
    fn next_free_skips_taken_and_wraps() {
        assert_eq!(next_free(10, &[]), Some(10));
        assert_eq!(next_free(10, &[10, 11, 13]), Some(12));
        assert_eq!(next_free(MAX_PRIORITY, &[MAX_PRIORITY]), Some(1));
    }

    #[test]
    fn hosts_split_into_chunks_of_five() {
        assert_eq!(chunk_count(1), 1);
        assert_eq!(chunk_count(5), 1);
        assert_eq!(chunk_count(6), 2);
        assert_eq!(chunk_count(11), 3);
        let chunks = host_chunks(&hosts(11));
        assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), vec![5, 5, 1]);
        assert_eq!(chunks[2][0], "h10.dev.example.com");
    }

    #[test]
    fn host_sets_compare_without_order_or_case() {
        let a = vec!["A.x".to_string(), "b.x".to_string()];
        let b = vec!["b.x".to_string(), "a.x".to_string()];
        assert!(same_hosts(&a, &b));
        assert!(!same_hosts(&a, &b[..1]));
    }
}
