//! Listener rules as the port reads and writes them: a forward action's weighted target
//! groups, an existing rule with its owner tag, a rule to create, a change to make.

/// One member of a forward action: a target group and its weight (0-999; traffic goes only to
/// members with a weight above 0).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Weighted {
    pub target_group: String,
    pub weight: u32,
}

impl Weighted {
    pub fn new(target_group: &str, weight: u32) -> Weighted {
        Weighted { target_group: target_group.to_string(), weight }
    }
}

/// A non-default rule of a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerRule {
    pub arn: String,
    pub priority: u32,
    /// Values of its host-header condition(s).
    pub hosts: Vec<String>,
    /// Its forward action's target groups with their weights (empty for other actions).
    pub forward: Vec<Weighted>,
    /// Value of its `autostop:rule` tag: `Some` only for rules autostop created.
    pub owner: Option<String>,
    /// Its authenticate action (`authenticate-oidc` or `authenticate-cognito`), the first one
    /// if there are several; read without the client secret, which AWS never returns.
    pub auth: Option<Authenticate>,
    /// The types of its other actions before the forward, in their order (`jwt-validation`, a
    /// second authenticate action): an operator's, never autostop's. A forward change keeps
    /// them (see [`RuleChange::forward`]); an authenticate change replaces them.
    pub kept: Vec<String>,
}

impl ListenerRule {
    /// The target groups this rule sends traffic to (weight above 0).
    pub fn routes_to(&self) -> Vec<&str> {
        self.forward.iter().filter(|w| w.weight > 0).map(|w| w.target_group.as_str()).collect()
    }

    /// Every target group the rule references, whatever its weight (what keeps a group
    /// attached to the load balancer, and so health-checked).
    pub fn references(&self, target_group: &str) -> bool {
        self.forward.iter().any(|w| w.target_group == target_group)
    }
}

/// What a listener is, as DescribeListeners says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerFacts {
    /// The target group its default action forwards to (autostop's Lambda), if it forwards.
    pub default_target_group: Option<String>,
    /// HTTPS, not HTTP: only an HTTPS listener takes an authenticate action.
    pub https: bool,
}

/// A host-header forward rule to create, tagged as ours in the same call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRule {
    pub listener_arn: String,
    pub priority: u32,
    pub hosts: Vec<String>,
    pub forward: Vec<Weighted>,
    /// The authenticate action in front of the forward, if the rule is behind SSO.
    pub auth: Option<Authenticate>,
    /// Written as the `autostop:rule` tag.
    pub owner: String,
}

/// What a ModifyRule changes: the host condition, the forward action, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleChange {
    pub hosts: Option<Vec<String>>,
    /// The new forward action. Only it changes: ModifyRule replaces the whole action list
    /// ("to update an item in a list, you must provide the entire list", ELBv2 API reference,
    /// ModifyRule), so the port reads the rule's actions and sends every other one back in its
    /// order. An operator's `authenticate-oidc` in front of the forward, the usual way to keep a
    /// dev environment behind SSO, survives every wake and stop.
    pub forward: Option<Vec<Weighted>>,
    /// A new authenticate action: `Some(Some(a))` puts `a` alone in front of the forward,
    /// `Some(None)` leaves the forward alone in the rule (`auth = "none"`).
    pub auth: Option<Option<Authenticate>>,
}

/// The tag that marks ALB rules as ours; only rules carrying it are ever deleted.
pub const RULE_TAG: &str = "autostop:rule";

/// An ALB authenticate action (ELBv2 API reference, AuthenticateOidcActionConfig and
/// AuthenticateCognitoActionConfig). ALB runs it before the forward: a request without a valid
/// session goes to the IdP (or is denied, or let through, as [`OnUnauthenticated`] says), one
/// with a session reaches the target with the signed `x-amzn-oidc-data` header. Authenticate
/// actions work only on HTTPS listeners (ALB guide, "Authenticate users using an Application
/// Load Balancer").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authenticate {
    Oidc(Oidc),
    Cognito(Cognito),
}

/// `authenticate-oidc`: any OpenID Connect provider (Okta, Entra ID, Google, Keycloak).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oidc {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub user_info_endpoint: String,
    pub client_id: String,
    /// Write-only: needed to create a rule, never read back ([`Secret`]).
    pub client_secret: Secret,
    pub session: Session,
}

/// `authenticate-cognito`: an Amazon Cognito user pool and its app client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cognito {
    pub user_pool_arn: String,
    pub user_pool_client_id: String,
    pub user_pool_domain: String,
    pub session: Session,
}

/// What both kinds share, with ALB's defaults filled in (so a rule read back compares equal to
/// the config that made it): scope `openid`, a session of 604800 s (7 days), `authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub scope: String,
    pub timeout_secs: u64,
    pub on_unauthenticated: OnUnauthenticated,
}

pub const DEFAULT_SCOPE: &str = "openid";
pub const DEFAULT_SESSION_SECS: u64 = 604_800;

impl Default for Session {
    fn default() -> Session {
        Session {
            scope: DEFAULT_SCOPE.into(),
            timeout_secs: DEFAULT_SESSION_SECS,
            on_unauthenticated: OnUnauthenticated::Authenticate,
        }
    }
}

/// `OnUnauthenticatedRequest`: `authenticate` (redirect to the IdP, the default), `deny` (401)
/// or `allow` (forward without user claims).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnUnauthenticated {
    #[default]
    Authenticate,
    Deny,
    Allow,
}

impl OnUnauthenticated {
    pub fn as_str(self) -> &'static str {
        match self {
            OnUnauthenticated::Authenticate => "authenticate",
            OnUnauthenticated::Deny => "deny",
            OnUnauthenticated::Allow => "allow",
        }
    }

    pub fn parse(s: &str) -> Option<OnUnauthenticated> {
        [OnUnauthenticated::Authenticate, OnUnauthenticated::Deny, OnUnauthenticated::Allow]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

impl Authenticate {
    /// The action type as ALB names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Authenticate::Oidc(_) => "authenticate-oidc",
            Authenticate::Cognito(_) => "authenticate-cognito",
        }
    }

    /// The action as DescribeRules returns it: an OIDC one without its client secret.
    pub fn as_read(&self) -> Authenticate {
        let mut a = self.clone();
        if let Authenticate::Oidc(o) = &mut a {
            o.client_secret = Secret(None);
        }
        a
    }

    pub fn session(&self) -> &Session {
        match self {
            Authenticate::Oidc(o) => &o.session,
            Authenticate::Cognito(c) => &c.session,
        }
    }

    /// How an OIDC action is sent when it replaces `current`: the rule's existing secret when
    /// it already authenticates with the same client (`UseExistingClientSecret`), else ours.
    /// CreateRule has no existing secret ("this parameter is required if you are creating a
    /// rule", ELBv2 API reference, AuthenticateOidcActionConfig `ClientSecret`). `Err` when a
    /// secret is needed and the function's environment has none: nothing is sent.
    pub fn secret_for(&self, current: Option<&Authenticate>) -> Result<SecretUse, String> {
        let Authenticate::Oidc(oidc) = self else { return Ok(SecretUse::None) };
        let same_client = matches!(current, Some(Authenticate::Oidc(c)) if c.client_id == oidc.client_id);
        match (&oidc.client_secret.0, same_client) {
            (_, true) => Ok(SecretUse::Existing),
            (Some(secret), false) => Ok(SecretUse::Send(secret.clone())),
            (None, false) => Err(format!(
                "the OIDC client secret of client `{}` is not in this environment (auth.oidc.client_secret_env)",
                oidc.client_id
            )),
        }
    }
}

/// The code of our own refusal to send an OIDC action without the secret AWS needs (the
/// adapter and the fake refuse alike, before any call).
pub const SECRET_MISSING: &str = "ClientSecretMissing";

/// The client secret an OIDC action is sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretUse {
    /// Not an OIDC action.
    None,
    /// `UseExistingClientSecret=true`.
    Existing,
    Send(String),
}

/// A client secret. Write-only: AWS never returns it (DescribeRules leaves `ClientSecret` out),
/// so it takes no part in comparing actions, and it is never printed.
#[derive(Clone, Default)]
pub struct Secret(pub Option<String>);

impl PartialEq for Secret {
    fn eq(&self, _: &Secret) -> bool {
        true
    }
}

impl Eq for Secret {}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Secret(set)" } else { "Secret(unset)" })
    }
}
