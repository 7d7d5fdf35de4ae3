//! Behind SSO: who is asking, verified before anything wakes ([`crate::identity`]). The ALB's
//! authenticate action signs the user's claims into `x-amzn-oidc-data`; a request that reached
//! autostop without passing it (the listener's default action, before the host's standing rule
//! exists; an HTTP listener; a forged or expired header) has no valid token and wakes nothing.

use std::sync::OnceLock;

use crate::http::{Reply, Request};
use crate::identity::{Rejected, Verifier};

/// The verifier of this Lambda environment, built on first use (reading the system's root
/// certificates costs a few milliseconds a cold start without SSO need not pay).
#[derive(Default)]
pub struct Keys {
    verifier: OnceLock<Option<Verifier>>,
}

impl Keys {
    pub fn given(verifier: Verifier) -> Keys {
        let keys = Keys::default();
        let _ = keys.verifier.set(Some(verifier));
        keys
    }

    fn get(&self) -> Option<&Verifier> {
        self.verifier
            .get_or_init(|| {
                Verifier::from_env()
                    .inspect_err(|e| tracing::error!(error = %e, "no HTTPS client for the ELB key server: SSO sign-ins cannot be verified"))
                    .ok()
            })
            .as_ref()
    }

    /// The verified user of the request, or why there is none, with the answer to give when
    /// it is not a 401 (over plain HTTP: the same URL over HTTPS).
    pub async fn user(
        &self,
        req: &Request,
        host: &str,
        signers: &[String],
        now: i64,
    ) -> Result<String, (Option<Reply>, Rejected)> {
        let verified = match self.get() {
            Some(v) => v.verify(req.oidc_data.as_deref(), signers, now).await,
            None => Err(Rejected::KeysUnavailable),
        };
        match verified {
            Ok(id) => Ok(id.who()),
            // An HTTP listener takes no authenticate action: sign-in happens over HTTPS.
            Err(why) if !req.https => Err((Some(to_https(req, host)), why)),
            Err(why) => Err((None, why)),
        }
    }
}

/// The same URL over HTTPS (308 keeps the method and body).
fn to_https(req: &Request, host: &str) -> Reply {
    Reply::text(308, "", "to-https").with("location", format!("https://{host}{}", req.same_url()))
}
