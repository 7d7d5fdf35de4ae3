//! The load balancers' public keys, by `kid`: fetched over HTTPS once, then cached for the
//! environment's life (a key id names one key for good). An unknown `kid` is remembered for a
//! minute, so forged tokens cannot make every request a fetch.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::jwt::Rejected;

/// Where the keys are: `{region}` and `{kid}` filled in (ALB guide, user claims encoding and
/// signature verification). `AUTOSTOP_ELB_KEYS_URL` replaces it, for partitions with other
/// endpoints (GovCloud) and for tests.
pub const KEYS_URL: &str = "https://public-keys.auth.elb.{region}.amazonaws.com/{kid}";

const UNKNOWN_KID_TTL: Duration = Duration::from_secs(60);
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// What a key fetch found.
pub enum Fetched {
    Key(String),
    /// The key server does not know the id (HTTP 404 or 403).
    Unknown,
}

pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Result<Fetched, String>> + Send + 'a>>;

/// Fetches one URL's key text.
pub trait KeySource: Send + Sync {
    fn fetch<'a>(&'a self, url: &'a str) -> FetchFuture<'a>;
}

/// The keys by id, with the source they come from.
pub struct Keys {
    source: Box<dyn KeySource>,
    url: String,
    known: Mutex<HashMap<String, String>>,
    unknown: Mutex<HashMap<String, Instant>>,
}

impl Keys {
    pub fn new(source: Box<dyn KeySource>, url: impl Into<String>) -> Keys {
        Keys { source, url: url.into(), known: Mutex::default(), unknown: Mutex::default() }
    }

    /// The PEM key `kid` of `region`'s load balancers.
    pub async fn get(&self, region: &str, kid: &str) -> Result<String, Rejected> {
        if let Some(pem) = self.known.lock().expect("keys lock").get(kid) {
            return Ok(pem.clone());
        }
        if self.unknown.lock().expect("keys lock").get(kid).is_some_and(|at| at.elapsed() < UNKNOWN_KID_TTL) {
            return Err(Rejected::UnknownKey);
        }
        let url = self.url.replace("{region}", region).replace("{kid}", kid);
        match tokio::time::timeout(FETCH_TIMEOUT, self.source.fetch(&url)).await {
            Ok(Ok(Fetched::Key(pem))) => {
                self.known.lock().expect("keys lock").insert(kid.to_string(), pem.clone());
                Ok(pem)
            }
            Ok(Ok(Fetched::Unknown)) => {
                self.unknown.lock().expect("keys lock").insert(kid.to_string(), Instant::now());
                Err(Rejected::UnknownKey)
            }
            Ok(Err(e)) => {
                tracing::warn!(url = %url, error = %e, "load balancer key not fetched");
                Err(Rejected::KeysUnavailable)
            }
            Err(_) => {
                tracing::warn!(url = %url, "load balancer key not fetched in time");
                Err(Rejected::KeysUnavailable)
            }
        }
    }
}

/// The real key server, over HTTPS (HTTP too, for a local test server).
pub struct HttpKeys {
    client: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        http_body_util::Empty<bytes::Bytes>,
    >,
}

impl HttpKeys {
    /// A client trusting the system's roots, with the crypto provider the AWS SDK uses.
    pub fn new() -> Result<HttpKeys, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let https =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
        Ok(HttpKeys { client })
    }
}

impl KeySource for HttpKeys {
    fn fetch<'a>(&'a self, url: &'a str) -> FetchFuture<'a> {
        Box::pin(async move {
            use http_body_util::BodyExt;
            let uri: http::Uri = url.parse().map_err(|e| format!("{e}"))?;
            let resp = self.client.get(uri).await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            if status == 404 || status == 403 {
                return Ok(Fetched::Unknown);
            }
            if status != 200 {
                return Err(format!("HTTP {status}"));
            }
            let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            String::from_utf8(body.to_vec()).map(Fetched::Key).map_err(|_| "the key is not text".to_string())
        })
    }
}
