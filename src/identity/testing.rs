//! A load balancer's signing key, made in the test: signs tokens as the ALB does and publishes
//! its PEM as the key server does. For tests only (the `fake` feature).

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;

pub struct TestKey(EcdsaKeyPair);

impl Default for TestKey {
    fn default() -> TestKey {
        TestKey::new()
    }
}

impl TestKey {
    pub fn new() -> TestKey {
        TestKey(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("a P-256 key"))
    }

    /// The public key as the key server serves it: PEM SubjectPublicKeyInfo.
    pub fn pem(&self) -> String {
        let der = self.0.public_key().as_der().expect("a DER public key");
        format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", STANDARD.encode(der.as_ref()))
    }

    /// A token with this header and these claims; `pad` keeps base64's `=` padding, as some
    /// ALB tokens do.
    pub fn token(&self, header: serde_json::Value, claims: serde_json::Value, pad: bool) -> String {
        let enc = |bytes: &[u8]| if pad { URL_SAFE.encode(bytes) } else { URL_SAFE_NO_PAD.encode(bytes) };
        let signed = format!("{}.{}", enc(header.to_string().as_bytes()), enc(claims.to_string().as_bytes()));
        let sig = self.0.sign(&SystemRandom::new(), signed.as_bytes()).expect("a signature");
        format!("{signed}.{}", enc(sig.as_ref()))
    }
}

/// Keys served from memory, as the key server would serve them, counting fetches: for flow
/// tests on a paused clock, where a socket has no place.
pub struct StaticKeys {
    keys: std::collections::HashMap<String, String>,
    pub fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl StaticKeys {
    /// `keys`: (kid, key) pairs.
    pub fn new(keys: &[(&str, &TestKey)]) -> StaticKeys {
        StaticKeys {
            keys: keys.iter().map(|(kid, key)| (kid.to_string(), key.pem())).collect(),
            fetches: Default::default(),
        }
    }

    /// A verifier over these keys, and its fetch counter.
    pub fn verifier(self) -> (super::Verifier, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let fetches = std::sync::Arc::clone(&self.fetches);
        (super::Verifier::new(super::keys::Keys::new(Box::new(self), "mem://{region}/{kid}")), fetches)
    }
}

impl super::keys::KeySource for StaticKeys {
    fn fetch<'a>(&'a self, url: &'a str) -> super::keys::FetchFuture<'a> {
        self.fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let kid = url.rsplit('/').next().unwrap_or_default();
        let found = self.keys.get(kid).cloned();
        Box::pin(async move { Ok(found.map_or(super::keys::Fetched::Unknown, super::keys::Fetched::Key)) })
    }
}
