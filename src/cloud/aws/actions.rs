//! A listener rule's actions in the SDK's shape and back: the weighted forward, the
//! authenticate action in front of it, and the whole list ModifyRule must be sent.
//!
//! A rule ends in exactly one of forward, fixed-response or redirect; the actions before it
//! (authenticate-oidc, authenticate-cognito, jwt-validation) run first, by their order (ELBv2
//! API reference, Action: "the action with the lowest value for order is performed first").
//! ModifyRule replaces the whole list ("to update an item in a list, you must provide the entire
//! list", ELBv2 API reference, ModifyRule), so every change is a whole list built here.

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, AuthenticateCognitoActionConfig, AuthenticateOidcActionConfig, ForwardActionConfig,
    TargetGroupTuple,
};

use crate::cloud::listener::SECRET_MISSING;
use crate::cloud::{Authenticate, CloudError, Cognito, Oidc, OnUnauthenticated, Secret, SecretUse, Session, Weighted};

pub(super) fn is_terminal(action: &Action) -> bool {
    matches!(action.r#type(), Some(ActionTypeEnum::Forward | ActionTypeEnum::FixedResponse | ActionTypeEnum::Redirect))
}

fn is_authenticate(action: &Action) -> bool {
    matches!(action.r#type(), Some(ActionTypeEnum::AuthenticateOidc | ActionTypeEnum::AuthenticateCognito))
}

/// The actions in front of the terminal one, in their order.
pub(super) fn in_front(actions: &[Action]) -> Vec<&Action> {
    let mut front: Vec<&Action> = actions.iter().filter(|a| !is_terminal(a)).collect();
    front.sort_by_key(|a| a.order());
    front
}

/// The rule's list after a change: `forward` replaces the terminal action (else it is sent
/// back), `auth` replaces every action in front of it (else they are sent back, an OIDC one with
/// `UseExistingClientSecret`, since DescribeRules returns no secret). Orders run 1, 2, ...
pub(super) fn changed(
    current: &[Action],
    forward: Option<&[Weighted]>,
    auth: Option<Option<&Authenticate>>,
) -> Result<Vec<Action>, CloudError> {
    let mut actions: Vec<Action> = match auth {
        None => in_front(current).into_iter().map(resend).collect(),
        Some(None) => Vec::new(),
        Some(Some(a)) => {
            let now = in_front(current).into_iter().find(|a| is_authenticate(a)).and_then(auth_of);
            let secret =
                a.secret_for(now.as_ref()).map_err(|why| CloudError::new("ModifyRule", SECRET_MISSING, why))?;
            vec![auth_action(a, &secret)]
        }
    };
    let terminal = match forward {
        Some(f) => Some(forward_action(f, 0)),
        None => current.iter().find(|a| is_terminal(a)).cloned(),
    };
    actions.extend(terminal);
    for (i, a) in actions.iter_mut().enumerate() {
        a.order = Some(i as i32 + 1);
    }
    Ok(actions)
}

/// A new rule's actions: its authenticate action (with the secret CreateRule needs), then the
/// forward.
pub(super) fn created(forward: &[Weighted], auth: Option<&Authenticate>) -> Result<Vec<Action>, CloudError> {
    let mut actions = Vec::new();
    if let Some(a) = auth {
        let secret = a.secret_for(None).map_err(|why| CloudError::new("CreateRule", SECRET_MISSING, why))?;
        actions.push(auth_action(a, &secret));
    }
    actions.push(forward_action(forward, 0));
    for (i, a) in actions.iter_mut().enumerate() {
        a.order = Some(i as i32 + 1);
    }
    Ok(actions)
}

fn resend(action: &Action) -> Action {
    let mut action = action.clone();
    if let Some(oidc) = action.authenticate_oidc_config.as_mut() {
        oidc.client_secret = None;
        oidc.use_existing_client_secret = Some(true);
    }
    action
}

/// The weighted members of a forward action. A plain `TargetGroupArn` is one member of weight 1;
/// a tuple without a weight has the default weight 1 (ELBv2 API reference, TargetGroupTuple).
pub(super) fn forward_of(action: &Action) -> Vec<Weighted> {
    let tuples = action.forward_config().map(|fc| fc.target_groups()).unwrap_or_default();
    if tuples.is_empty() {
        return action.target_group_arn().map(|tg| vec![Weighted::new(tg, 1)]).unwrap_or_default();
    }
    tuples
        .iter()
        .filter_map(|t| Some(Weighted::new(t.target_group_arn()?, t.weight().unwrap_or(1).max(0) as u32)))
        .collect()
}

pub(super) fn forward_action(forward: &[Weighted], order: i32) -> Action {
    let tuples: Vec<TargetGroupTuple> = forward
        .iter()
        .map(|w| TargetGroupTuple::builder().target_group_arn(&w.target_group).weight(w.weight as i32).build())
        .collect();
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(ForwardActionConfig::builder().set_target_groups(Some(tuples)).build())
        .order(order)
        .build()
}

/// An authenticate action as DescribeRules returns it; ALB's defaults fill what it leaves out
/// (scope `openid`, session 604800 s, `authenticate`: ELBv2 API reference,
/// AuthenticateOidcActionConfig).
pub(super) fn auth_of(action: &Action) -> Option<Authenticate> {
    let s = |v: Option<&str>| v.unwrap_or_default().to_string();
    let session = |scope: Option<&str>, timeout: Option<i64>, on: Option<&str>| {
        let d = Session::default();
        Session {
            scope: scope.map(str::to_string).unwrap_or(d.scope),
            timeout_secs: timeout.map(|t| t.max(0) as u64).unwrap_or(d.timeout_secs),
            on_unauthenticated: on.and_then(OnUnauthenticated::parse).unwrap_or_default(),
        }
    };
    if let Some(c) = action.authenticate_oidc_config() {
        let on = c.on_unauthenticated_request().map(|o| o.as_str());
        return Some(Authenticate::Oidc(Oidc {
            issuer: s(c.issuer()),
            authorization_endpoint: s(c.authorization_endpoint()),
            token_endpoint: s(c.token_endpoint()),
            user_info_endpoint: s(c.user_info_endpoint()),
            client_id: s(c.client_id()),
            client_secret: Secret(None),
            session: session(c.scope(), c.session_timeout(), on),
        }));
    }
    let c = action.authenticate_cognito_config()?;
    let on = c.on_unauthenticated_request().map(|o| o.as_str());
    Some(Authenticate::Cognito(Cognito {
        user_pool_arn: s(c.user_pool_arn()),
        user_pool_client_id: s(c.user_pool_client_id()),
        user_pool_domain: s(c.user_pool_domain()),
        session: session(c.scope(), c.session_timeout(), on),
    }))
}

/// The action for `auth`, every field sent (so what AWS holds is what we compare against).
fn auth_action(auth: &Authenticate, secret: &SecretUse) -> Action {
    let session = auth.session();
    let on = session.on_unauthenticated.as_str();
    match auth {
        Authenticate::Oidc(o) => {
            let mut config = AuthenticateOidcActionConfig::builder()
                .issuer(&o.issuer)
                .authorization_endpoint(&o.authorization_endpoint)
                .token_endpoint(&o.token_endpoint)
                .user_info_endpoint(&o.user_info_endpoint)
                .client_id(&o.client_id)
                .scope(&session.scope)
                .session_timeout(session.timeout_secs as i64)
                .on_unauthenticated_request(on.into());
            config = match secret {
                SecretUse::Send(secret) => config.client_secret(secret).use_existing_client_secret(false),
                _ => config.use_existing_client_secret(true),
            };
            Action::builder().r#type(ActionTypeEnum::AuthenticateOidc).authenticate_oidc_config(config.build()).build()
        }
        Authenticate::Cognito(c) => {
            let config = AuthenticateCognitoActionConfig::builder()
                .user_pool_arn(&c.user_pool_arn)
                .user_pool_client_id(&c.user_pool_client_id)
                .user_pool_domain(&c.user_pool_domain)
                .scope(&session.scope)
                .session_timeout(session.timeout_secs as i64)
                .on_unauthenticated_request(on.into())
                .build();
            Action::builder().r#type(ActionTypeEnum::AuthenticateCognito).authenticate_cognito_config(config).build()
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_elasticloadbalancingv2::operation::create_rule::CreateRuleOutput;
    use aws_sdk_elasticloadbalancingv2::operation::modify_rule::ModifyRuleOutput;
    use aws_sdk_elasticloadbalancingv2::types::{ActionTypeEnum, Rule};
    use aws_sdk_elasticloadbalancingv2::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use super::super::elbv2::tests::{asleep, forward_weights, holds, new_rule, oidc, LAMBDA, TG};
    use super::super::elbv2::{create_rule, modify_rule};
    use super::forward_action;
    use crate::cloud::{NewRule, RuleChange};

    fn sso(secret: Option<&str>) -> crate::cloud::Authenticate {
        crate::cloud::Authenticate::Oidc(crate::cloud::Oidc {
            issuer: "https://idp.example.com".into(),
            authorization_endpoint: "https://idp.example.com/auth".into(),
            token_endpoint: "https://idp.example.com/token".into(),
            user_info_endpoint: "https://idp.example.com/userinfo".into(),
            client_id: "autostop-dev".into(),
            client_secret: crate::cloud::Secret(secret.map(str::to_string)),
            session: Default::default(),
        })
    }

    /// CreateRule needs the client secret ("required if you are creating a rule", ELBv2 API
    /// reference, AuthenticateOidcActionConfig): sent with the authenticate action first.
    #[tokio::test]
    async fn a_rule_behind_sso_is_created_with_its_secret_and_the_authenticate_action_first() {
        let rule = mock!(Client::create_rule)
            .match_requests(|r| {
                let [auth, fwd] = r.actions() else { return false };
                let cfg = auth.authenticate_oidc_config().expect("oidc");
                auth.r#type() == Some(&ActionTypeEnum::AuthenticateOidc)
                    && auth.order() == Some(1)
                    && cfg.client_secret() == Some("s3cret")
                    && cfg.scope() == Some("openid")
                    && cfg.session_timeout() == Some(604_800)
                    && fwd.r#type() == Some(&ActionTypeEnum::Forward)
                    && fwd.order() == Some(2)
            })
            .then_output(|| CreateRuleOutput::builder().rules(Rule::builder().rule_arn("arn:rule/1").build()).build());
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, [&rule]);
        let new = NewRule { auth: Some(sso(Some("s3cret"))), ..new_rule() };
        create_rule(&client, &new).await.unwrap();
        assert_eq!(rule.num_calls(), 1);

        let without = NewRule { auth: Some(sso(None)), ..new_rule() };
        let e = create_rule(&client, &without).await.unwrap_err();
        assert_eq!(e.code, "ClientSecretMissing", "refused before any call");
        assert_eq!(rule.num_calls(), 1);
    }

    /// Putting SSO in front of a rule that already authenticates with the same client reuses
    /// its secret; the operator's other actions are replaced, the forward kept.
    #[tokio::test]
    async fn an_authenticate_change_replaces_the_actions_in_front_and_keeps_the_forward() {
        let read = holds(vec![oidc(), forward_action(&asleep(), 2)]);
        let set = mock!(Client::modify_rule)
            .match_requests(|r| {
                let [auth, fwd] = r.actions() else { return false };
                let cfg = auth.authenticate_oidc_config().expect("oidc");
                cfg.use_existing_client_secret() == Some(true)
                    && cfg.client_secret().is_none()
                    && cfg.scope() == Some("openid")
                    && forward_weights(std::slice::from_ref(fwd)) == vec![(LAMBDA.to_string(), 1), (TG.to_string(), 0)]
            })
            .then_output(|| ModifyRuleOutput::builder().build());
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&read, &set]);
        let change = RuleChange { auth: Some(Some(sso(None))), ..Default::default() };
        modify_rule(&client, "arn:rule/1", &change).await.unwrap();
        assert_eq!(set.num_calls(), 1);

        let open = mock!(Client::modify_rule)
            .match_requests(|r| r.actions().len() == 1 && r.actions()[0].r#type() == Some(&ActionTypeEnum::Forward))
            .then_output(|| ModifyRuleOutput::builder().build());
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&read, &open]);
        let none = RuleChange { auth: Some(None), ..Default::default() };
        modify_rule(&client, "arn:rule/1", &none).await.unwrap();
        assert_eq!(open.num_calls(), 1, "auth = \"none\": the forward alone");
    }
}
