//! Rules: what the proxy changes in requests and responses, at run time.
//!
//! The rule types ([`Rule`], [`RuleAction`], ...) and their validation live in the tokio-free
//! `hotpatch-settings` crate (shared with the edit engine's configurations) and are re-exported
//! here. [`RuleSet::compile`] validates a list of rules into their compiled form (regexes
//! built, parameter values type-checked) and adds the runtime state: each compiled rule
//! carries an enabled flag and a hit counter that the running proxy updates without
//! recompiling.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

pub use hotpatch_settings::rules::{
    CompiledAction, CompiledFilter, Endpoint, FilterAction, InjectMode, Rule, RuleAction,
    RuleError, DEFAULT_FILTER_WINDOW, MAX_FILTER_WINDOW,
};

/// A compiled rule with its runtime state.
#[derive(Debug)]
pub struct CompiledRule {
    /// The rule as configured (its `enabled` field is the initial state only).
    pub rule: Rule,
    /// The compiled action.
    pub action: CompiledAction,
    enabled: AtomicBool,
    hits: AtomicU64,
}

impl CompiledRule {
    /// Whether the rule is currently enabled.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Times the rule changed a request or a response.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Whether the rule applies to `endpoint` (and is enabled).
    pub fn applies_to(&self, endpoint: Endpoint) -> bool {
        self.enabled()
            && (self.rule.endpoints.is_empty() || self.rule.endpoints.contains(&endpoint))
    }
}

/// Snapshot of one rule's state, for the UI and the CLI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleStatus {
    /// The rule (with `enabled` reflecting the current state).
    pub rule: Rule,
    /// Times it changed a request or a response.
    pub hits: u64,
}

/// A validated, compiled list of rules. Rules apply in list order.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<CompiledRule>,
    filters: Vec<CompiledFilter>,
}

impl RuleSet {
    /// Validate and compile `rules`. Errors name the rule (index and id) and the field.
    pub fn compile(rules: &[Rule]) -> Result<Self, RuleError> {
        let compiled = hotpatch_settings::rules::compile(rules)?;
        Ok(Self {
            rules: rules
                .iter()
                .zip(compiled.actions)
                .map(|(rule, action)| CompiledRule {
                    rule: rule.clone(),
                    action,
                    enabled: AtomicBool::new(rule.enabled),
                    hits: AtomicU64::new(0),
                })
                .collect(),
            filters: compiled.filters,
        })
    }

    /// The compiled rules, in order.
    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// The compiled response filters, in rule order.
    pub fn filters(&self) -> &[CompiledFilter] {
        &self.filters
    }

    /// Rule by id.
    pub fn get(&self, id: &str) -> Option<&CompiledRule> {
        self.rules.iter().find(|r| r.rule.id == id)
    }

    /// Enable or disable a rule; false if no rule has that id.
    pub fn set_enabled(&self, id: &str, enabled: bool) -> bool {
        match self.get(id) {
            Some(r) => {
                r.enabled.store(enabled, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Count one hit for each rule id in `applied`.
    pub fn record_hits(&self, applied: &[String]) {
        for id in applied {
            if let Some(r) = self.get(id) {
                r.hits.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Copy enabled flags and hit counters of rules with the same id from `old`.
    pub fn carry_state_from(&self, old: &RuleSet) {
        for r in &self.rules {
            if let Some(o) = old.get(&r.rule.id) {
                r.hits.store(o.hits(), Ordering::Relaxed);
            }
        }
    }

    /// The rules as configured, with their current enabled state.
    pub fn to_rules(&self) -> Vec<Rule> {
        self.rules
            .iter()
            .map(|r| Rule {
                enabled: r.enabled(),
                ..r.rule.clone()
            })
            .collect()
    }

    /// State of every rule.
    pub fn status(&self) -> Vec<RuleStatus> {
        self.rules
            .iter()
            .map(|r| RuleStatus {
                rule: Rule {
                    enabled: r.enabled(),
                    ..r.rule.clone()
                },
                hits: r.hits(),
            })
            .collect()
    }

    /// Whether any enabled response filter applies to `endpoint`.
    pub fn has_filters_for(&self, endpoint: Endpoint) -> bool {
        self.filters
            .iter()
            .any(|f| self.rules[f.rule].applies_to(endpoint))
    }

    /// Id of the rule at `index`.
    pub fn id_of(&self, index: usize) -> &str {
        &self.rules[index].rule.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn runtime_state_follows_the_configured_rules() {
        let rules: Vec<Rule> = serde_json::from_value(json!([
            {"id": "a", "action": {"type": "stop_sequences", "sequences": ["x"]}},
            {"id": "f", "enabled": false, "endpoints": ["completions"],
             "action": {"type": "filter_response", "pattern": "secret", "action": "redact"}},
        ]))
        .unwrap();
        let set = RuleSet::compile(&rules).unwrap();
        assert_eq!(set.rules().len(), 2);
        assert_eq!(set.filters().len(), 1);
        assert_eq!(set.filters()[0].rule, 1, "the filter points at its rule");
        assert!(set.get("a").unwrap().enabled());
        assert!(
            !set.get("f").unwrap().enabled(),
            "initial state from the rule"
        );
        assert!(
            !set.has_filters_for(Endpoint::Completions),
            "filter disabled"
        );
        assert!(set.set_enabled("f", true));
        assert!(set.has_filters_for(Endpoint::Completions));
        assert!(
            !set.has_filters_for(Endpoint::ChatCompletions),
            "endpoint list"
        );
        assert!(!set.set_enabled("nope", true));
        set.record_hits(&["a".into(), "a".into(), "zz".into()]);
        assert_eq!(set.get("a").unwrap().hits(), 2);
        assert!(
            set.to_rules()[1].enabled,
            "current state, not the configured one"
        );
        let e = RuleSet::compile(&[rules[0].clone(), rules[0].clone()]).unwrap_err();
        assert_eq!(
            (e.index, e.field.as_str()),
            (1, "id"),
            "validation errors pass through"
        );
    }
}
