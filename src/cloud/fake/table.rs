//! The DynamoDB state table: one item per rule, every write conditional on the stored version
//! (`ConditionalCheckFailedException` otherwise), and a table that may not exist.

use super::{FakeCloud, Op};
use crate::cloud::{CloudError, CloudResult, RuleState};

impl FakeCloud {
    /// The state table does not exist (deleted, never deployed).
    pub fn drop_state_table(&self) {
        let mut s = self.lock();
        s.state_table_missing = true;
        s.states.clear();
    }

    /// Puts an item in the state table as if earlier wakes had written it.
    pub fn seed_state(&self, state: RuleState) {
        self.lock().states.insert(state.rule.clone(), state);
    }

    pub fn state_item(&self, rule: &str) -> Option<RuleState> {
        self.lock().states.get(rule).cloned()
    }

    pub(super) async fn op_load_states(&self, _table: &str) -> CloudResult<Vec<RuleState>> {
        self.enter(Op::Scan).await?;
        let s = self.lock();
        if s.state_table_missing {
            return Err(CloudError::new("Scan", "ResourceNotFoundException", "Requested resource not found"));
        }
        let mut v: Vec<RuleState> = s.states.values().cloned().collect();
        v.sort_by(|a, b| a.rule.cmp(&b.rule));
        Ok(v)
    }

    pub(super) async fn op_load_state(&self, _table: &str, rule: &str) -> CloudResult<Option<RuleState>> {
        self.enter(Op::GetItem).await?;
        let s = self.lock();
        if s.state_table_missing {
            return Err(CloudError::new("GetItem", "ResourceNotFoundException", "Requested resource not found"));
        }
        Ok(s.states.get(rule).cloned())
    }

    pub(super) async fn op_save_state(
        &self,
        _table: &str,
        state: &RuleState,
        expected: Option<u64>,
    ) -> CloudResult<()> {
        self.enter(Op::PutItem).await?;
        let mut s = self.lock();
        if s.state_table_missing {
            return Err(CloudError::new("PutItem", "ResourceNotFoundException", "Requested resource not found"));
        }
        let current = s.states.get(&state.rule).map(|st| st.version);
        if current != expected {
            return Err(CloudError::new(
                "PutItem",
                "ConditionalCheckFailedException",
                "The conditional request failed",
            ));
        }
        s.states.insert(state.rule.clone(), state.clone());
        Ok(())
    }
}
