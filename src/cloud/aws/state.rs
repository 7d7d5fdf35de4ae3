//! DynamoDB: the state table, one item per rule; every write conditional on `version`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use super::error::cloud_error;
use crate::cloud::{CloudResult, Phase, RuleState};

type Item = HashMap<String, AttributeValue>;

pub async fn load_states(client: &Client, table: &str) -> CloudResult<Vec<RuleState>> {
    let mut states = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let out = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| cloud_error("Scan", e))?;
        states.extend(out.items().iter().filter_map(from_item));
        match out.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => break,
        }
    }
    Ok(states)
}

pub async fn load_state(client: &Client, table: &str, rule: &str) -> CloudResult<Option<RuleState>> {
    let out = client
        .get_item()
        .table_name(table)
        .key("rule", AttributeValue::S(rule.to_string()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| cloud_error("GetItem", e))?;
    Ok(out.item().and_then(from_item))
}

pub async fn save_state(client: &Client, table: &str, state: &RuleState, expected: Option<u64>) -> CloudResult<()> {
    let put = client.put_item().table_name(table).set_item(Some(to_item(state)));
    let put = match expected {
        None => put.condition_expression("attribute_not_exists(#rule)").expression_attribute_names("#rule", "rule"),
        Some(v) => put
            .condition_expression("#version = :expected")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expected", AttributeValue::N(v.to_string())),
    };
    put.send().await.map_err(|e| cloud_error("PutItem", e))?;
    Ok(())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The item for a state; absent times are left out rather than stored as null.
pub fn to_item(s: &RuleState) -> Item {
    let mut item: Item = HashMap::new();
    item.insert("rule".into(), AttributeValue::S(s.rule.clone()));
    item.insert("phase".into(), AttributeValue::S(s.phase.as_str().to_string()));
    item.insert("version".into(), n(s.version));
    item.insert("wakes".into(), n(s.wakes));
    item.insert("stops".into(), n(s.stops));
    item.insert("warmups".into(), AttributeValue::L(s.warmups.iter().map(n).collect()));
    for (key, value) in [
        ("wake_started_at", s.wake_started_at),
        ("ready_at", s.ready_at),
        ("last_wake_at", s.last_wake_at),
        ("stopping_since", s.stopping_since),
        ("stopped_at", s.stopped_at),
    ] {
        if let Some(v) = value {
            item.insert(key.into(), n(v));
        }
    }
    for (key, value) in [
        ("last_error", &s.last_error),
        ("stop_error_fingerprint", &s.stop_error_fingerprint),
        ("observed", &s.observed),
        ("lease_holder", &s.lease_holder),
        ("wake_cause", &s.wake_cause),
        ("woken_by", &s.woken_by),
        ("stopped_by", &s.stopped_by),
        ("override_mode", &s.override_mode),
        ("override_by", &s.override_by),
    ] {
        if let Some(v) = value {
            item.insert(key.into(), AttributeValue::S(v.clone()));
        }
    }
    for (key, value) in [
        ("error_at", s.error_at),
        ("observed_at_ms", s.observed_at_ms),
        ("lease_until_ms", s.lease_until_ms),
        ("override_until", s.override_until),
    ] {
        if let Some(t) = value {
            item.insert(key.into(), n(t));
        }
    }
    for (key, on) in [("observed_by_look", s.observed_by_look), ("lease_for_look", s.lease_for_look)] {
        if on {
            item.insert(key.into(), AttributeValue::Bool(true));
        }
    }
    if !s.started_instances.is_empty() {
        let ids = s.started_instances.iter().map(|i| AttributeValue::S(i.clone())).collect();
        item.insert("started_instances".into(), AttributeValue::L(ids));
    }
    if !s.days.is_empty() {
        item.insert("days".into(), AttributeValue::L(s.days.iter().map(|d| AttributeValue::S(d.clone())).collect()));
    }
    if !s.holds.is_empty() {
        item.insert("holds".into(), AttributeValue::L(s.holds.iter().map(|h| AttributeValue::S(h.clone())).collect()));
    }
    if let Some(m) = &s.asleep_month {
        item.insert("asleep_month".into(), AttributeValue::S(m.clone()));
        item.insert("asleep_seconds".into(), n(s.asleep_seconds));
    }
    if let Some(saved) = s.saved_this_month {
        item.insert("saved_this_month".into(), n(saved));
    }
    item
}

/// The state of an item; `None` for an item without a `rule` key (not ours to read).
pub fn from_item(item: &Item) -> Option<RuleState> {
    let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let num = |k: &str| item.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok());
    let flag = |k: &str| item.get(k).and_then(|v| v.as_bool().ok()).copied().unwrap_or(false);
    let strings = |k: &str| -> Vec<String> {
        let list = item.get(k).and_then(|v| v.as_l().ok());
        list.map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect()).unwrap_or_default()
    };
    Some(RuleState {
        rule: s("rule")?,
        // A name no version wrote reads as `stopped`: AWS is the truth about what runs, and the
        // idle check records what it finds.
        phase: s("phase").as_deref().and_then(Phase::parse).unwrap_or(Phase::Stopped),
        version: num("version").unwrap_or(0).max(0) as u64,
        wake_started_at: num("wake_started_at"),
        ready_at: num("ready_at"),
        last_wake_at: num("last_wake_at"),
        stopping_since: num("stopping_since"),
        stopped_at: num("stopped_at"),
        warmups: item
            .get("warmups")
            .and_then(|v| v.as_l().ok())
            .map(|l| l.iter().filter_map(|v| v.as_n().ok()?.parse().ok()).collect())
            .unwrap_or_default(),
        wakes: num("wakes").unwrap_or(0).max(0) as u64,
        stops: num("stops").unwrap_or(0).max(0) as u64,
        last_error: s("last_error"),
        wake_cause: s("wake_cause"),
        woken_by: s("woken_by"),
        stopped_by: s("stopped_by"),
        error_at: num("error_at"),
        observed: s("observed"),
        observed_at_ms: num("observed_at_ms"),
        observed_by_look: flag("observed_by_look"),
        lease_for_look: flag("lease_for_look"),
        lease_holder: s("lease_holder"),
        lease_until_ms: num("lease_until_ms"),
        stop_error_fingerprint: s("stop_error_fingerprint"),
        started_instances: item
            .get("started_instances")
            .and_then(|v| v.as_l().ok())
            .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
            .unwrap_or_default(),
        holds: strings("holds"),
        days: strings("days"),
        asleep_month: s("asleep_month"),
        asleep_seconds: num("asleep_seconds").unwrap_or(0).max(0) as u64,
        saved_this_month: item.get("saved_this_month").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()),
        override_mode: s("override_mode"),
        override_until: num("override_until"),
        override_by: s("override_by"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
    use aws_smithy_mocks::{mock, mock_client};

    use crate::cloud::ErrorKind;

    fn state() -> RuleState {
        RuleState {
            rule: "api".into(),
            phase: Phase::Ready,
            version: 7,
            wake_started_at: Some(100),
            ready_at: Some(160),
            last_wake_at: Some(100),
            stopping_since: None,
            stopped_at: Some(50),
            warmups: vec![60, 58, 61],
            wakes: 3,
            stops: 2,
            last_error: Some("StopInstances failed with UnauthorizedOperation".into()),
            error_at: Some(90),
            stop_error_fingerprint: Some("0123abcd".into()),
            started_instances: vec!["i-0123456789abcdef0".into()],
            wake_cause: Some("click".into()),
            woken_by: Some("ana@example.com".into()),
            stopped_by: Some("ana@example.com".into()),
            observed: Some(r#"{"rule":"api","phase":"starting"}"#.into()),
            observed_at_ms: Some(100_250),
            observed_by_look: true,
            lease_holder: Some("env-1".into()),
            lease_until_ms: Some(105_250),
            lease_for_look: true,
            asleep_month: Some("2026-11".into()),
            asleep_seconds: 7_200,
            saved_this_month: Some(1.25),
            override_mode: Some("awake".into()),
            override_until: Some(200),
            override_by: Some("arn:aws:sts::123456789012:assumed-role/dev/alice".into()),
            holds: vec!["env-1-3@105250".into()],
            days: vec!["20429:3600:82800".into()],
        }
    }

    #[test]
    fn item_round_trips() {
        let item = to_item(&state());
        assert!(!item.contains_key("stopping_since"), "absent times are left out");
        assert_eq!(from_item(&item), Some(state()));
        assert_eq!(from_item(&HashMap::new()), None);
    }

    #[tokio::test]
    async fn writes_are_conditional_on_the_version() {
        let rule = mock!(Client::put_item)
            .match_requests(|r| {
                r.condition_expression() == Some("#version = :expected")
                    && r.expression_attribute_values().unwrap()[":expected"] == AttributeValue::N("6".into())
                    && r.item().unwrap()["version"] == AttributeValue::N("7".into())
            })
            .then_output(|| PutItemOutput::builder().build());
        let client = mock_client!(aws_sdk_dynamodb, [&rule]);
        save_state(&client, "autostop-state", &state(), Some(6)).await.unwrap();

        let create = mock!(Client::put_item)
            .match_requests(|r| r.condition_expression() == Some("attribute_not_exists(#rule)"))
            .then_output(|| PutItemOutput::builder().build());
        let client = mock_client!(aws_sdk_dynamodb, [&create]);
        save_state(&client, "autostop-state", &state(), None).await.unwrap();
        assert_eq!((rule.num_calls(), create.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn a_lost_race_is_a_conflict() {
        let rule = mock!(Client::put_item).then_error(|| {
            let meta =
                aws_sdk_dynamodb::error::ErrorMetadata::builder().code("ConditionalCheckFailedException").build();
            PutItemError::generic(meta)
        });
        let client = mock_client!(aws_sdk_dynamodb, [&rule]);
        let e = save_state(&client, "t", &state(), Some(6)).await.unwrap_err();
        assert_eq!((e.kind, e.code.as_str()), (ErrorKind::Conflict, "ConditionalCheckFailedException"));
    }
}
