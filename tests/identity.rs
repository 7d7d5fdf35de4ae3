//! The ALB's signed user claims, verified as in Lambda: keys generated here, served by a local
//! key server over HTTP (`AUTOSTOP_ELB_KEYS_URL`'s `{region}`/`{kid}` template), fetched by the
//! real client, cached by `kid`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use autostop::identity::keys::{HttpKeys, Keys};
use autostop::identity::testing::TestKey;
use autostop::identity::{Rejected, Verifier};
use serde_json::json;

const LB: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/dev/50dc6c495c0c9188";
const OTHER_LB: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/prod/73e2d6bc24d8a067";
const NOW: i64 = 1_800_000_000;

/// A key server on a free port: `GET /{region}/{kid}` answers the PEM of that kid, else 404.
/// Returns its URL template and how many requests it got.
fn key_server(keys: HashMap<String, String>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            reader.read_line(&mut line).unwrap();
            while reader.read_line(&mut String::new()).map(|n| n > 2).unwrap_or(false) {}
            counted.fetch_add(1, Ordering::SeqCst);
            let path = line.split_whitespace().nth(1).unwrap_or("/");
            let found = path.strip_prefix("/eu-west-1/").and_then(|kid| keys.get(kid));
            let (status, body) = match found {
                Some(pem) => ("200 OK", pem.clone()),
                None => ("404 Not Found", String::new()),
            };
            let reply =
                format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    (format!("http://127.0.0.1:{port}/{{region}}/{{kid}}"), hits)
}

fn header(kid: &str, signer: &str, exp: i64) -> serde_json::Value {
    json!({"typ": "JWT", "alg": "ES256", "kid": kid, "signer": signer, "iss": "https://idp.example.com", "client": "c-1", "exp": exp})
}

fn verifier(url: &str) -> Verifier {
    Verifier::new(Keys::new(Box::new(HttpKeys::new().unwrap()), url))
}

#[tokio::test]
async fn a_valid_token_names_its_user_and_its_key_is_fetched_once() {
    let key = TestKey::new();
    let (url, hits) = key_server(HashMap::from([("kid-1".to_string(), key.pem())]));
    let v = verifier(&url);
    let claims = json!({"sub": "u-1", "email": "ana@example.com", "exp": NOW + 60});
    let signers = [LB.to_string()];
    for pad in [false, true] {
        let token = key.token(header("kid-1", LB, NOW + 60), claims.clone(), pad);
        let who = v.verify(Some(&token), &signers, NOW).await.expect("valid");
        assert_eq!(who.who(), "ana@example.com", "pad {pad}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1, "cached by kid");
    let no_email = key.token(header("kid-1", LB, NOW + 60), json!({"sub": "u-2"}), false);
    assert_eq!(v.verify(Some(&no_email), &signers, NOW).await.unwrap().who(), "u-2", "the subject without an email");
}

#[tokio::test]
async fn other_signers_expired_tampered_and_unknown_keys_are_refused() {
    let key = TestKey::new();
    let (url, hits) = key_server(HashMap::from([("kid-1".to_string(), key.pem())]));
    let v = verifier(&url);
    let signers = [LB.to_string()];
    let claims = json!({"sub": "u-1", "email": "ana@example.com"});

    let foreign = key.token(header("kid-1", OTHER_LB, NOW + 60), claims.clone(), false);
    assert_eq!(v.verify(Some(&foreign), &signers, NOW).await, Err(Rejected::Signer));
    let expired = key.token(header("kid-1", LB, NOW - 1), claims.clone(), false);
    assert_eq!(v.verify(Some(&expired), &signers, NOW).await, Err(Rejected::Expired));
    assert_eq!(hits.load(Ordering::SeqCst), 0, "no key is fetched for a token refused on its face");

    let good = key.token(header("kid-1", LB, NOW + 60), claims.clone(), false);
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    parts[1] = base64_url(&json!({"sub": "u-9", "email": "eve@example.com"}).to_string());
    assert_eq!(v.verify(Some(&parts.join(".")), &signers, NOW).await, Err(Rejected::BadSignature));
    let forger = TestKey::new();
    let forged = forger.token(header("kid-1", LB, NOW + 60), claims.clone(), false);
    assert_eq!(v.verify(Some(&forged), &signers, NOW).await, Err(Rejected::BadSignature));

    let unknown = key.token(header("kid-9", LB, NOW + 60), claims.clone(), false);
    let before = hits.load(Ordering::SeqCst);
    assert_eq!(v.verify(Some(&unknown), &signers, NOW).await, Err(Rejected::UnknownKey));
    assert_eq!(v.verify(Some(&unknown), &signers, NOW).await, Err(Rejected::UnknownKey));
    assert_eq!(hits.load(Ordering::SeqCst), before + 1, "an unknown kid is asked for once a minute, not per request");
    assert_eq!(v.verify(None, &signers, NOW).await, Err(Rejected::Missing));
}

#[tokio::test]
async fn an_unreachable_key_server_is_a_refusal_not_a_panic() {
    let key = TestKey::new();
    let v = verifier("http://127.0.0.1:1/{region}/{kid}");
    let token = key.token(header("kid-1", LB, NOW + 60), json!({"sub": "u"}), false);
    assert_eq!(v.verify(Some(&token), &[LB.to_string()], NOW).await, Err(Rejected::KeysUnavailable));
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}
