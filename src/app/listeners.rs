//! The listeners the config serves, when the deployment names its load balancer
//! (`AUTOSTOP_LOAD_BALANCER_ARN`) rather than listing them: looked up before the first wake (a
//! request answered without one needs none), again on every idle check, and at most every
//! [`LISTENER_REFRESH`] on the request path, so a listener added later (HTTPS once a
//! certificate is set) is served too.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::cloud::Cloud;
use crate::wake::Waker;

use super::App;

/// How often the request path looks the load balancer's listeners up again (the idle check
/// does on every run).
pub const LISTENER_REFRESH: Duration = Duration::from_secs(300);

/// The load balancer, and when its listeners were last looked up (never yet: `None`).
pub(super) type Discovery = (String, tokio::sync::Mutex<Option<Instant>>);

impl<C: Cloud> App<C> {
    /// The config's listeners are those of `load_balancer` (see the module docs). A config
    /// given with listeners counts as looked up now.
    pub fn discovering_listeners_of(mut self, load_balancer: &str) -> App<C> {
        let known = (!self.config().listener_arns.is_empty()).then(Instant::now);
        self.discovery = Some((load_balancer.to_string(), tokio::sync::Mutex::new(known)));
        self
    }

    /// Looks the load balancer's listeners up again when due (or `now`), and serves the new set
    /// if it changed. A failed lookup keeps the listeners there are.
    pub(super) async fn refresh_listeners(&self, now: bool) {
        let Some((lb, last)) = &self.discovery else { return };
        let mut last = last.lock().await;
        // Without any listener known (the first lookup failed), every wake tries again.
        let known = !self.config().listener_arns.is_empty();
        if !now && known && last.is_some_and(|t| t.elapsed() < LISTENER_REFRESH) {
            return;
        }
        *last = Some(Instant::now());
        let found = match self.cloud.listeners_of(lb).await {
            Ok(found) if !found.is_empty() => found,
            Ok(_) => return tracing::warn!(load_balancer = %lb, "no listeners found; keeping the ones known"),
            Err(e) => {
                return tracing::warn!(load_balancer = %lb, code = %e.code, "listeners not looked up; keeping the ones known")
            }
        };
        let config = self.config();
        let (mut a, mut b) = (found.clone(), config.listener_arns.clone());
        a.sort();
        b.sort();
        if a != b {
            tracing::info!(load_balancer = %lb, before = ?config.listener_arns, now = ?found, "listeners changed");
            let mut next = (*config).clone();
            next.listener_arns = found;
            let waker = Waker::new(Arc::clone(&self.cloud), Arc::new(next));
            *self.waker.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(waker);
        }
    }
}
