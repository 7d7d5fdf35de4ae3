//! EventBridge: autostop's lifecycle events, one PutEvents entry each.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;

use super::error::cloud_error;
use crate::cloud::{CloudError, CloudResult};

/// The `source` of every event autostop puts.
pub const SOURCE: &str = "autostop";

/// One entry on `bus` (a name or an ARN). PutEvents answers 200 even when it refused an entry:
/// the entry's `ErrorCode` then says why (EventBridge API reference, PutEvents,
/// `FailedEntryCount`), and that is our error.
pub async fn put_event(client: &Client, bus: &str, detail_type: &str, detail: &str) -> CloudResult<()> {
    let entry = PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source(SOURCE)
        .detail_type(detail_type)
        .detail(detail)
        .build();
    let out = client.put_events().entries(entry).send().await.map_err(|e| cloud_error("PutEvents", e))?;
    if out.failed_entry_count() > 0 {
        let failed = out.entries().iter().find(|e| e.error_code().is_some());
        let code = failed.and_then(|e| e.error_code()).unwrap_or("FailedEntry");
        let message = failed.and_then(|e| e.error_message()).unwrap_or_default();
        return Err(CloudError::new("PutEvents", code, message));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
    use aws_sdk_eventbridge::types::PutEventsResultEntry;
    use aws_smithy_mocks::{mock, mock_client};

    #[tokio::test]
    async fn one_entry_with_our_source_and_a_refused_entry_is_an_error() {
        let ok = mock!(Client::put_events)
            .match_requests(|r| {
                let e = &r.entries()[0];
                r.entries().len() == 1
                    && e.event_bus_name() == Some("default")
                    && e.source() == Some("autostop")
                    && e.detail_type() == Some("Environment Ready")
                    && e.detail() == Some(r#"{"rule":"api"}"#)
            })
            .then_output(|| PutEventsOutput::builder().failed_entry_count(0).build());
        let client = mock_client!(aws_sdk_eventbridge, [&ok]);
        put_event(&client, "default", "Environment Ready", r#"{"rule":"api"}"#).await.unwrap();
        assert_eq!(ok.num_calls(), 1);

        let refused = mock!(Client::put_events).then_output(|| {
            PutEventsOutput::builder()
                .failed_entry_count(1)
                .entries(PutEventsResultEntry::builder().error_code("AccessDeniedException").build())
                .build()
        });
        let client = mock_client!(aws_sdk_eventbridge, [&refused]);
        let e = put_event(&client, "default", "Environment Ready", "{}").await.unwrap_err();
        assert_eq!((e.op, e.code.as_str()), ("PutEvents", "AccessDeniedException"));
    }
}
