//! Values that appear in many keys: durations, host patterns, ELBv2 ARNs, instance ids.

use std::time::Duration;

use super::error::{err, ConfigError};

/// Parses "90s", "15m", "2h", "1h30m". Must be positive.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    let bad = || format!("`{text}` is not a duration like \"90s\", \"15m\" or \"2h\"");
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(format!("`{text}` needs a unit: s, m or h"));
    }
    if total == 0 {
        return Err(format!("`{text}` must be longer than zero"));
    }
    Ok(Duration::from_secs(total))
}

/// A host pattern as an ALB host-header condition and our matcher both accept it, checked at
/// start so a bad host fails the config, not the rule creation after instances booted. ALB: at
/// most 128 characters of A-Z, a-z, 0-9, `-`, `.`, `*`, `?`; at least one `.`; only letters after
/// the final `.` (ALB guide, "Condition types for listener rules": host conditions). Ours: `*`
/// only as a whole first label (`*.x`), no `?`.
pub(super) fn validate_host_pattern(raw: &str) -> Result<String, String> {
    let host = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    if host.contains(':') {
        return Err("hosts are matched without a port; remove it".into());
    }
    if !host.is_ascii() {
        return Err("must be ASCII: write an internationalised name in its xn-- (punycode) form".into());
    }
    let labels = host.strip_prefix("*.").unwrap_or(&host);
    if labels.is_empty() || host.len() > 128 {
        return Err("must be a host name of at most 128 characters (ALB's limit)".into());
    }
    let shape = "must be a host name like `api.dev.example.com` or `*.api.dev.example.com`: letters, digits and `-` \
                 in each label, `*` only as the whole first label";
    for label in labels.split('.') {
        let ok =
            !label.is_empty() && label.len() <= 63 && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(shape.into());
        }
    }
    match labels.rsplit_once('.') {
        None if !host.starts_with("*.") => Err("must contain at least one `.` (ALB's rule for host conditions)".into()),
        _ if !labels.rsplit('.').next().unwrap_or("").bytes().all(|b| b.is_ascii_alphabetic()) => {
            Err("must end in a label of letters only, like `.com` or `.localhost` (ALB's rule for host conditions)"
                .into())
        }
        _ => Ok(host),
    }
}

/// `arn:<partition>:elasticloadbalancing:<region>:<12-digit account>:<prefix><n segments>`.
pub(super) fn check_elb_arn(key: &str, arn: &str, prefix: &str, segments: usize) -> Result<(), ConfigError> {
    let kind = prefix.trim_end_matches('/').replace("/app", "");
    let bad = || {
        err(
            key,
            format!("`{arn}` is not an ELBv2 {kind} ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:{prefix}...)"),
        )
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [a, partition, service, region, account, resource] = parts.as_slice() else {
        return Err(bad());
    };
    let ok = *a == "arn"
        && partition.starts_with("aws")
        && *service == "elasticloadbalancing"
        && !region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit());
    let rest = resource.strip_prefix(prefix).ok_or_else(bad)?;
    let seg: Vec<&str> = rest.split('/').collect();
    if !ok || seg.len() != segments || seg.iter().any(|s| s.is_empty()) {
        return Err(bad());
    }
    Ok(())
}

pub(super) fn is_instance_id(id: &str) -> bool {
    id.strip_prefix("i-")
        .is_some_and(|hex| (hex.len() == 8 || hex.len() == 17) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}
