//! Where a standing rule sends its hosts' traffic, and the forward action that says so: the
//! Lambda at weight 1 and the app at 0 while asleep or waking, the other way round once awake.

use crate::cloud::{ListenerRule, Weighted};

/// Where a standing rule sends its hosts' traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Lambda,
    App,
}

/// What the caller wants of a configured rule's standing rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Forward to this; create what is missing this way.
    Route(Route),
    /// Keep the way the existing rules forward; create missing ones like their siblings (or to
    /// the Lambda when there are none).
    Keep,
}

/// The forward action of a standing rule.
pub fn forward(route: Route, lambda_tg: &str, app_tg: &str) -> Vec<Weighted> {
    match route {
        Route::Lambda => vec![Weighted::new(lambda_tg, 1), Weighted::new(app_tg, 0)],
        Route::App => vec![Weighted::new(app_tg, 1), Weighted::new(lambda_tg, 0)],
    }
}

/// Where an existing rule sends traffic for this app: to the app when its group has weight.
pub fn route_of(rule: &ListenerRule, app_tg: &str) -> Route {
    if rule.routes_to().contains(&app_tg) {
        Route::App
    } else {
        Route::Lambda
    }
}
