//! `autostop sync`: creates or repairs every standing rule on every listener. Rules recorded as
//! stopped forward to the Lambda; every other rule keeps the direction it has (a new one: the
//! Lambda).

use serde::Serialize;

use crate::cloud::Cloud;
use crate::routing::{self, Report, Route, Want};
use crate::state::Phase;
use crate::wake::Waker;

use super::{listeners_known, OpError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    pub standing_rules_per_listener: usize,
    pub listeners: Vec<Report>,
}

pub async fn sync<C: Cloud>(waker: &Waker<C>) -> Result<SyncReport, OpError> {
    let (cloud, config) = (waker.cloud(), waker.config());
    listeners_known(config)?;
    let fail = |e: crate::cloud::CloudError| OpError::cloud("sync failed, the next sync or idle check retries", &e);
    let states = waker.store().load_all().await.unwrap_or_default();
    let stopped: Vec<String> = states.into_iter().filter(|s| s.phase == Phase::Stopped).map(|s| s.rule).collect();
    let want = |name: &str| match stopped.iter().any(|s| s == name) {
        true => Want::Route(Route::Lambda),
        false => Want::Keep,
    };
    let mut views = routing::views(cloud, config).await.map_err(fail)?;
    let listeners = routing::reconcile(cloud, config, &mut views, &want, false).await.map_err(fail)?;
    tracing::info!(listeners = listeners.len(), standing = config.standing.len(), "sync done");
    Ok(SyncReport { standing_rules_per_listener: config.standing.len(), listeners })
}
