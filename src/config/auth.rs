//! `auth`: who may reach a rule's hosts. Behind SSO, each standing rule of the rule puts ALB's
//! own authenticate action in front of its forward, so nobody who is unauthenticated reaches
//! the wake path or the app.
//!
//! ```toml
//! auth = { oidc = { issuer = "https://idp.example.com", authorization_endpoint = "...",
//!          token_endpoint = "...", user_info_endpoint = "...", client_id = "autostop",
//!          client_secret_env = "AUTOSTOP_OIDC_SECRET" } }
//! # or
//! auth = { cognito = { user_pool_arn = "arn:aws:cognito-idp:...:userpool/...",
//!          user_pool_client_id = "...", user_pool_domain = "dev-login" } }
//! ```
//!
//! Set at the top level, it applies to every rule; a rule may set its own, or `auth = "none"`.
//! Without `auth` anywhere, autostop adds no authenticate action and keeps any an operator
//! put on its rules. Removing `auth` opens nothing: the actions stay until a rule says
//! `auth = "none"`.

use std::time::Duration;

use serde::Deserialize;

use super::error::{err, ConfigError};
use super::values::parse_duration;
use crate::cloud::{Authenticate, Cognito, Oidc, OnUnauthenticated, Secret, Session};

/// Who may reach a rule's hosts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Access {
    /// No `auth` in the config: no authenticate action of ours, an operator's kept.
    #[default]
    Unmanaged,
    /// `auth = "none"`: the standing rules forward without authenticating.
    Public,
    /// Behind SSO: every standing rule authenticates first.
    Sso(Authenticate),
}

impl Access {
    pub fn sso(&self) -> Option<&Authenticate> {
        match self {
            Access::Sso(a) => Some(a),
            _ => None,
        }
    }
}

/// `auth` as written: `"none"`, or a table.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
pub(super) enum RawAuth {
    Word(String),
    Table(toml::Table),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthTable {
    oidc: Option<RawOidc>,
    cognito: Option<RawCognito>,
    /// `authenticate` (the default), `deny` or `allow`.
    on_unauthenticated: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOidc {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    user_info_endpoint: String,
    client_id: String,
    client_secret_env: String,
    scope: Option<String>,
    session_timeout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCognito {
    user_pool_arn: String,
    user_pool_client_id: String,
    user_pool_domain: String,
    scope: Option<String>,
    session_timeout: Option<String>,
}

/// ALB's longest session: 7 days (ELBv2 API reference, AuthenticateOidcActionConfig
/// `SessionTimeout`).
const MAX_SESSION: Duration = Duration::from_secs(604_800);

/// The rule's access: its own `auth`, else the top level's.
pub(super) fn access(key: &str, own: Option<RawAuth>, top: &Access) -> Result<Access, ConfigError> {
    match own {
        None => Ok(top.clone()),
        Some(raw) => parse(key, raw, &|name| std::env::var(name).ok()),
    }
}

/// One `auth` value; `env` reads the client secret.
pub(super) fn parse(key: &str, raw: RawAuth, env: &dyn Fn(&str) -> Option<String>) -> Result<Access, ConfigError> {
    let table = match raw {
        RawAuth::Word(w) if w == "none" => return Ok(Access::Public),
        RawAuth::Word(w) => {
            return Err(err(key, format!("`{w}`: write \"none\", or a table with `oidc` or `cognito`")));
        }
        RawAuth::Table(t) => t,
    };
    let t: RawAuthTable = toml::Value::Table(table).try_into().map_err(|e| err(key, toml_reason(&e)))?;
    let on_unauthenticated = match t.on_unauthenticated.as_deref() {
        None => OnUnauthenticated::default(),
        Some(w) => OnUnauthenticated::parse(w).ok_or_else(|| {
            err(format!("{key}.on_unauthenticated"), format!("`{w}`: one of \"authenticate\", \"deny\", \"allow\""))
        })?,
    };
    let auth = match (t.oidc, t.cognito) {
        (Some(o), None) => Authenticate::Oidc(oidc(&format!("{key}.oidc"), o, on_unauthenticated, env)?),
        (None, Some(c)) => Authenticate::Cognito(cognito(&format!("{key}.cognito"), c, on_unauthenticated)?),
        _ => return Err(err(key, "give exactly one of `oidc` or `cognito`")),
    };
    Ok(Access::Sso(auth))
}

fn toml_reason(e: &toml::de::Error) -> String {
    e.message().to_string()
}

fn oidc(
    key: &str,
    o: RawOidc,
    on: OnUnauthenticated,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Oidc, ConfigError> {
    let k = |f: &str| format!("{key}.{f}");
    for (field, url) in [
        ("issuer", &o.issuer),
        ("authorization_endpoint", &o.authorization_endpoint),
        ("token_endpoint", &o.token_endpoint),
        ("user_info_endpoint", &o.user_info_endpoint),
    ] {
        https_url(&k(field), url)?;
    }
    if o.client_id.trim().is_empty() {
        return Err(err(k("client_id"), "must not be empty"));
    }
    if !is_env_name(&o.client_secret_env) {
        return Err(err(
            k("client_secret_env"),
            format!("`{}` is not an environment variable name", o.client_secret_env),
        ));
    }
    let secret = env(&o.client_secret_env).filter(|s| !s.is_empty());
    Ok(Oidc {
        issuer: o.issuer,
        authorization_endpoint: o.authorization_endpoint,
        token_endpoint: o.token_endpoint,
        user_info_endpoint: o.user_info_endpoint,
        client_id: o.client_id,
        client_secret: Secret(secret),
        session: session(key, o.scope, o.session_timeout, on)?,
    })
}

fn cognito(key: &str, c: RawCognito, on: OnUnauthenticated) -> Result<Cognito, ConfigError> {
    let k = |f: &str| format!("{key}.{f}");
    let parts: Vec<&str> = c.user_pool_arn.split(':').collect();
    let pool_ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "cognito-idp"
        && parts[5].starts_with("userpool/")
        && parts[5].len() > "userpool/".len();
    if !pool_ok {
        return Err(err(
            k("user_pool_arn"),
            format!("`{}` is not a user pool ARN (arn:aws:cognito-idp:REGION:ACCOUNT:userpool/ID)", c.user_pool_arn),
        ));
    }
    for (field, v) in [("user_pool_client_id", &c.user_pool_client_id), ("user_pool_domain", &c.user_pool_domain)] {
        if v.trim().is_empty() {
            return Err(err(k(field), "must not be empty"));
        }
    }
    Ok(Cognito {
        user_pool_arn: c.user_pool_arn,
        user_pool_client_id: c.user_pool_client_id,
        user_pool_domain: c.user_pool_domain,
        session: session(key, c.scope, c.session_timeout, on)?,
    })
}

fn session(
    key: &str,
    scope: Option<String>,
    timeout: Option<String>,
    on: OnUnauthenticated,
) -> Result<Session, ConfigError> {
    let d = Session::default();
    let scope = scope.unwrap_or(d.scope);
    if !scope.split_whitespace().any(|s| s == "openid") {
        return Err(err(format!("{key}.scope"), format!("`{scope}` must include `openid` (ALB asks the IdP for it)")));
    }
    let timeout_secs = match timeout {
        None => d.timeout_secs,
        Some(t) => {
            let t = parse_duration(&t).map_err(|r| err(format!("{key}.session_timeout"), r))?;
            if t > MAX_SESSION {
                return Err(err(format!("{key}.session_timeout"), "must be at most 7d (ALB's longest session)"));
            }
            t.as_secs()
        }
    };
    Ok(Session { scope, timeout_secs, on_unauthenticated: on })
}

/// ALB takes only full HTTPS URLs for the IdP's endpoints (ELBv2 API reference,
/// AuthenticateOidcActionConfig: "this must be a full URL, including the HTTPS protocol, the
/// domain, and the path").
fn https_url(key: &str, url: &str) -> Result<(), ConfigError> {
    let rest = url.strip_prefix("https://").unwrap_or_default();
    if rest.is_empty() || rest.starts_with('/') || url.contains(char::is_whitespace) {
        return Err(err(key, format!("`{url}` is not a full https:// URL")));
    }
    Ok(())
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> RawAuth {
        RawAuth::Table(toml::from_str(text).unwrap())
    }

    const OIDC: &str = r#"
        oidc = { issuer = "https://idp.example.com", authorization_endpoint = "https://idp.example.com/auth",
                 token_endpoint = "https://idp.example.com/token", user_info_endpoint = "https://idp.example.com/me",
                 client_id = "autostop", client_secret_env = "OIDC_SECRET", session_timeout = "8h" }
    "#;

    #[test]
    fn oidc_takes_its_secret_from_the_environment_and_alb_defaults() {
        let env = |name: &str| (name == "OIDC_SECRET").then(|| "s3cret".to_string());
        let Access::Sso(Authenticate::Oidc(o)) = parse("auth", table(OIDC), &env).unwrap() else { panic!("oidc") };
        assert_eq!(o.client_secret.0.as_deref(), Some("s3cret"));
        assert_eq!((o.session.scope.as_str(), o.session.timeout_secs), ("openid", 8 * 3600));
        assert_eq!(o.session.on_unauthenticated, OnUnauthenticated::Authenticate);
        assert!(!format!("{o:?}").contains("s3cret"), "the secret is never printed");
    }

    #[test]
    fn errors_name_the_key() {
        let none = |_: &str| None;
        let e = |text: &str| parse("auth", table(text), &none).unwrap_err();
        assert_eq!(e("").reason, "give exactly one of `oidc` or `cognito`");
        let http = OIDC.replace("https://idp.example.com/token", "http://idp.example.com/token");
        assert_eq!(e(&http).key, "auth.oidc.token_endpoint");
        assert_eq!(e(&OIDC.replace("\"8h\"", "\"8d\"")).key, "auth.oidc.session_timeout");
        assert_eq!(e(&format!("{OIDC}\non_unauthenticated = \"maybe\"")).key, "auth.on_unauthenticated");
        let pool =
            r#"cognito = { user_pool_arn = "arn:aws:s3:::x", user_pool_client_id = "c", user_pool_domain = "d" }"#;
        assert_eq!(e(pool).key, "auth.cognito.user_pool_arn");
        assert!(e(&OIDC.replace("client_id", "client_ident")).reason.contains("client_ident"), "unknown key named");
        assert_eq!(parse("auth", RawAuth::Word("none".into()), &none).unwrap(), Access::Public);
        assert!(parse("auth", RawAuth::Word("off".into()), &none).is_err());
    }

    #[test]
    fn cognito_needs_no_secret() {
        let pool = r#"
            cognito = { user_pool_arn = "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_abc",
                        user_pool_client_id = "c1", user_pool_domain = "dev-login" }
            on_unauthenticated = "allow"
        "#;
        let Access::Sso(Authenticate::Cognito(c)) = parse("auth", table(pool), &|_| None).unwrap() else { panic!() };
        assert_eq!(c.session.on_unauthenticated, OnUnauthenticated::Allow);
        assert_eq!(Authenticate::Cognito(c).secret_for(None), Ok(crate::cloud::SecretUse::None));
    }
}
