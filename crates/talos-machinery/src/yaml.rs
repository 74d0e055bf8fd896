//! A small YAML layer shaped like go-yaml, which both the Image Factory and Omni use.
//!
//! * Reading: libyaml (a pure-Rust transpile) produces the same event stream as go-yaml, itself
//!   a libyaml port, so syntax errors, scalar styles, tags and line numbers line up. Events are
//!   assembled into a [`Node`] tree that keeps what go-yaml's `yaml.Node` keeps.
//! * Resolving: [`resolve_plain`] applies go-yaml's implicit typing of plain scalars (YAML 1.2
//!   core schema plus go-yaml's extras), needed to know when a string has to be quoted.
//! * Writing: [`Emitter`] reproduces go-yaml's block layout (4-space indent, indented
//!   sequences, `{}`/`[]` for empty collections) and its choice of scalar style
//!   (image-factory-and-talos.md §2.2), so the canonical bytes hash to the factory's IDs.

use std::collections::HashMap;
use std::mem::MaybeUninit;

use unsafe_libyaml_norway as unsafe_sys;

/// Nesting limit. go-yaml allows far more, but nothing legitimate comes close and the tree
/// consumers are recursive, so deep input is refused rather than risking the stack.
pub const MAX_DEPTH: usize = 256;
/// Limit on nodes produced by alias expansion ("billion laughs" protection, as in go-yaml).
pub const MAX_ALIAS_NODES: usize = 200_000;

/// Error while reading YAML; the text follows go-yaml (`yaml: line N: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct YamlError(pub String);

/// Presentation style of a scalar in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarStyle {
    /// Unquoted.
    Plain,
    /// `'...'`
    SingleQuoted,
    /// `"..."`
    DoubleQuoted,
    /// `|`
    Literal,
    /// `>`
    Folded,
}

/// Node content.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar with its raw (unescaped) text.
    Scalar {
        /// Scalar text.
        value: String,
        /// Source style.
        style: ScalarStyle,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order (duplicates kept; callers decide).
    Map(Vec<(Node, Node)>),
}

/// A parsed YAML node (aliases already expanded).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Content.
    pub kind: NodeKind,
    /// Short tag as go-yaml reports it: `!!str`, `!!int`, `!!map`, ... or a custom `!tag`.
    pub tag: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl Node {
    /// True for a null scalar (`~`, `null`, empty).
    pub fn is_null(&self) -> bool {
        matches!(self.kind, NodeKind::Scalar { .. }) && self.tag == "!!null"
    }

    /// Scalar text, if a scalar.
    pub fn scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Entries of a mapping with `<<` merge keys applied the way go-yaml does: explicit keys
    /// win over merged ones wherever they appear; merged mappings are taken in order.
    pub fn map_entries(&self) -> Vec<(&Node, &Node)> {
        let NodeKind::Map(pairs) = &self.kind else {
            return Vec::new();
        };
        if !pairs.iter().any(|(k, _)| k.tag == "!!merge") {
            return pairs.iter().map(|(k, v)| (k, v)).collect();
        }
        let explicit: Vec<&Node> = pairs
            .iter()
            .filter(|(k, _)| k.tag != "!!merge")
            .map(|(k, _)| k)
            .collect();
        let mut out: Vec<(&Node, &Node)> = Vec::new();
        for (k, v) in pairs {
            if k.tag != "!!merge" {
                out.push((k, v));
                continue;
            }
            let sources: Vec<&Node> = match &v.kind {
                NodeKind::Map(_) => vec![v],
                NodeKind::Seq(items) => items.iter().collect(),
                NodeKind::Scalar { .. } => Vec::new(),
            };
            for src in sources {
                for (mk, mv) in src.map_entries() {
                    let shadowed = explicit.iter().any(|e| same_key(e, mk))
                        || out.iter().any(|(e, _)| same_key(e, mk));
                    if !shadowed {
                        out.push((mk, mv));
                    }
                }
            }
        }
        out
    }
}

fn same_key(a: &Node, b: &Node) -> bool {
    to_value(a).ok() == to_value(b).ok()
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

enum Event {
    StreamEnd,
    DocumentStart,
    DocumentEnd,
    Alias(String, usize),
    Scalar {
        anchor: Option<String>,
        tag: Option<String>,
        value: String,
        style: ScalarStyle,
        line: usize,
        column: usize,
    },
    SeqStart(Option<String>, Option<String>, usize, usize),
    SeqEnd,
    MapStart(Option<String>, Option<String>, usize, usize),
    MapEnd,
    Other,
}

struct RawParser {
    parser: Box<MaybeUninit<unsafe_sys::yaml_parser_t>>,
    // libyaml keeps a pointer into this buffer; a Vec's heap block does not move.
    _input: Vec<u8>,
    done: bool,
}

impl RawParser {
    fn new(input: &str) -> Result<Self, YamlError> {
        let input = input.as_bytes().to_vec();
        let mut parser = Box::new(MaybeUninit::<unsafe_sys::yaml_parser_t>::uninit());
        // SAFETY: the parser lives in a Box (stable address) and is initialised before use;
        // the input buffer outlives the parser (dropped after it, see Drop).
        unsafe {
            let p = parser.as_mut_ptr();
            if unsafe_sys::yaml_parser_initialize(p).fail {
                return Err(YamlError("yaml: cannot initialise parser".into()));
            }
            unsafe_sys::yaml_parser_set_encoding(p, unsafe_sys::YAML_UTF8_ENCODING);
            unsafe_sys::yaml_parser_set_input_string(p, input.as_ptr(), input.len() as u64);
        }
        Ok(RawParser {
            parser,
            _input: input,
            done: false,
        })
    }

    fn error(&self) -> YamlError {
        // SAFETY: the parser was initialised in `new`.
        let p: &unsafe_sys::yaml_parser_t = unsafe { self.parser.assume_init_ref() };
        let problem = unsafe { cstr(p.problem as *const u8) }
            .unwrap_or_else(|| "unknown problem parsing YAML content".into());
        let scanner = p.error == unsafe_sys::YAML_SCANNER_ERROR;
        // go-yaml reports the context line when there is one, else the problem line; scanner
        // marks are 0-based at that point, parser marks already point past the line.
        let mut line = 0u64;
        if p.context_mark.line != 0 {
            line = p.context_mark.line;
        } else if p.problem_mark.line != 0 {
            line = p.problem_mark.line;
        }
        if line != 0 && scanner {
            line += 1;
        }
        if line == 0 && scanner {
            line = 1;
        }
        if line != 0 {
            YamlError(format!("yaml: line {line}: {problem}"))
        } else {
            YamlError(format!("yaml: {problem}"))
        }
    }

    fn next(&mut self) -> Result<Event, YamlError> {
        if self.done {
            return Ok(Event::StreamEnd);
        }
        let mut ev = MaybeUninit::<unsafe_sys::yaml_event_t>::uninit();
        // SAFETY: parser initialised; the event is only read after a successful parse and
        // deleted right after conversion.
        unsafe {
            let p = self.parser.as_mut_ptr();
            if (&*p).error != unsafe_sys::YAML_NO_ERROR {
                return Err(self.error());
            }
            if unsafe_sys::yaml_parser_parse(p, ev.as_mut_ptr()).fail {
                self.done = true;
                return Err(self.error());
            }
            let e = &*ev.as_ptr();
            let line = e.start_mark.line as usize + 1;
            let column = e.start_mark.column as usize + 1;
            let out = match e.type_ {
                unsafe_sys::YAML_STREAM_END_EVENT => {
                    self.done = true;
                    Event::StreamEnd
                }
                unsafe_sys::YAML_DOCUMENT_START_EVENT => Event::DocumentStart,
                unsafe_sys::YAML_DOCUMENT_END_EVENT => Event::DocumentEnd,
                unsafe_sys::YAML_ALIAS_EVENT => {
                    Event::Alias(cstr(e.data.alias.anchor).unwrap_or_default(), line)
                }
                unsafe_sys::YAML_SCALAR_EVENT => {
                    let s = &e.data.scalar;
                    let bytes = std::slice::from_raw_parts(s.value, s.length as usize);
                    let style = match s.style {
                        unsafe_sys::YAML_SINGLE_QUOTED_SCALAR_STYLE => ScalarStyle::SingleQuoted,
                        unsafe_sys::YAML_DOUBLE_QUOTED_SCALAR_STYLE => ScalarStyle::DoubleQuoted,
                        unsafe_sys::YAML_LITERAL_SCALAR_STYLE => ScalarStyle::Literal,
                        unsafe_sys::YAML_FOLDED_SCALAR_STYLE => ScalarStyle::Folded,
                        _ => ScalarStyle::Plain,
                    };
                    Event::Scalar {
                        anchor: cstr(s.anchor),
                        tag: cstr(s.tag),
                        value: String::from_utf8_lossy(bytes).into_owned(),
                        style,
                        line,
                        column,
                    }
                }
                unsafe_sys::YAML_SEQUENCE_START_EVENT => Event::SeqStart(
                    cstr(e.data.sequence_start.anchor),
                    cstr(e.data.sequence_start.tag),
                    line,
                    column,
                ),
                unsafe_sys::YAML_SEQUENCE_END_EVENT => Event::SeqEnd,
                unsafe_sys::YAML_MAPPING_START_EVENT => Event::MapStart(
                    cstr(e.data.mapping_start.anchor),
                    cstr(e.data.mapping_start.tag),
                    line,
                    column,
                ),
                unsafe_sys::YAML_MAPPING_END_EVENT => Event::MapEnd,
                _ => Event::Other,
            };
            unsafe_sys::yaml_event_delete(ev.as_mut_ptr());
            Ok(out)
        }
    }
}

impl Drop for RawParser {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` (construction fails before Self exists otherwise).
        unsafe { unsafe_sys::yaml_parser_delete(self.parser.as_mut_ptr()) }
    }
}

/// # Safety
/// `p` must be null or point to a NUL-terminated string.
unsafe fn cstr(p: *const u8) -> Option<String> {
    if p.is_null() {
        return None;
    }
    let c = unsafe { std::ffi::CStr::from_ptr(p as *const std::ffi::c_char) };
    Some(String::from_utf8_lossy(c.to_bytes()).into_owned())
}

fn short_tag(tag: &str) -> String {
    if let Some(rest) = tag.strip_prefix("tag:yaml.org,2002:") {
        format!("!!{rest}")
    } else {
        tag.to_string()
    }
}

enum Frame {
    Seq(Node, Option<String>),
    Map(Node, Option<String>, Option<Node>),
}

/// Parses up to `max_docs` documents (all when `None`). An empty document yields a null node.
/// Parsing stops after the last wanted document, like go-yaml's streaming decoder, so errors
/// in later documents are not seen.
pub fn parse_documents(input: &str, max_docs: Option<usize>) -> Result<Vec<Node>, YamlError> {
    let mut parser = RawParser::new(input)?;
    let mut docs = Vec::new();
    let mut anchors: HashMap<String, Node> = HashMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Node> = None;
    let mut alias_nodes = 0usize;
    loop {
        if let Some(m) = max_docs {
            if docs.len() >= m {
                break;
            }
        }
        let ev = parser.next()?;
        let (node, anchor) = match ev {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                anchors.clear();
                root = None;
                continue;
            }
            Event::DocumentEnd => {
                docs.push(root.take().unwrap_or(Node {
                    kind: NodeKind::Scalar {
                        value: String::new(),
                        style: ScalarStyle::Plain,
                    },
                    tag: "!!null".into(),
                    line: 1,
                    column: 1,
                }));
                continue;
            }
            Event::Other => continue,
            Event::Alias(name, line) => {
                let Some(n) = anchors.get(&name) else {
                    return Err(YamlError(format!(
                        "yaml: line {line}: unknown anchor '{name}' referenced"
                    )));
                };
                alias_nodes += count_nodes(n);
                if alias_nodes > MAX_ALIAS_NODES {
                    return Err(YamlError(
                        "yaml: document contains excessive aliasing".into(),
                    ));
                }
                (n.clone(), None)
            }
            Event::Scalar {
                anchor,
                tag,
                value,
                style,
                line,
                column,
            } => {
                let tag = match tag.as_deref() {
                    // go-yaml ignores the non-specific `!` tag when resolving.
                    None | Some("!") if style == ScalarStyle::Plain => {
                        resolve_plain(&value).tag().to_string()
                    }
                    None | Some("!") => "!!str".to_string(),
                    Some(t) => short_tag(t),
                };
                (
                    Node {
                        kind: NodeKind::Scalar { value, style },
                        tag,
                        line,
                        column,
                    },
                    anchor,
                )
            }
            Event::SeqStart(anchor, tag, line, column) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(YamlError(format!(
                        "yaml: exceeded max depth of {MAX_DEPTH}"
                    )));
                }
                let tag = tag.map(|t| short_tag(&t)).unwrap_or_else(|| "!!seq".into());
                stack.push(Frame::Seq(
                    Node {
                        kind: NodeKind::Seq(Vec::new()),
                        tag,
                        line,
                        column,
                    },
                    anchor,
                ));
                continue;
            }
            Event::MapStart(anchor, tag, line, column) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(YamlError(format!(
                        "yaml: exceeded max depth of {MAX_DEPTH}"
                    )));
                }
                let tag = tag.map(|t| short_tag(&t)).unwrap_or_else(|| "!!map".into());
                stack.push(Frame::Map(
                    Node {
                        kind: NodeKind::Map(Vec::new()),
                        tag,
                        line,
                        column,
                    },
                    anchor,
                    None,
                ));
                continue;
            }
            Event::SeqEnd | Event::MapEnd => match stack.pop() {
                Some(Frame::Seq(n, a)) => (n, a),
                Some(Frame::Map(n, a, _)) => (n, a),
                None => return Err(YamlError("yaml: unbalanced collection end".into())),
            },
        };
        if let Some(a) = anchor {
            anchors.insert(a, node.clone());
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq(seq, _)) => {
                if let NodeKind::Seq(items) = &mut seq.kind {
                    items.push(node);
                }
            }
            Some(Frame::Map(map, _, pending)) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => {
                    if let NodeKind::Map(pairs) = &mut map.kind {
                        pairs.push((key, node));
                    }
                }
            },
        }
    }
    Ok(docs)
}

fn count_nodes(n: &Node) -> usize {
    match &n.kind {
        NodeKind::Scalar { .. } => 1,
        NodeKind::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        NodeKind::Map(pairs) => {
            1 + pairs
                .iter()
                .map(|(k, v)| count_nodes(k) + count_nodes(v))
                .sum::<usize>()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Implicit typing of plain scalars
// ---------------------------------------------------------------------------------------------

/// What a plain scalar means to go-yaml.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    /// `~`, `null`, `Null`, `NULL`, empty.
    Null,
    /// `true`/`false` in three spellings.
    Bool(bool),
    /// Fits in i64.
    Int(i64),
    /// Above i64 but fits u64.
    Uint(u64),
    /// Float (including `.inf`, `.nan`).
    Float(f64),
    /// A timestamp, already in Go's RFC 3339 output form.
    Timestamp(String),
    /// `<<`
    Merge,
    /// Anything else.
    Str,
}

impl Resolved {
    /// The short tag.
    pub fn tag(&self) -> &'static str {
        match self {
            Resolved::Null => "!!null",
            Resolved::Bool(_) => "!!bool",
            Resolved::Int(_) | Resolved::Uint(_) => "!!int",
            Resolved::Float(_) => "!!float",
            Resolved::Timestamp(_) => "!!timestamp",
            Resolved::Merge => "!!merge",
            Resolved::Str => "!!str",
        }
    }
}

/// Implicit resolution of a plain scalar, following go-yaml's resolver.
pub fn resolve_plain(s: &str) -> Resolved {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        // yaml/v4 maps these two spellings to negative zero.
        "-0" | "-0.0" => return Resolved::Float(-0.0),
        "<<" => return Resolved::Merge,
        _ => {}
    }
    let first = s.as_bytes()[0];
    match first {
        b'.' => {
            if let Some(f) = go_parse_float(s) {
                return Resolved::Float(f);
            }
        }
        b'0'..=b'9' | b'+' | b'-' => {
            if let Some(ts) = parse_timestamp(s) {
                return Resolved::Timestamp(ts);
            }
            let plain: String = s.chars().filter(|c| *c != '_').collect();
            if let Some(i) = go_parse_int(&plain) {
                return i;
            }
            if is_yaml_style_float(&plain) {
                if let Some(f) = go_parse_float(&plain) {
                    return Resolved::Float(f);
                }
            }
            for (prefix, radix, neg) in [
                ("0b", 2, false),
                ("-0b", 2, true),
                ("0o", 8, false),
                ("-0o", 8, true),
            ] {
                if let Some(digits) = plain.strip_prefix(prefix) {
                    if let Ok(v) = i64::from_str_radix(digits, radix) {
                        if !digits.starts_with(['+', '-']) {
                            return Resolved::Int(if neg { -v } else { v });
                        }
                    }
                }
            }
        }
        _ => {}
    }
    Resolved::Str
}

/// Go's `strconv.ParseInt(s, 0, 64)` then `ParseUint(s, 0, 64)`: optional sign, base prefix
/// `0x`/`0o`/`0b`, a bare leading `0` meaning octal.
fn go_parse_int(s: &str) -> Option<Resolved> {
    let (neg, body) = match s.as_bytes().first()? {
        // ParseInt accepts '+', ParseUint does not: a '+' value only fits in i64.
        b'+' => {
            return match go_parse_int(&s[1..])? {
                Resolved::Int(i) if !s[1..].starts_with(['+', '-']) => Some(Resolved::Int(i)),
                _ => None,
            }
        }
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let (radix, digits) =
        if let Some(d) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, d)
        } else if let Some(d) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
            (8, d)
        } else if let Some(d) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
            (2, d)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..])
        } else {
            (10, body)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let mag = u128::from_str_radix(digits, radix).ok()?;
    if neg {
        if mag <= (i64::MAX as u128) + 1 {
            return Some(Resolved::Int((-(mag as i128)) as i64));
        }
        return None;
    }
    if mag <= i64::MAX as u128 {
        Some(Resolved::Int(mag as i64))
    } else if mag <= u64::MAX as u128 {
        Some(Resolved::Uint(mag as u64))
    } else {
        None
    }
}

/// go-yaml's float shape: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Decimal float parse restricted to what Go's `ParseFloat` accepts for these shapes.
fn go_parse_float(s: &str) -> Option<f64> {
    if !s
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    // Go reports overflow to ±Inf as an error (the text then stays a string).
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// go-yaml's timestamp check: `YYYY-` prefix, then one of the layouts
/// `2006-1-2T15:4:5.999999999Z07:00`, the same with `t`, `2006-1-2 15:4:5.999999999`,
/// `2006-1-2`. Returns Go's `time.RFC3339Nano` rendering of the value.
pub fn parse_timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let year: i32 = s[..4].parse().ok()?;
    let mut rest = &s[5..];
    let num = |rest: &mut &str, max_len: usize| -> Option<u32> {
        let n = rest
            .bytes()
            .take(max_len)
            .take_while(u8::is_ascii_digit)
            .count();
        if n == 0 {
            return None;
        }
        let v = rest[..n].parse().ok()?;
        *rest = &rest[n..];
        Some(v)
    };
    let month = num(&mut rest, 2)?;
    rest = rest.strip_prefix('-')?;
    let day = num(&mut rest, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let date = format!("{year:04}-{month:02}-{day:02}");
    if rest.is_empty() {
        return Some(format!("{date}T00:00:00Z"));
    }
    let with_zone = if let Some(r) = rest.strip_prefix('T').or_else(|| rest.strip_prefix('t')) {
        rest = r;
        true
    } else if let Some(r) = rest.strip_prefix(' ') {
        rest = r;
        false
    } else {
        return None;
    };
    let hour = num(&mut rest, 2)?;
    rest = rest.strip_prefix(':')?;
    let minute = num(&mut rest, 2)?;
    rest = rest.strip_prefix(':')?;
    let second = num(&mut rest, 2)?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut frac = String::new();
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        // Go keeps nanosecond precision: further digits are read but dropped.
        frac = r[..n.min(9)].trim_end_matches('0').to_string();
        rest = &r[n..];
    }
    let zone = if with_zone {
        if rest == "Z" {
            "Z".to_string()
        } else {
            let sign = rest.chars().next()?;
            if sign != '+' && sign != '-' {
                return None;
            }
            let z = &rest[1..];
            let zb = z.as_bytes();
            if zb.len() != 5 || zb[2] != b':' {
                return None;
            }
            let zh: u32 = z[..2].parse().ok()?;
            let zm: u32 = z[3..].parse().ok()?;
            // Go's time.Parse accepts offsets up to 24 hours and 60 minutes.
            if zh > 24 || zm > 60 {
                return None;
            }
            let total = zh * 60 + zm;
            if total == 0 {
                "Z".to_string()
            } else {
                format!("{sign}{:02}:{:02}", total / 60, total % 60)
            }
        }
    } else {
        if !rest.is_empty() {
            return None;
        }
        "Z".to_string()
    };
    if with_zone && rest.is_empty() {
        return None;
    }
    let frac = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    Some(format!(
        "{date}T{hour:02}:{minute:02}:{second:02}{frac}{zone}"
    ))
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Generic values
// ---------------------------------------------------------------------------------------------

/// A generic decoded YAML value, as Go gets when decoding into `interface{}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`
    Null,
    /// Boolean.
    Bool(bool),
    /// Signed integer.
    Int(i64),
    /// Unsigned integer above `i64::MAX`.
    Uint(u64),
    /// Floating point.
    Float(f64),
    /// Timestamp, kept in Go's RFC 3339 output form.
    Timestamp(String),
    /// String.
    String(String),
    /// Sequence.
    Seq(Vec<Value>),
    /// Mapping in input order; sorted only when emitted.
    Map(Vec<(Value, Value)>),
}

/// Decodes a node generically (Go `interface{}` semantics; tags `!!str` etc. honoured).
pub fn to_value(n: &Node) -> Result<Value, YamlError> {
    match &n.kind {
        NodeKind::Scalar { value, style } => scalar_value(value, *style, &n.tag, n.line),
        NodeKind::Seq(items) => items
            .iter()
            .map(to_value)
            .collect::<Result<_, _>>()
            .map(Value::Seq),
        NodeKind::Map(_) => {
            let mut out: Vec<(Value, Value)> = Vec::new();
            for (k, v) in n.map_entries() {
                let kv = to_value(k)?;
                if matches!(kv, Value::Seq(_) | Value::Map(_)) {
                    return Err(YamlError(format!("yaml: line {}: invalid map key", k.line)));
                }
                let vv = to_value(v)?;
                if let Some(slot) = out.iter_mut().find(|(ek, _)| *ek == kv) {
                    slot.1 = vv;
                } else {
                    out.push((kv, vv));
                }
            }
            Ok(Value::Map(out))
        }
    }
}

fn scalar_value(
    value: &str,
    _style: ScalarStyle,
    tag: &str,
    line: usize,
) -> Result<Value, YamlError> {
    // Plain untagged scalars already carry their resolved tag; quoted ones carry `!!str`.
    let resolved = match tag {
        "!!null" => Resolved::Null,
        "!!bool" | "!!int" | "!!float" | "!!timestamp" | "!!merge" => {
            let r = resolve_plain(value);
            let compatible = r.tag() == tag
                || (tag == "!!float" && matches!(r, Resolved::Int(_) | Resolved::Uint(_)));
            if !compatible {
                return Err(YamlError(format!(
                    "yaml: line {line}: cannot decode {} `{value}` as a {tag}",
                    r.tag()
                )));
            }
            r
        }
        _ => Resolved::Str,
    };
    Ok(match resolved {
        Resolved::Null => Value::Null,
        Resolved::Bool(b) => Value::Bool(b),
        Resolved::Int(i) if tag == "!!float" => Value::Float(i as f64),
        Resolved::Int(i) => Value::Int(i),
        Resolved::Uint(u) if tag == "!!float" => Value::Float(u as f64),
        Resolved::Uint(u) => Value::Uint(u),
        Resolved::Float(f) => Value::Float(f),
        Resolved::Timestamp(t) => Value::Timestamp(t),
        Resolved::Merge | Resolved::Str => Value::String(value.to_string()),
    })
}

/// go-yaml refuses a mapping whose keys repeat (same node kind and same raw text); returns
/// its message `line N: mapping key "k" already defined at line M` for the first such pair.
pub fn duplicate_key_errors(n: &Node) -> Vec<String> {
    let NodeKind::Map(pairs) = &n.kind else {
        return Vec::new();
    };
    let mut errs = Vec::new();
    for i in 0..pairs.len() {
        for j in i + 1..pairs.len() {
            let (a, b) = (&pairs[i].0, &pairs[j].0);
            if let (Some(x), Some(y)) = (a.scalar(), b.scalar()) {
                if x == y {
                    errs.push(format!(
                        "line {}: mapping key {} already defined at line {}",
                        b.line,
                        go_quote(y),
                        a.line
                    ));
                }
            }
        }
    }
    errs
}

/// Go's `%q`/`%#v` rendering of a string (enough for messages).
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` with go-yaml's names for the specials.
pub fn format_go_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            ".inf".into()
        } else {
            "-.inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Shortest round-trip digits from Rust, laid out with Go's %g rules.
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let neg = if f < 0.0 { "-" } else { "" };
    // Go: with the shortest precision, %e is used when exp < -4 || exp >= 6.
    let nd = digits.len() as i32;
    let dp = exp + 1;
    let eprec = 6;
    if exp < -4 || exp >= eprec {
        let mut m = digits[..1].to_string();
        if nd > 1 {
            m.push('.');
            m.push_str(&digits[1..]);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        let e = exp.abs();
        format!("{neg}{m}e{sign}{e:02}")
    } else if dp <= 0 {
        format!("{neg}0.{}{}", "0".repeat((-dp) as usize), digits)
    } else if dp >= nd {
        format!("{neg}{}{}", digits, "0".repeat((dp - nd) as usize))
    } else {
        format!("{neg}{}.{}", &digits[..dp as usize], &digits[dp as usize..])
    }
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// Scalar style requested by the encoder (the emitter may still change it, like libyaml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Plain if allowed.
    Plain,
    /// Single-quoted if allowed.
    Single,
    /// Double-quoted.
    Double,
    /// Literal block if allowed.
    Literal,
}

/// A node to emit.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    /// A scalar with the requested style; `plain_forbidden` mirrors an event whose plain form
    /// is not implicit (the emitter then falls back to single quotes).
    Scalar {
        /// Text.
        value: String,
        /// Requested style.
        style: Style,
        /// Plain style not implicit for this value.
        plain_forbidden: bool,
    },
    /// Sequence.
    Seq(Vec<Out>),
    /// Mapping in emission order.
    Map(Vec<(Out, Out)>),
}

/// Which go-yaml build's string quoting to imitate (image-factory-and-talos.md §2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    /// yaml/v4 rc.6 (factory v1.5.0): YAML 1.1 booleans, base-60 numbers and `<<` single-quoted.
    #[default]
    V4Rc6,
    /// yaml/v4 rc.3/rc.4 (factory v0.9.0 … v1.4.0, public factory v1.3.3): those double-quoted.
    V4Rc4,
    /// gopkg.in/yaml.v3 (factory < v0.9.0): double-quoted, `<<` plain.
    V3,
}

fn is_yaml11_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
    )
}

/// go-yaml's base-60 float shape `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    if i >= b.len() || !b[i].is_ascii_digit() {
        return false;
    }
    i += 1;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while i < b.len() && b[i] == b':' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 2 {
            i += 1;
        }
        let n = i - start;
        if n == 0 || (n == 2 && b[start] > b'5') {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// How go-yaml's encoder presents a Go string (its `stringv`), for the given library flavor.
pub fn string_out(s: &str, flavor: Flavor) -> Out {
    let resolved = resolve_plain(s);
    let legacy = is_yaml11_bool(s) || is_base60_float(s);
    let mut plain_forbidden = false;
    let can_plain = match flavor {
        Flavor::V4Rc6 => {
            if legacy || resolved == Resolved::Merge {
                plain_forbidden = true;
            }
            resolved == Resolved::Str || resolved == Resolved::Merge
        }
        Flavor::V4Rc4 => resolved == Resolved::Str && !legacy,
        Flavor::V3 => (resolved == Resolved::Str || resolved == Resolved::Merge) && !legacy,
    };
    // yaml/v4 keeps a literal block only for text of two or more bytes with a non-space
    // character; other strings with a newline are double-quoted. yaml.v3 always tried literal.
    let literal_ok =
        flavor == Flavor::V3 || (s.len() >= 2 && s.chars().any(|c| !c.is_whitespace()));
    let style = if s.contains('\n') {
        if literal_ok {
            Style::Literal
        } else {
            Style::Double
        }
    } else if can_plain {
        Style::Plain
    } else {
        Style::Double
    };
    Out::Scalar {
        value: s.to_string(),
        style,
        plain_forbidden,
    }
}

/// A scalar written as is (numbers, booleans, null).
pub fn plain_out(s: impl Into<String>) -> Out {
    Out::Scalar {
        value: s.into(),
        style: Style::Plain,
        plain_forbidden: false,
    }
}

/// Converts a generic value for emission, sorting mapping keys with go-yaml's comparator.
pub fn value_out(v: &Value, flavor: Flavor) -> Out {
    match v {
        Value::Null => plain_out("null"),
        Value::Bool(b) => plain_out(if *b { "true" } else { "false" }),
        Value::Int(i) => plain_out(i.to_string()),
        Value::Uint(u) => plain_out(u.to_string()),
        Value::Float(f) => plain_out(format_go_float(*f)),
        Value::Timestamp(t) => plain_out(t.clone()),
        Value::String(s) => string_out(s, flavor),
        Value::Seq(items) => Out::Seq(items.iter().map(|i| value_out(i, flavor)).collect()),
        Value::Map(pairs) => {
            let mut sorted: Vec<&(Value, Value)> = pairs.iter().collect();
            sorted.sort_by(|a, b| key_order(&a.0, &b.0));
            Out::Map(
                sorted
                    .into_iter()
                    .map(|(k, v)| (value_out(k, flavor), value_out(v, flavor)))
                    .collect(),
            )
        }
    }
}

fn key_number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Uint(u) => Some(*u as f64),
        Value::Float(f) => Some(*f),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

/// Rank of a key's Go kind, used when kinds differ (bool < ints < floats < strings).
fn key_kind_rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Int(_) => 2,
        Value::Uint(_) => 7,
        Value::Float(_) => 14,
        Value::String(_) | Value::Timestamp(_) => 24,
        Value::Seq(_) => 23,
        Value::Map(_) => 21,
    }
}

/// go-yaml's map key order (image-factory-and-talos.md §2.3).
pub fn key_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    if let (Some(x), Some(y)) = (key_number(a), key_number(b)) {
        if x != y {
            return x.partial_cmp(&y).unwrap_or(Ordering::Equal);
        }
        return key_kind_rank(a).cmp(&key_kind_rank(b));
    }
    let (sa, sb) = match (a, b) {
        (Value::String(x) | Value::Timestamp(x), Value::String(y) | Value::Timestamp(y)) => (x, y),
        _ => return key_kind_rank(a).cmp(&key_kind_rank(b)),
    };
    natural_less(sa, sb)
}

/// String comparison used for keys: letters compare as runes; a letter against a non-letter
/// goes first only right after a digit; digit runs compare by numeric value, then by length.
fn natural_less(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut after_digit = false;
    let n = ar.len().min(br.len());
    for i in 0..n {
        if ar[i] == br[i] {
            after_digit = ar[i].is_numeric();
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            // One letter, one non-letter.
            let a_first = if after_digit { al } else { bl };
            return if a_first {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        // Both non-letters: compare the digit runs starting here as numbers. When one side
        // starts with '0' and the preceding digits are not all zeros, the run continues a
        // number, so a leading 1 is assumed to keep zeros significant.
        let mut an: i128 = 0;
        let mut bn: i128 = 0;
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .saturating_mul(10)
                .saturating_add(ar[ai] as i128 - '0' as i128);
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .saturating_mul(10)
                .saturating_add(br[bi] as i128 - '0' as i128);
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

/// go-yaml/libyaml block emitter (best indent 4, unlimited width, non-compact sequences).
pub struct Emitter {
    out: String,
    column: usize,
    indent: i64,
    indents: Vec<i64>,
    whitespace: bool,
    indention: bool,
    flow_level: usize,
}

const BEST_INDENT: i64 = 4;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Parent {
    Root,
    SeqItem,
    Other,
}

struct Analysis {
    multiline: bool,
    flow_plain: bool,
    block_plain: bool,
    single: bool,
    block: bool,
}

fn is_printable(c: char) -> bool {
    let c = c as u32;
    c == 0x0A
        || (0x20..=0x7E).contains(&c)
        || (0xA0..=0xD7FF).contains(&c)
        || ((0xE000..=0xFFFD).contains(&c) && c != 0xFEFF)
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank(c: Option<char>) -> bool {
    matches!(c, Some(' ') | Some('\t'))
}

fn is_blankz(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => c == ' ' || c == '\t' || c == '\0' || is_break(c),
    }
}

fn analyze(value: &str) -> Analysis {
    if value.is_empty() {
        return Analysis {
            multiline: false,
            flow_plain: false,
            block_plain: true,
            single: true,
            block: false,
        };
    }
    let chars: Vec<char> = value.chars().collect();
    let mut block_ind = false;
    let mut flow_ind = false;
    if value.starts_with("---") || value.starts_with("...") {
        block_ind = true;
        flow_ind = true;
    }
    let (mut line_breaks, mut special, mut tabs) = (false, false, false);
    let (mut lead_space, mut lead_break, mut trail_space, mut trail_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut prev_space, mut prev_break) = (false, false);
    let mut preceded_by_ws = true;
    let n = chars.len();
    for i in 0..n {
        let c = chars[i];
        // go-yaml only treats space/tab (or the end) as "followed by whitespace" here.
        let followed_by_ws = i + 1 >= n || is_blank(chars.get(i + 1).copied());
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => {
                    flow_ind = true;
                    block_ind = true;
                }
                '?' | ':' => {
                    flow_ind = true;
                    if followed_by_ws {
                        block_ind = true;
                    }
                }
                '-' if followed_by_ws => {
                    flow_ind = true;
                    block_ind = true;
                }
                _ => {}
            }
        } else {
            match c {
                ',' | '?' | '[' | ']' | '{' | '}' => flow_ind = true,
                ':' => {
                    flow_ind = true;
                    if followed_by_ws {
                        block_ind = true;
                    }
                }
                '#' if preceded_by_ws => {
                    flow_ind = true;
                    block_ind = true;
                }
                _ => {}
            }
        }
        if c == '\t' {
            tabs = true;
        } else if !is_printable(c) {
            special = true;
        }
        if c == ' ' {
            if i == 0 {
                lead_space = true;
            }
            if i + 1 == n {
                trail_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if is_break(c) {
            line_breaks = true;
            if i == 0 {
                lead_break = true;
            }
            if i + 1 == n {
                trail_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_by_ws = is_blankz(Some(c));
    }
    let mut a = Analysis {
        multiline: line_breaks,
        flow_plain: true,
        block_plain: true,
        single: true,
        block: true,
    };
    if lead_space || lead_break || trail_space || trail_break {
        a.flow_plain = false;
        a.block_plain = false;
    }
    if trail_space {
        a.block = false;
    }
    if break_space {
        a.flow_plain = false;
        a.block_plain = false;
        a.single = false;
    }
    if space_break || tabs || special {
        a.flow_plain = false;
        a.block_plain = false;
        a.single = false;
    }
    if space_break || special {
        a.block = false;
    }
    if line_breaks {
        a.flow_plain = false;
        a.block_plain = false;
    }
    if flow_ind {
        a.flow_plain = false;
    }
    if block_ind {
        a.block_plain = false;
    }
    a
}

impl Default for Emitter {
    fn default() -> Self {
        Self::new()
    }
}

impl Emitter {
    /// New emitter at the start of a stream.
    pub fn new() -> Self {
        Emitter {
            out: String::new(),
            column: 0,
            indent: -1,
            indents: Vec::new(),
            whitespace: true,
            indention: true,
            flow_level: 0,
        }
    }

    /// Emits one document (no `---` header for the first, like go-yaml).
    pub fn document(&mut self, root: &Out) {
        if !self.out.is_empty() {
            self.write_indent();
            self.write_indicator("---", true, false, false);
            self.write_indent();
        }
        self.indent = -1;
        self.node(root, Parent::Root, false);
        // Document end: go-yaml finishes the last line.
        self.indent = -1;
        self.write_indent();
    }

    /// The text produced so far.
    pub fn finish(self) -> String {
        self.out
    }

    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
        self.indention = true;
    }

    fn write_break_char(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
            self.indention = true;
        }
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0) as usize;
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
    }

    fn write_indicator(&mut self, ind: &str, need_ws: bool, is_ws: bool, is_indention: bool) {
        if need_ws && !self.whitespace {
            self.put(' ');
        }
        for c in ind.chars() {
            self.put(c);
        }
        self.whitespace = is_ws;
        self.indention = self.indention && is_indention;
    }

    fn increase_indent(&mut self, flow: bool, parent: Parent) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if parent == Parent::SeqItem {
            self.indent += 2;
        } else {
            self.indent = BEST_INDENT * ((self.indent + BEST_INDENT) / BEST_INDENT);
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn simple_key_ok(node: &Out) -> bool {
        match node {
            Out::Scalar { value, .. } => !analyze(value).multiline && value.len() <= 128,
            Out::Seq(items) => items.is_empty(),
            Out::Map(pairs) => pairs.is_empty(),
        }
    }

    fn node(&mut self, node: &Out, parent: Parent, simple_key: bool) {
        match node {
            Out::Scalar {
                value,
                style,
                plain_forbidden,
            } => self.scalar(value, *style, *plain_forbidden, parent, simple_key),
            Out::Seq(items) if items.is_empty() => self.empty_flow("[", "]"),
            Out::Map(pairs) if pairs.is_empty() => self.empty_flow("{", "}"),
            Out::Seq(items) => {
                self.increase_indent(false, parent);
                for item in items {
                    self.write_indent();
                    self.write_indicator("-", true, false, true);
                    self.node(item, Parent::SeqItem, false);
                }
                self.pop_indent();
            }
            Out::Map(pairs) => {
                self.increase_indent(false, parent);
                for (k, v) in pairs {
                    self.write_indent();
                    if Self::simple_key_ok(k) {
                        self.node(k, Parent::Other, true);
                        self.write_indicator(":", false, false, false);
                    } else {
                        self.write_indicator("?", true, false, true);
                        self.node(k, Parent::Other, false);
                        self.write_indent();
                        self.write_indicator(":", true, false, true);
                    }
                    self.node(v, Parent::Other, false);
                }
                self.pop_indent();
            }
        }
    }

    fn empty_flow(&mut self, open: &str, close: &str) {
        self.write_indicator(open, true, true, false);
        self.write_indicator(close, false, false, false);
    }

    fn scalar(
        &mut self,
        value: &str,
        style: Style,
        plain_forbidden: bool,
        parent: Parent,
        simple_key: bool,
    ) {
        let a = analyze(value);
        let mut style = style;
        if simple_key && a.multiline {
            style = Style::Double;
        }
        if style == Style::Plain {
            let flow = self.flow_level > 0;
            if (flow && !a.flow_plain) || (!flow && !a.block_plain) {
                style = Style::Single;
            }
            if value.is_empty() && (flow || simple_key) {
                style = Style::Single;
            }
            if plain_forbidden {
                style = Style::Single;
            }
        }
        if style == Style::Single && !a.single {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block || self.flow_level > 0 || simple_key) {
            style = Style::Double;
        }
        self.increase_indent(true, parent);
        match style {
            Style::Plain => self.write_plain(value),
            Style::Single => self.write_single(value),
            Style::Double => self.write_double(value),
            Style::Literal => self.write_literal(value),
        }
        self.pop_indent();
    }

    fn write_plain(&mut self, value: &str) {
        if !value.is_empty() && !self.whitespace {
            self.put(' ');
        }
        let mut breaks = false;
        for c in value.chars() {
            if c == ' ' {
                self.put(c);
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break_char(c);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
        if !value.is_empty() {
            self.whitespace = false;
        }
        self.indention = false;
    }

    fn write_single(&mut self, value: &str) {
        self.write_indicator("'", true, false, false);
        let mut breaks = false;
        for c in value.chars() {
            if c == ' ' {
                self.put(c);
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break_char(c);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_double(&mut self, value: &str) {
        self.write_indicator("\"", true, false, false);
        // go-yaml's BOM test looks at the start of the value, not at the current character, so a
        // value that starts with a BOM has every character escaped. Imitated for identical bytes.
        let bom_start = value.starts_with('\u{FEFF}');
        for c in value.chars() {
            if bom_start || !is_printable(c) || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                let v = c as u32;
                let simple = match v {
                    0x00 => Some('0'),
                    0x07 => Some('a'),
                    0x08 => Some('b'),
                    0x09 => Some('t'),
                    0x0A => Some('n'),
                    0x0B => Some('v'),
                    0x0C => Some('f'),
                    0x0D => Some('r'),
                    0x1B => Some('e'),
                    0x22 => Some('"'),
                    0x5C => Some('\\'),
                    0x85 => Some('N'),
                    0xA0 => Some('_'),
                    0x2028 => Some('L'),
                    0x2029 => Some('P'),
                    _ => None,
                };
                match simple {
                    Some(e) => self.put(e),
                    None => {
                        let s = if v <= 0xFF {
                            format!("x{v:02X}")
                        } else if v <= 0xFFFF {
                            format!("u{v:04X}")
                        } else {
                            format!("U{v:08X}")
                        };
                        for ch in s.chars() {
                            self.put(ch);
                        }
                    }
                }
            } else {
                self.put(c);
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_literal(&mut self, value: &str) {
        self.write_indicator("|", true, false, false);
        let first = value.chars().next();
        if matches!(first, Some(' ')) || first.is_some_and(is_break) {
            let hint = char::from(b'0' + BEST_INDENT as u8);
            self.write_indicator(&hint.to_string(), false, false, false);
        }
        let chars: Vec<char> = value.chars().collect();
        let chomp = if chars.is_empty() || !is_break(chars[chars.len() - 1]) {
            Some("-")
        } else if chars.len() == 1 || is_break(chars[chars.len() - 2]) {
            Some("+")
        } else {
            None
        };
        if let Some(ch) = chomp {
            self.write_indicator(ch, false, false, false);
        }
        self.put_break();
        self.whitespace = true;
        let mut breaks = true;
        for c in chars {
            if is_break(c) {
                self.write_break_char(c);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

/// Emits one document.
pub fn emit(root: &Out) -> String {
    let mut e = Emitter::new();
    e.document(root);
    e.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> String {
        emit(&Out::Map(vec![(
            plain_out("k"),
            string_out(s, Flavor::V4Rc6),
        )]))
    }

    #[test]
    fn quoting_table_from_spec() {
        // image-factory-and-talos.md §2.2 string scalar styles.
        for (input, want) in [
            ("console=ttyS0,115200n8", "console=ttyS0,115200n8"),
            ("-foo", "-foo"),
            ("a,b", "a,b"),
            ("foo# bar", "foo# bar"),
            ("?foo", "?foo"),
            ("--", "--"),
            ("12e", "12e"),
            ("0x", "0x"),
            ("it's", "it's"),
            ("true", "\"true\""),
            ("10", "\"10\""),
            ("null", "\"null\""),
            ("0x1F", "\"0x1F\""),
            ("True", "\"True\""),
            (".inf", "\".inf\""),
            (".nan", "\".nan\""),
            ("0o17", "\"0o17\""),
            ("0b101", "\"0b101\""),
            ("1_000", "\"1_000\""),
            ("+1", "\"+1\""),
            (".5", "\".5\""),
            ("1e3", "\"1e3\""),
            ("", "\"\""),
            ("x\ty", "\"x\\ty\""),
            ("\ta", "\"\\ta\""),
            ("{}", "'{}'"),
            ("a: b", "'a: b'"),
            ("#comment", "'#comment'"),
            (" lead", "' lead'"),
            ("- dash", "'- dash'"),
            ("'foo", "'''foo'"),
            ("foo:", "'foo:'"),
            ("-", "'-'"),
            ("---", "'---'"),
            ("...", "'...'"),
            ("yes", "'yes'"),
            ("1:20", "'1:20'"),
            ("<<", "'<<'"),
            ("café", "café"),
            (" \n ", "\" \\n \""),
            ("trail \nx", "\"trail \\nx\""),
            ("😀", "\"\\U0001F600\""),
            ("\u{feff}a b", "\"\\uFEFF\\x61\\x20\\x62\""),
        ] {
            assert_eq!(one(input), format!("k: {want}\n"), "input {input:?}");
        }
    }

    #[test]
    fn older_flavors_double_quote_yaml11_strings() {
        let f = |s: &str, fl| emit(&Out::Map(vec![(plain_out("k"), string_out(s, fl))]));
        assert_eq!(f("yes", Flavor::V4Rc4), "k: \"yes\"\n");
        assert_eq!(f("<<", Flavor::V4Rc4), "k: \"<<\"\n");
        assert_eq!(f("<<", Flavor::V3), "k: <<\n");
        assert_eq!(f("1:20", Flavor::V3), "k: \"1:20\"\n");
    }

    #[test]
    fn literal_blocks() {
        assert_eq!(one("a\nb\n"), "k: |\n    a\n    b\n");
        assert_eq!(one("a\nb"), "k: |-\n    a\n    b\n");
        assert_eq!(one(" a\nb"), "k: |4-\n     a\n    b\n");
        let seq = emit(&Out::Map(vec![(
            plain_out("k"),
            Out::Seq(vec![string_out("x\ny", Flavor::V4Rc6)]),
        )]));
        assert_eq!(seq, "k:\n    - |-\n      x\n      y\n");
    }

    #[test]
    fn resolver() {
        assert_eq!(resolve_plain("010"), Resolved::Int(8));
        assert_eq!(resolve_plain("0xa"), Resolved::Int(10));
        assert_eq!(resolve_plain("1_000"), Resolved::Int(1000));
        assert_eq!(resolve_plain("yes"), Resolved::Str);
        assert_eq!(resolve_plain("1e3"), Resolved::Float(1000.0));
        assert_eq!(resolve_plain("12e"), Resolved::Str);
        assert_eq!(
            resolve_plain("2024-01-01"),
            Resolved::Timestamp("2024-01-01T00:00:00Z".into())
        );
        assert_eq!(
            resolve_plain("18446744073709551615"),
            Resolved::Uint(u64::MAX)
        );
    }

    #[test]
    fn timestamps_like_go() {
        let ts = |s: &str| parse_timestamp(s);
        assert_eq!(ts("2024-1-2").as_deref(), Some("2024-01-02T00:00:00Z"));
        assert_eq!(
            ts("2001-12-14t21:59:43.10-05:00").as_deref(),
            Some("2001-12-14T21:59:43.1-05:00")
        );
        assert_eq!(
            ts("2001-12-14 21:59:43.10").as_deref(),
            Some("2001-12-14T21:59:43.1Z")
        );
        assert_eq!(
            ts("2001-12-14T21:59:43+00:00").as_deref(),
            Some("2001-12-14T21:59:43Z")
        );
        assert_eq!(ts("2024-02-30"), None);
        assert_eq!(ts("2023-02-29"), None);
        assert_eq!(ts("2024-02-29").as_deref(), Some("2024-02-29T00:00:00Z"));
        assert_eq!(ts("2001-12-14T21:59:43"), None, "the T layout needs a zone");
        assert_eq!(ts("12024-01-01"), None);
        assert_eq!(resolve_plain("-0"), Resolved::Float(-0.0));
        assert_eq!(resolve_plain("1e400"), Resolved::Str);
        assert_eq!(resolve_plain("08"), Resolved::Float(8.0));
        assert_eq!(resolve_plain("+.5"), Resolved::Float(0.5));
        assert_eq!(
            resolve_plain("+9223372036854775808"),
            Resolved::Float(9.223372036854776e18)
        );
    }

    #[test]
    fn go_floats() {
        assert_eq!(format_go_float(1.0), "1");
        assert_eq!(format_go_float(1.5), "1.5");
        assert_eq!(format_go_float(1e6), "1e+06");
        assert_eq!(format_go_float(123456.0), "123456");
        assert_eq!(format_go_float(1234567.0), "1.234567e+06");
        assert_eq!(format_go_float(0.0001), "0.0001");
        assert_eq!(format_go_float(0.00001), "1e-05");
        assert_eq!(format_go_float(1e21), "1e+21");
        assert_eq!(format_go_float(-2.5), "-2.5");
    }

    #[test]
    fn key_order_matches_spec_example() {
        // image-factory-and-talos.md §2.3
        let keys = "b B a10 a2 a01 a1 _x 1 10 2 z Z9 a-b a_b a.b ab";
        let mut v: Vec<Value> = keys.split(' ').map(|k| Value::String(k.into())).collect();
        v.sort_by(key_order);
        let got: Vec<String> = v
            .iter()
            .map(|k| match k {
                Value::String(s) => s.clone(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            got.join(" "),
            "_x 1 2 10 B Z9 a-b a.b a_b a1 a01 a2 a10 ab b z"
        );
    }

    #[test]
    fn parse_errors_have_lines() {
        let e = parse_documents("a: b\n c: d\n", None).unwrap_err();
        assert!(e.0.starts_with("yaml: line "), "{e}");
        let e = parse_documents("a: *x\n", None).unwrap_err();
        assert!(e.0.contains("unknown anchor 'x'"), "{e}");
    }

    #[test]
    fn depth_limit() {
        let deep = "[".repeat(MAX_DEPTH + 5);
        assert!(parse_documents(&deep, None).is_err());
    }
}
