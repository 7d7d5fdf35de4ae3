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

/// Which configured listeners are HTTP, when some rule is behind sign-in: looked up once per
/// set of listeners (one DescribeListeners each), so routing knows where such a rule's standing
/// rules cannot go without asking on every wake.
#[derive(Default)]
pub struct Protocols {
    known_for: Mutex<Vec<String>>,
}

impl Protocols {
    /// The HTTP listeners of `config`, when they are not known yet for its listeners and some
    /// rule needs them; `None` when nothing is to change (or the lookup failed: tried again later).
    pub async fn learn<C: Cloud>(&self, cloud: &C, config: &crate::config::Config) -> Option<Vec<String>> {
        let needs_https = config.dashboard.is_some() || config.rules.iter().any(|r| r.access.sso().is_some());
        if !needs_https {
            return None;
        }
        let mut known = self.known_for.lock().await;
        if *known == config.listener_arns {
            return None;
        }
        let mut http = Vec::new();
        for l in &config.listener_arns {
            match cloud.listener_facts(l).await {
                Ok(facts) if !facts.https => http.push(l.clone()),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(listener = %l, code = %e.code, "listener protocol not looked up; trying again later");
                    return None;
                }
            }
        }
        *known = config.listener_arns.clone();
        if !http.is_empty() {
            tracing::info!(listeners = ?http, "HTTP listeners carry no rule behind sign-in; its requests there are sent to HTTPS");
        }
        (http != config.http_listeners).then_some(http)
    }
}

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
