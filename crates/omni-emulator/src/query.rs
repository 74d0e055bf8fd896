//! Label and ID queries of List/Watch (omni-api.md §1.5, §1.10).

use crate::model::Res;

/// Operator of one label term (numbers as in `LabelTerm.Operation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Key present.
    Exists,
    /// Value equals `value[0]`.
    Equal,
    /// Deprecated: treated as EXISTS + invert.
    NotExists,
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

impl Op {
    /// Maps the protobuf enum number; unknown numbers are unsupported (Unimplemented, §1.5).
    pub fn from_i32(v: i32) -> Option<Op> {
        Some(match v {
            0 => Op::Exists,
            1 => Op::Equal,
            2 => Op::NotExists,
            3 => Op::In,
            4 => Op::Lt,
            5 => Op::Lte,
            6 => Op::LtNumeric,
            7 => Op::LteNumeric,
            _ => return None,
        })
    }
}

/// One term of a label query.
#[derive(Clone, Debug)]
pub struct Term {
    /// Label key.
    pub key: String,
    /// Operator.
    pub op: Op,
    /// Operand values.
    pub values: Vec<String>,
    /// Negate the result (except for a missing key in comparisons).
    pub invert: bool,
}

impl Term {
    /// Evaluates the term against a label set, following COSI's rules (§1.10).
    pub fn matches(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        let (op, invert) = match self.op {
            Op::NotExists => (Op::Exists, !self.invert),
            o => (o, self.invert),
        };
        if op == Op::Exists {
            return value.is_some() != invert;
        }
        let Some(first) = self.values.first() else {
            // A non-EXISTS term with an empty operand list never matches.
            return false;
        };
        let comparison = matches!(op, Op::Lt | Op::Lte | Op::LtNumeric | Op::LteNumeric);
        let Some(value) = value else {
            // Missing key: comparisons are false even with invert; EQUAL/IN are false before invert.
            return if comparison { false } else { invert };
        };
        let result = match op {
            Op::Equal => value == first,
            Op::In => self.values.iter().any(|v| v == value),
            Op::Lt => value.as_str() < first.as_str(),
            Op::Lte => value.as_str() <= first.as_str(),
            Op::LtNumeric | Op::LteNumeric => match (value.parse::<f64>(), first.parse::<f64>()) {
                (Ok(a), Ok(b)) => {
                    if op == Op::LtNumeric {
                        a < b
                    } else {
                        a <= b
                    }
                }
                _ => return false,
            },
            Op::Exists | Op::NotExists => unreachable_exists(),
        };
        result != invert
    }
}

fn unreachable_exists() -> bool {
    // EXISTS was handled above; keep a total function instead of panicking.
    false
}

/// A full List/Watch filter: OR of label queries (each an AND of terms) plus an ID regexp.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Label queries, OR-ed. Empty = match all.
    pub label_queries: Vec<Vec<Term>>,
    /// Optional ID regexp.
    pub id_regexp: Option<regex::Regex>,
}

impl Filter {
    /// Whether the resource passes the filter.
    pub fn matches(&self, r: &Res) -> bool {
        if let Some(re) = &self.id_regexp {
            if !re.is_match(&r.id) {
                return false;
            }
        }
        self.label_queries.is_empty()
            || self
                .label_queries
                .iter()
                .any(|q| q.iter().all(|t| t.matches(&r.labels)))
    }

    /// Whether any query is present (single-resource watches reject it, §1.8).
    pub fn has_label_query(&self) -> bool {
        !self.label_queries.is_empty()
    }
}

/// Helper for controllers: a filter with one EQUAL term per pair.
pub fn labels_equal(pairs: &[(&str, &str)]) -> Filter {
    Filter {
        label_queries: vec![pairs
            .iter()
            .map(|(k, v)| Term {
                key: k.to_string(),
                op: Op::Equal,
                values: vec![v.to_string()],
                invert: false,
            })
            .collect()],
        id_regexp: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn labels(p: &[(&str, &str)]) -> BTreeMap<String, String> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn term(key: &str, op: Op, values: &[&str], invert: bool) -> Term {
        Term {
            key: key.into(),
            op,
            values: values.iter().map(|s| s.to_string()).collect(),
            invert,
        }
    }

    #[test]
    fn operators() {
        let l = labels(&[("a", "5"), ("b", "x")]);
        assert!(term("a", Op::Exists, &[], false).matches(&l));
        assert!(!term("a", Op::Exists, &[], true).matches(&l));
        assert!(term("z", Op::Exists, &[], true).matches(&l));
        assert!(term("z", Op::NotExists, &[], false).matches(&l));
        assert!(term("b", Op::Equal, &["x"], false).matches(&l));
        assert!(!term("b", Op::Equal, &["y"], false).matches(&l));
        assert!(term("z", Op::Equal, &["y"], true).matches(&l));
        assert!(term("b", Op::In, &["y", "x"], false).matches(&l));
        assert!(!term("b", Op::In, &[], false).matches(&l));
        assert!(term("a", Op::LtNumeric, &["10"], false).matches(&l));
        assert!(!term("a", Op::Lt, &["10"], false).matches(&l)); // "5" > "10" as strings
        assert!(term("a", Op::LteNumeric, &["5"], false).matches(&l));
        assert!(!term("a", Op::LtNumeric, &["5"], false).matches(&l));
        // missing key in comparison: false even with invert
        assert!(!term("z", Op::Lt, &["5"], true).matches(&l));
        assert!(!term("z", Op::LteNumeric, &["5"], true).matches(&l));
        assert!(term("a", Op::LtNumeric, &["5"], true).matches(&l));
    }
}
