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
    /// The types of its other actions in their order (`authenticate-oidc`,
    /// `authenticate-cognito`, `jwt-validation`): an operator's, never autostop's. Every change
    /// keeps them (see [`RuleChange::forward`]).
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

/// A host-header forward rule to create, tagged as ours in the same call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRule {
    pub listener_arn: String,
    pub priority: u32,
    pub hosts: Vec<String>,
    pub forward: Vec<Weighted>,
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
}

/// The tag that marks ALB rules as ours; only rules carrying it are ever deleted.
pub const RULE_TAG: &str = "autostop:rule";
