//! Who is asking, verified: the user an ALB authenticate action let through, from the signed
//! `x-amzn-oidc-data` header ([`jwt`]), checked against the load balancer's public key
//! ([`keys`]). Imports nothing of the domain.
//!
//! A token counts only when it parses as the ALB writes it (ES256, a `kid`), names one of our
//! load balancers as its `signer`, has not expired, and its signature verifies with the key
//! the key server has for its `kid`. The signer is checked before any key is fetched.

pub mod jwt;
pub mod keys;
#[cfg(any(test, feature = "fake"))]
pub mod testing;

pub use jwt::Rejected;
use keys::{HttpKeys, Keys, KEYS_URL};

/// The header the ALB sends the signed user claims in.
pub const HEADER: &str = "x-amzn-oidc-data";

/// A verified user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub sub: Option<String>,
    pub email: Option<String>,
}

impl Identity {
    /// The name autostop records: the email, else the subject.
    pub fn who(&self) -> String {
        self.email.clone().or_else(|| self.sub.clone()).unwrap_or_else(|| "unknown".into())
    }
}

/// Verifies tokens; one per Lambda environment, so its key cache lasts as long as it.
pub struct Verifier {
    keys: Keys,
}

impl Verifier {
    pub fn new(keys: Keys) -> Verifier {
        Verifier { keys }
    }

    /// The real key server (or `AUTOSTOP_ELB_KEYS_URL`'s).
    pub fn from_env() -> Result<Verifier, String> {
        let url = std::env::var("AUTOSTOP_ELB_KEYS_URL").ok().filter(|u| !u.is_empty());
        Ok(Verifier::new(Keys::new(Box::new(HttpKeys::new()?), url.unwrap_or_else(|| KEYS_URL.into()))))
    }

    /// The user of `token` if it is valid now (epoch seconds) and signed by one of `signers`.
    pub async fn verify(&self, token: Option<&str>, signers: &[String], now: i64) -> Result<Identity, Rejected> {
        let token = jwt::Token::parse(token.ok_or(Rejected::Missing)?)?;
        if !signers.iter().any(|s| s == &token.header.signer) {
            return Err(Rejected::Signer);
        }
        if token.expired(now) {
            return Err(Rejected::Expired);
        }
        let region = token.header.signer.split(':').nth(3).filter(|r| !r.is_empty()).ok_or(Rejected::Malformed)?;
        let pem = self.keys.get(region, &token.header.kid).await?;
        token.verify(&pem)?;
        Ok(Identity { sub: token.claims.sub, email: token.claims.email })
    }
}
