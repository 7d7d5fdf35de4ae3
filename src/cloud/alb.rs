//! What an Application Load Balancer is, as AWS documents it: the facts autostop and its fake
//! both rely on, with their sources. Pure, and free of autostop's domain.
//!
//! - host-header matching ([`alb_host_match`]; ALB guide, "Condition types for listener rules");
//! - rule priorities and host values per rule (quotas);
//! - the CloudWatch dimensions an ARN names (ALB guide, "CloudWatch metrics for your
//!   Application Load Balancer": `TargetGroup`, `LoadBalancer`).

/// ALB's highest rule priority.
pub const MAX_PRIORITY: u32 = 50_000;
/// Host values per ALB rule: a rule may have one host-header condition, and a condition up to
/// three match evaluations (ALB guide, "Condition types for listener rules": condition basics).
pub const MAX_HOSTS_PER_ALB_RULE: usize = 3;

/// `targetgroup/api/73e2d6bc24d8a067` from a target group ARN (the CloudWatch dimension).
pub fn target_group_dimension(arn: &str) -> String {
    arn.rsplit_once(':').map(|(_, r)| r).unwrap_or(arn).to_string()
}

/// `app/dev/50dc6c495c0c9188` from a listener ARN (the CloudWatch `LoadBalancer` dimension).
pub fn load_balancer_dimension(listener_arn: &str) -> String {
    let resource = listener_arn.rsplit_once(':').map(|(_, r)| r).unwrap_or(listener_arn);
    let lb = resource.strip_prefix("listener/").unwrap_or(resource);
    lb.rsplit_once('/').map(|(lb, _)| lb).unwrap_or(lb).to_string()
}

/// The load balancer ARN a listener ARN names: `...:listener/app/dev/50dc/f2f7` is a listener of
/// `...:loadbalancer/app/dev/50dc` (the ARN formats of Elastic Load Balancing, Service
/// Authorization Reference: `listener/app/{Name}/{LoadBalancerId}/{ListenerId}`).
pub fn load_balancer_of_listener(listener_arn: &str) -> String {
    let lb = listener_arn.replacen(":listener/", ":loadbalancer/", 1);
    match lb.rsplit_once('/') {
        Some((lb, _)) if listener_arn.contains(":listener/") => lb.to_string(),
        _ => listener_arn.to_string(),
    }
}

/// `app/dev/50dc6c495c0c9188` from a load balancer ARN (the CloudWatch `LoadBalancer` dimension).
pub fn load_balancer_arn_dimension(load_balancer_arn: &str) -> String {
    let resource = load_balancer_arn.split_once(":loadbalancer/").map(|(_, r)| r).unwrap_or(load_balancer_arn);
    resource.to_string()
}

/// ALB's host-header matching: case-insensitive; `*` matches any run of characters (dots
/// included, possibly none), `?` exactly one (ALB guide, "Host conditions"). Not ours: ours
/// (`config`'s host index) prefers exact hosts and longer suffixes; ALB takes the first rule by priority.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_from_arns() {
        assert_eq!(
            target_group_dimension(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/73e2d6bc24d8a067"
            ),
            "targetgroup/api/73e2d6bc24d8a067"
        );
        assert_eq!(
            load_balancer_dimension(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/dev/50dc6c495c0c9188/f2f7dc8efc522ab2"
            ),
            "app/dev/50dc6c495c0c9188"
        );
        let lb = load_balancer_of_listener(
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/dev/50dc6c495c0c9188/f2f7dc8efc522ab2",
        );
        assert_eq!(lb, "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/dev/50dc6c495c0c9188");
        assert_eq!(load_balancer_arn_dimension(&lb), "app/dev/50dc6c495c0c9188");
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
}
