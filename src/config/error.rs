//! A config that could not be loaded names the key at fault and why.

use std::fmt;

/// A config that could not be loaded: the key at fault and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "config: {}", self.reason)
        } else {
            write!(f, "config key `{}`: {}", self.key, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

pub(crate) fn err(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError { key: key.into(), reason: reason.into() }
}
