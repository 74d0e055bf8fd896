//! COSI label queries as used by MachineClass `match_labels` (omni-api.md §1.10, §4).

use std::collections::BTreeMap;

/// COSI label term operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Key present.
    Exists,
    /// Value equals.
    Equal,
    /// Value in list.
    In,
    /// String less-than.
    Lt,
    /// String less-or-equal.
    Lte,
    /// Numeric less-than.
    LtNumeric,
    /// Numeric less-or-equal.
    LteNumeric,
}

/// One term of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelTerm {
    /// Label key.
    pub key: String,
    /// Operator.
    pub op: Op,
    /// Values.
    pub values: Vec<String>,
    /// Negation.
    pub invert: bool,
}

/// A conjunction of terms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelQuery {
    /// Terms (all must match).
    pub terms: Vec<LabelTerm>,
}

/// Selector parse error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

/// Parses a selector string.
pub fn parse_selector(s: &str) -> Result<LabelQuery, SelectorError> {
    let _ = s;
    Err(SelectorError("not implemented yet".into()))
}

impl LabelQuery {
    /// Whether all terms match.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let _ = labels;
        false
    }
}

/// OR over queries.
pub fn matches_any(queries: &[LabelQuery], labels: &BTreeMap<String, String>) -> bool {
    queries.iter().any(|q| q.matches(labels))
}
