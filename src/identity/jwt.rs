//! The ALB's user-claims token (`x-amzn-oidc-data`), read and checked. Pure: the key is given.
//!
//! ALB guide, "Authenticate users using an Application Load Balancer", user claims encoding and
//! signature verification: behind an authenticate action the load balancer sends the user's
//! claims as a JWT signed with ES256 (ECDSA P-256, SHA-256); its header names `alg`, `kid` (the
//! key's id), `signer` (the load balancer's ARN), `iss`, `client` and `exp`. The public key, PEM
//! (SubjectPublicKeyInfo), is at `https://public-keys.auth.elb.REGION.amazonaws.com/KID`. The
//! segments are base64url and may carry `=` padding, which strict JWT parsers reject: accepted.

use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde::Deserialize;

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    Missing,
    Malformed,
    Algorithm,
    /// Signed by a load balancer that is not one of ours.
    Signer,
    Expired,
    /// The key server has no key by that id.
    UnknownKey,
    BadKey,
    BadSignature,
    /// The key server could not be asked.
    KeysUnavailable,
}

impl Rejected {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejected::Missing => "missing",
            Rejected::Malformed => "malformed",
            Rejected::Algorithm => "algorithm",
            Rejected::Signer => "signer",
            Rejected::Expired => "expired",
            Rejected::UnknownKey => "unknown_key",
            Rejected::BadKey => "bad_key",
            Rejected::BadSignature => "bad_signature",
            Rejected::KeysUnavailable => "keys_unavailable",
        }
    }
}

/// base64url, with or without padding.
pub(super) const B64: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The token's header, as the ALB writes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Header {
    pub alg: String,
    pub kid: String,
    pub signer: String,
    #[serde(default)]
    pub exp: Option<i64>,
}

/// The user claims autostop reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Claims {
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub exp: Option<i64>,
}

/// A token taken apart, not yet trusted.
#[derive(Debug, Clone)]
pub struct Token {
    pub header: Header,
    pub claims: Claims,
    /// `header.payload` exactly as received: what the signature covers.
    signed: String,
    signature: Vec<u8>,
}

impl Token {
    pub fn parse(text: &str) -> Result<Token, Rejected> {
        let mut parts = text.trim().split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(Rejected::Malformed);
        };
        let json = |part: &str| B64.decode(part).map_err(|_| Rejected::Malformed);
        let header: Header = serde_json::from_slice(&json(h)?).map_err(|_| Rejected::Malformed)?;
        let claims: Claims = serde_json::from_slice(&json(p)?).map_err(|_| Rejected::Malformed)?;
        if header.alg != "ES256" {
            return Err(Rejected::Algorithm);
        }
        if !valid_kid(&header.kid) {
            return Err(Rejected::Malformed);
        }
        Ok(Token { header, claims, signed: format!("{h}.{p}"), signature: json(s)? })
    }

    /// The signature checked against the PEM public key `pem`.
    pub fn verify(&self, pem: &str) -> Result<(), Rejected> {
        let point = p256_point(pem).ok_or(Rejected::BadKey)?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            .verify(self.signed.as_bytes(), &self.signature)
            .map_err(|_| Rejected::BadSignature)
    }

    /// Expired at `now` (epoch seconds), by the header's `exp` or the claims'.
    pub fn expired(&self, now: i64) -> bool {
        [self.header.exp, self.claims.exp].into_iter().flatten().any(|exp| exp <= now)
    }
}

/// A key id safe to put in a URL path: ALB's are UUIDs.
fn valid_kid(kid: &str) -> bool {
    !kid.is_empty() && kid.len() <= 128 && kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The DER of a P-256 SubjectPublicKeyInfo up to its point: SEQUENCE { SEQUENCE { OID
/// id-ecPublicKey, OID prime256v1 }, BIT STRING (0 unused bits) } (RFC 5480).
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The uncompressed point (65 bytes, `04 || x || y`) of a PEM P-256 public key.
fn p256_point(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(body).ok()?;
    let point = der.strip_prefix(&P256_SPKI_PREFIX[..])?;
    (point.len() == 65 && point[0] == 0x04).then(|| point.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::testing::TestKey;

    fn header(kid: &str) -> serde_json::Value {
        serde_json::json!({"alg": "ES256", "kid": kid, "signer": "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/dev/50dc6c495c0c9188", "exp": 2_000_000_000})
    }

    #[test]
    fn a_signed_token_verifies_with_or_without_padding_and_a_tampered_one_does_not() {
        let key = TestKey::new();
        let claims = serde_json::json!({"sub": "u-1", "email": "ana@example.com"});
        for pad in [false, true] {
            let text = key.token(header("3c5f-1"), claims.clone(), pad);
            let token = Token::parse(&text).unwrap();
            assert_eq!(token.verify(&key.pem()), Ok(()), "pad {pad}");
            assert_eq!(token.claims.email.as_deref(), Some("ana@example.com"));
        }
        let text = key.token(header("3c5f-1"), claims.clone(), false);
        let (head, rest) = text.split_once('.').unwrap();
        let forged = serde_json::json!({"sub": "u-2", "email": "eve@example.com"});
        let forged_payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string());
        let tampered = format!("{head}.{forged_payload}.{}", rest.split_once('.').unwrap().1);
        assert_eq!(Token::parse(&tampered).unwrap().verify(&key.pem()), Err(Rejected::BadSignature));
        let other = TestKey::new();
        assert_eq!(Token::parse(&text).unwrap().verify(&other.pem()), Err(Rejected::BadSignature));
    }

    #[test]
    fn what_is_not_an_alb_token_is_refused_before_any_key_is_asked_for() {
        let key = TestKey::new();
        let claims = serde_json::json!({"sub": "u-1"});
        let hs = serde_json::json!({"alg": "HS256", "kid": "k", "signer": "x"});
        assert_eq!(Token::parse(&key.token(hs, claims.clone(), false)).unwrap_err(), Rejected::Algorithm);
        let sneaky = serde_json::json!({"alg": "ES256", "kid": "../../etc", "signer": "x"});
        assert_eq!(Token::parse(&key.token(sneaky, claims, false)).unwrap_err(), Rejected::Malformed);
        assert_eq!(Token::parse("not.a-token").unwrap_err(), Rejected::Malformed);
        assert_eq!(p256_point("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"), None);
    }

    #[test]
    fn expiry_is_read_from_the_header_and_the_claims() {
        let key = TestKey::new();
        let t = Token::parse(&key.token(header("k"), serde_json::json!({"sub": "u", "exp": 1_000}), false)).unwrap();
        assert!(
            t.expired(1_000)
                && !Token::parse(&key.token(header("k"), serde_json::json!({}), false)).unwrap().expired(1_000)
        );
        assert!(Token::parse(&key.token(header("k"), serde_json::json!({}), false)).unwrap().expired(2_000_000_000));
    }
}
