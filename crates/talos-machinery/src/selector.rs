//! COSI label selectors as used by MachineClass `match_labels` (omni-api.md §1.10, §4
//! "MachineClass").
//!
//! Syntax (COSI's label selector parser, a Kubernetes-style grammar): terms separated by `,`
//! are ANDed; a term is `key` (exists), `!key` (does not exist), `key = v` / `key == v`,
//! `key != v`, `key in (a, b)`, `key notin (a, b)`, `key < v`, `key <= v`, `key > v`,
//! `key >= v`. The four comparisons are numeric (`<` → LT_NUMERIC, `<=` → LTE_NUMERIC, `>` is
//! an inverted `<=`, `>=` an inverted `<`); numbers may carry a unit suffix (`16GiB`,
//! `10Gbps`, `500GB`: `Ki Mi Gi Ti Pi` binary, `k m g t p` decimal, case-insensitive).
//! A MachineClass holds several selector strings, matched with OR.

use std::collections::BTreeMap;

/// COSI label term operator (mirrors `resource.LabelOp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Key present.
    Exists,
    /// Value equals `values[0]`.
    Equal,
    /// Value in `values`.
    In,
    /// String less-than (never produced by the parser, kept for the wire format).
    Lt,
    /// String less-or-equal (never produced by the parser).
    Lte,
    /// Numeric less-than.
    LtNumeric,
    /// Numeric less-or-equal.
    LteNumeric,
}

impl Op {
    fn is_comparison(self) -> bool {
        matches!(self, Op::Lt | Op::Lte | Op::LtNumeric | Op::LteNumeric)
    }
}

/// One term of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelTerm {
    /// Label key.
    pub key: String,
    /// Operator.
    pub op: Op,
    /// Values (`In` values are sorted and de-duplicated by the parser).
    pub values: Vec<String>,
    /// Negation.
    pub invert: bool,
}

impl LabelTerm {
    /// Whether the labels satisfy the term (omni-api.md §1.10).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let Some(value) = labels.get(&self.key) else {
            // Comparisons never match a missing key, even inverted; other ops are negated.
            return !self.op.is_comparison() && self.invert;
        };
        if self.op != Op::Exists && self.values.is_empty() {
            return !self.op.is_comparison() && self.invert;
        }
        let result = match self.op {
            Op::Exists => true,
            Op::Equal => *value == self.values[0],
            Op::In => self.values.iter().any(|v| v == value),
            Op::Lt => value.as_str() < self.values[0].as_str(),
            Op::Lte => value.as_str() <= self.values[0].as_str(),
            Op::LtNumeric | Op::LteNumeric => {
                // Unparsable numbers never match, even inverted.
                let (Some(l), Some(r)) = (parse_number(value), parse_number(&self.values[0]))
                else {
                    return false;
                };
                if self.op == Op::LtNumeric {
                    l < r
                } else {
                    l <= r
                }
            }
        };
        result != self.invert
    }
}

/// A conjunction of terms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelQuery {
    /// Terms (all must match; an empty query matches everything).
    pub terms: Vec<LabelTerm>,
}

/// Selector parse error; the text follows COSI's parser.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

impl LabelQuery {
    /// Whether all terms match.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.terms.iter().all(|t| t.matches(labels))
    }
}

/// OR over queries; like COSI, an empty list matches everything.
pub fn matches_any(queries: &[LabelQuery], labels: &BTreeMap<String, String>) -> bool {
    queries.is_empty() || queries.iter().any(|q| q.matches(labels))
}

/// COSI's number reading for numeric comparisons: optional surrounding spaces, a run of
/// digits and `-`, then an optional unit.
pub fn parse_number(value: &str) -> Option<i64> {
    let v = value.trim();
    let split = v
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '-'))
        .map(|(i, _)| i)
        .unwrap_or(v.len());
    let (digits, units) = v.split_at(split);
    if digits.is_empty() {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    let u = units.trim().to_lowercase();
    let mult: i64 = if u.is_empty() {
        1
    } else {
        let two: String = u.chars().take(2).collect();
        match two.as_str() {
            "pi" => 1 << 50,
            "ti" => 1 << 40,
            "gi" => 1 << 30,
            "mi" => 1 << 20,
            "ki" => 1 << 10,
            _ => match u.chars().next() {
                Some('p') => 1_000_000_000_000_000,
                Some('t') => 1_000_000_000_000,
                Some('g') => 1_000_000_000,
                Some('m') => 1_000_000,
                Some('k') => 1_000,
                _ => return None,
            },
        }
    };
    // Go multiplies int64 without overflow checks.
    Some(n.wrapping_mul(mult))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Error,
    End,
    ClosePar,
    Comma,
    Not,
    DoubleEq,
    Eq,
    Gt,
    Gte,
    Ident,
    In,
    Lt,
    Lte,
    Neq,
    NotIn,
    OpenPar,
}

impl Tok {
    fn keyword(s: &str) -> Option<Tok> {
        Some(match s {
            ")" => Tok::ClosePar,
            "(" => Tok::OpenPar,
            "," => Tok::Comma,
            "!" => Tok::Not,
            "!=" => Tok::Neq,
            "==" => Tok::DoubleEq,
            "=" => Tok::Eq,
            ">" => Tok::Gt,
            ">=" => Tok::Gte,
            "<" => Tok::Lt,
            "<=" => Tok::Lte,
            "notin" => Tok::NotIn,
            "in" => Tok::In,
            _ => return None,
        })
    }

    fn text(self) -> &'static str {
        match self {
            Tok::ClosePar => ")",
            Tok::OpenPar => "(",
            Tok::Comma => ",",
            Tok::Not => "!",
            Tok::DoubleEq => "==",
            Tok::Eq => "=",
            Tok::Gt => ">",
            Tok::Gte => ">=",
            Tok::Lt => "<",
            Tok::Lte => "<=",
            Tok::Neq => "!=",
            Tok::NotIn => "notin",
            Tok::In => "in",
            _ => "",
        }
    }
}

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
}

impl Lexer {
    /// Next char; a NUL character ends the input, as in COSI's lexer.
    fn read(&mut self) -> Option<char> {
        let c = *self.chars.get(self.pos)?;
        self.pos += 1;
        if c == '\0' {
            None
        } else {
            Some(c)
        }
    }

    fn lex(&mut self) -> (Tok, String) {
        let mut c = self.read();
        while c.is_some_and(is_ws) {
            c = self.read();
        }
        let Some(c) = c else {
            return (Tok::End, String::new());
        };
        self.pos -= 1;
        if is_special(c) {
            let mut buf = String::new();
            let mut found: Option<(Tok, String)> = None;
            while let Some(ch) = self.read() {
                if !is_special(ch) {
                    self.pos -= 1;
                    break;
                }
                buf.push(ch);
                if let Some(t) = Tok::keyword(&buf) {
                    found = Some((t, buf.clone()));
                } else if found.is_some() {
                    self.pos -= 1;
                    break;
                }
            }
            return found.unwrap_or((Tok::Error, format!("error expected: keyword found '{buf}'")));
        }
        let mut buf = String::new();
        while let Some(ch) = self.read() {
            if is_special(ch) || is_ws(ch) {
                self.pos -= 1;
                break;
            }
            buf.push(ch);
        }
        match Tok::keyword(&buf) {
            Some(t) => (t, buf),
            None => (Tok::Ident, buf),
        }
    }
}

struct Parser {
    lexer: Lexer,
    current: Option<(Tok, String)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    KeyAndOperator,
    Values,
}

impl Parser {
    fn lookahead(&mut self, ctx: Ctx) -> (Tok, String) {
        if self.current.is_none() {
            self.current = Some(self.lexer.lex());
        }
        let (t, l) = self.current.clone().unwrap_or((Tok::End, String::new()));
        // `in`/`notin` are plain identifiers where values are expected.
        if ctx == Ctx::Values && matches!(t, Tok::In | Tok::NotIn) {
            return (Tok::Ident, l);
        }
        (t, l)
    }

    fn consume(&mut self, ctx: Ctx) -> (Tok, String) {
        let r = self.lookahead(ctx);
        self.current = None;
        r
    }

    fn parse(&mut self) -> Result<LabelQuery, String> {
        let mut terms = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Ctx::Values);
            match tok {
                Tok::Ident | Tok::Not => {
                    let term = self
                        .term()
                        .map_err(|e| format!("unable to parse term: {e}"))?;
                    terms.push(term);
                    let (t, l) = self.consume(Ctx::Values);
                    match t {
                        Tok::End => return Ok(LabelQuery { terms }),
                        Tok::Comma => {
                            let (t2, l2) = self.lookahead(Ctx::Values);
                            if t2 != Tok::Ident && t2 != Tok::Not {
                                return Err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => return Err(format!("found '{l}', expected: ',' or 'end of string'")),
                    }
                }
                Tok::End => return Ok(LabelQuery { terms }),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ))
                }
            }
        }
    }

    fn term(&mut self) -> Result<LabelTerm, String> {
        let (mut tok, mut key) = self.consume(Ctx::Values);
        let does_not_exist = tok == Tok::Not;
        let mut invert = false;
        if does_not_exist {
            (tok, key) = self.consume(Ctx::Values);
            invert = true;
        }
        if tok != Tok::Ident {
            return Err(format!("found '{key}', expected: identifier"));
        }
        let (next, _) = self.lookahead(Ctx::Values);
        if next == Tok::End || next == Tok::Comma {
            return Ok(LabelTerm {
                key,
                op: Op::Exists,
                values: Vec::new(),
                invert,
            });
        } else if does_not_exist {
            // COSI prints the identifier token's (empty) name here.
            return Err("expected EOF or ',', found ".to_string());
        }
        let (tok, lit) = self.consume(Ctx::KeyAndOperator);
        let op = match tok {
            Tok::NotIn => {
                invert = true;
                Op::In
            }
            Tok::In => Op::In,
            Tok::Neq => {
                invert = true;
                Op::Equal
            }
            Tok::Eq | Tok::DoubleEq => Op::Equal,
            Tok::Gte => {
                invert = true;
                Op::LtNumeric
            }
            Tok::Lt => Op::LtNumeric,
            Tok::Gt => {
                invert = true;
                Op::LteNumeric
            }
            Tok::Lte => Op::LteNumeric,
            _ => {
                let allowed = [
                    Tok::DoubleEq,
                    Tok::Eq,
                    Tok::Neq,
                    Tok::Gte,
                    Tok::Gt,
                    Tok::In,
                    Tok::NotIn,
                    Tok::Lte,
                    Tok::Lt,
                ]
                .iter()
                .map(|t| t.text())
                .collect::<Vec<_>>()
                .join(", ");
                return Err(format!("found '{lit}', expected: {allowed}"));
            }
        };
        let values = if op == Op::In {
            self.set_values()?
        } else {
            self.exact_value()?
        };
        Ok(LabelTerm {
            key,
            op,
            values,
            invert,
        })
    }

    fn set_values(&mut self) -> Result<Vec<String>, String> {
        let (tok, lit) = self.consume(Ctx::Values);
        if tok != Tok::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(Ctx::Values);
        match tok {
            Tok::Ident | Tok::Comma => {
                let set = self.identifiers()?;
                let (t, _) = self.consume(Ctx::Values);
                if t != Tok::ClosePar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                // A set: sorted, without duplicates.
                Ok(set.into_iter().collect())
            }
            Tok::ClosePar => {
                self.consume(Ctx::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    fn identifiers(&mut self) -> Result<std::collections::BTreeSet<String>, String> {
        let mut set = std::collections::BTreeSet::new();
        loop {
            let (tok, lit) = self.consume(Ctx::Values);
            match tok {
                Tok::Ident => {
                    set.insert(lit);
                    let (t2, l2) = self.lookahead(Ctx::Values);
                    match t2 {
                        Tok::Comma => continue,
                        Tok::ClosePar => return Ok(set),
                        _ => return Err(format!("found '{l2}', expected: ',' or ')'")),
                    }
                }
                Tok::Comma => {
                    if set.is_empty() {
                        set.insert(String::new());
                    }
                    let (t2, _) = self.lookahead(Ctx::Values);
                    if t2 == Tok::ClosePar {
                        set.insert(String::new());
                        return Ok(set);
                    }
                    if t2 == Tok::Comma {
                        self.consume(Ctx::Values);
                        set.insert(String::new());
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn exact_value(&mut self) -> Result<Vec<String>, String> {
        let (tok, _) = self.lookahead(Ctx::Values);
        if tok == Tok::End || tok == Tok::Comma {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(Ctx::Values);
        if tok == Tok::Ident {
            return Ok(vec![lit]);
        }
        Err(format!("found '{lit}', expected: identifier"))
    }
}

/// Parses one selector string.
pub fn parse_selector(s: &str) -> Result<LabelQuery, SelectorError> {
    let mut p = Parser {
        lexer: Lexer {
            chars: s.chars().collect(),
            pos: 0,
        },
        current: None,
    };
    p.parse().map_err(SelectorError)
}

/// Label reserved for machines held back from manual allocation; MachineClass selectors may
/// not use it (omni-api.md §3.2, §4).
pub const NO_MANUAL_ALLOCATION_LABEL: &str = "omni.sidero.dev/no-manual-allocation";

/// Parses the `match_labels` of a MachineClass (omni-api.md §4): every selector must parse and
/// none may mention the no-manual-allocation label.
pub fn parse_machine_class_selectors(selectors: &[String]) -> Result<Vec<LabelQuery>, String> {
    let mut out = Vec::with_capacity(selectors.len());
    for s in selectors {
        let q = parse_selector(s).map_err(|e| format!("failed to parse selector {s:?}: {e}"))?;
        if q.terms.iter().any(|t| t.key == NO_MANUAL_ALLOCATION_LABEL) {
            return Err(format!(
                "selector {s:?} uses the reserved label {NO_MANUAL_ALLOCATION_LABEL:?}"
            ));
        }
        out.push(q);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn term(s: &str) -> LabelTerm {
        let q = parse_selector(s).unwrap();
        assert_eq!(q.terms.len(), 1, "{s}");
        q.terms[0].clone()
    }

    #[test]
    fn grammar() {
        assert_eq!(term("a").op, Op::Exists);
        let t = term("!a");
        assert_eq!((t.op, t.invert), (Op::Exists, true));
        let t = term("a = b");
        assert_eq!(
            (t.op, t.invert, t.values.clone()),
            (Op::Equal, false, vec!["b".into()])
        );
        assert_eq!(term("a==b").op, Op::Equal);
        let t = term("a != b");
        assert_eq!((t.op, t.invert), (Op::Equal, true));
        let t = term("a in (c, b, c)");
        assert_eq!(
            (t.op, t.values.clone()),
            (Op::In, vec!["b".into(), "c".into()])
        );
        let t = term("a notin (x)");
        assert_eq!((t.op, t.invert), (Op::In, true));
        let t = term("a < 5");
        assert_eq!((t.op, t.invert), (Op::LtNumeric, false));
        let t = term("a <= 5");
        assert_eq!((t.op, t.invert), (Op::LteNumeric, false));
        let t = term("a > b");
        assert_eq!((t.op, t.invert), (Op::LteNumeric, true));
        let t = term("a >= 㰀㰀");
        assert_eq!(
            (t.op, t.invert, t.values.clone()),
            (Op::LtNumeric, true, vec!["㰀㰀".into()])
        );
        assert_eq!(term("a in ()").values, vec![String::new()]);
        assert_eq!(term("a =").values, vec![String::new()]);
        // `in` as a value.
        assert_eq!(term("a in (in)").values, vec!["in".to_string()]);
        let q = parse_selector("omni.sidero.dev/arch = amd64, !omni.sidero.dev/cluster").unwrap();
        assert_eq!(q.terms.len(), 2);
        assert!(parse_selector("").unwrap().terms.is_empty());
    }

    #[test]
    fn grammar_errors() {
        assert_eq!(
            parse_selector("a,").unwrap_err().0,
            "found '', expected: identifier after ','"
        );
        assert_eq!(
            parse_selector("a b").unwrap_err().0,
            "unable to parse term: found 'b', expected: ==, =, !=, >=, >, in, notin, <=, <"
        );
        assert_eq!(
            parse_selector("!a = b").unwrap_err().0,
            "unable to parse term: expected EOF or ',', found "
        );
        assert!(parse_selector("a in b")
            .unwrap_err()
            .0
            .contains("expected: '('"));
        assert!(parse_selector("=").is_err());
        assert!(parse_selector("a in (b").is_err());
    }

    #[test]
    fn matching() {
        let l = labels(&[
            ("a", "b"),
            ("e", "d"),
            ("disk", "4GB"),
            ("mem", "5GiB"),
            ("omni.sidero.dev/cores", "16"),
        ]);
        let m = |s: &str| parse_selector(s).unwrap().matches(&l);
        assert!(m("a"));
        assert!(!m("c"));
        assert!(m("!c"));
        assert!(m("a = b"));
        assert!(!m("a = c"));
        assert!(m("a != c"));
        assert!(m("x != c"), "inverted equality matches a missing key");
        assert!(m("e in (c, d)"));
        assert!(!m("e notin (c, d)"));
        assert!(m("disk <= 4000000000"));
        assert!(!m("disk <= 3999999999"));
        assert!(!m("mem < 5368709120"));
        assert!(m("mem < 5368709121"));
        assert!(m("omni.sidero.dev/cores >= 8"));
        assert!(!m("omni.sidero.dev/cores > 16"));
        // Comparisons never match a missing key or a non-number, even inverted.
        assert!(!m("missing >= 1"));
        assert!(!m("a >= 1"));
        assert!(m("a = b, e"));
        assert!(!m("a = b, f"));
        let qs = vec![
            parse_selector("a = x").unwrap(),
            parse_selector("e = d").unwrap(),
        ];
        assert!(matches_any(&qs, &l));
        assert!(!matches_any(&qs[..1], &l));
        assert!(matches_any(&[], &l));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("16GiB"), Some(16 << 30));
        assert_eq!(parse_number("10Gbps"), Some(10_000_000_000));
        assert_eq!(parse_number(" 500GB "), Some(500_000_000_000));
        assert_eq!(parse_number("7"), Some(7));
        assert_eq!(parse_number("x"), None);
        assert_eq!(parse_number("5 xb"), None);
        assert_eq!(parse_number("-"), None);
    }

    #[test]
    fn machine_class_rules() {
        assert!(parse_machine_class_selectors(&["a = b".into()]).is_ok());
        assert!(parse_machine_class_selectors(&["a = b".into(), "a b".into()]).is_err());
        let e =
            parse_machine_class_selectors(&[NO_MANUAL_ALLOCATION_LABEL.to_string()]).unwrap_err();
        assert!(e.contains("reserved label"));
    }
}
