//! The listeners the config serves, when the deployment names its load balancer
//! (`AUTOSTOP_LOAD_BALANCER_ARN`) rather than listing them: looked up before the first wake (a
//! request answered without one needs none), again on every idle check, and at most every
//! [`LISTENER_REFRESH`] on the request path, so a listener added later (HTTPS once a
//! certificate is set) is served too.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::cloud::Cloud;

/// How often the request path looks the load balancer's listeners up again (the idle check
/// does on every run).
pub const LISTENER_REFRESH: Duration = Duration::from_secs(300);

/// The load balancer, and when its listeners were last looked up (never yet: `None`).
pub struct Discovery {
    load_balancer: String,
    last: Mutex<Option<Instant>>,
}

impl Discovery {
    /// `known`: the config came with listeners, which count as looked up now.
    pub fn new(load_balancer: &str, known: bool) -> Discovery {
        Discovery { load_balancer: load_balancer.to_string(), last: Mutex::new(known.then(Instant::now)) }
    }

    pub fn load_balancer(&self) -> &str {
        &self.load_balancer
    }

    /// The load balancer's listeners, when a lookup was due (or `now`) and they differ from
    /// `current`. A failed lookup keeps the listeners there are; without any (the first lookup
    /// failed) every call looks again.
    pub async fn changed<C: Cloud>(&self, cloud: &C, current: &[String], now: bool) -> Option<Vec<String>> {
        let lb = &self.load_balancer;
        let mut last = self.last.lock().await;
        if !now && !current.is_empty() && last.is_some_and(|t| t.elapsed() < LISTENER_REFRESH) {
            return None;
        }
        *last = Some(Instant::now());
        let found = match cloud.listeners_of(lb).await {
            Ok(found) if !found.is_empty() => found,
            Ok(_) => {
                tracing::warn!(load_balancer = %lb, "no listeners found; keeping the ones known");
                return None;
            }
            Err(e) => {
                tracing::warn!(load_balancer = %lb, code = %e.code, "listeners not looked up; keeping the ones known");
                return None;
            }
        };
        let (mut a, mut b) = (found.clone(), current.to_vec());
        a.sort();
        b.sort();
        (a != b).then(|| {
            tracing::info!(load_balancer = %lb, before = ?current, now = ?found, "listeners changed");
            found
        })
    }
}
