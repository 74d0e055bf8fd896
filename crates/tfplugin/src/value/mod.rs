//! cty values: the dynamic [`Dynamic`] tree, its [`Type`], the MessagePack and
//! JSON codecs, the serde bridge to typed structs and the tri-state [`Value`].

mod json;
mod msgpack;
mod serde_bridge;
mod typed;

use std::collections::BTreeMap;
use std::fmt;

pub use json::{dynamic_from_json, dynamic_from_json_bytes};
pub use msgpack::{decode, encode};
pub use serde_bridge::{from_dynamic, to_dynamic};
pub use typed::Value;

/// Errors of the value codecs and the serde bridge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}{message}")]
pub struct ValueError {
    /// Where in the value the problem is, as `.a[0]["k"]: ` (empty at the root).
    pub path: String,
    /// What went wrong.
    pub message: String,
}

impl ValueError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        ValueError {
            path: String::new(),
            message: message.into(),
        }
    }

    /// Prefixes the error with one more path step (called while unwinding).
    pub(crate) fn within(mut self, step: &str) -> Self {
        if self.path.is_empty() {
            self.path = format!("{step}: ");
        } else {
            self.path = format!("{step}{}", self.path);
        }
        self
    }
}

/// A cty type: what Terraform uses to describe attribute and function types.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Type {
    /// `bool`
    Bool,
    /// `number` (arbitrary precision in cty; see [`Number`])
    Number,
    /// `string`
    String,
    /// The dynamic pseudo-type: any type, carried with the value on the wire.
    Dynamic,
    /// `list(T)`
    List(Box<Type>),
    /// `set(T)`
    Set(Box<Type>),
    /// `map(T)`
    Map(Box<Type>),
    /// `object({...})`; attributes sorted by name.
    Object(BTreeMap<String, Type>),
    /// `tuple([...])`
    Tuple(Vec<Type>),
}

impl Type {
    /// `list(element)`
    pub fn list(element: Type) -> Type {
        Type::List(Box::new(element))
    }
    /// `set(element)`
    pub fn set(element: Type) -> Type {
        Type::Set(Box::new(element))
    }
    /// `map(element)`
    pub fn map(element: Type) -> Type {
        Type::Map(Box::new(element))
    }
    /// `object({name = type, ...})`
    pub fn object<I, S>(attributes: I) -> Type
    where
        I: IntoIterator<Item = (S, Type)>,
        S: Into<String>,
    {
        Type::Object(attributes.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The cty JSON form of the type, as used in schemas and dynamic values.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Type::Bool => J::from("bool"),
            Type::Number => J::from("number"),
            Type::String => J::from("string"),
            Type::Dynamic => J::from("dynamic"),
            Type::List(e) => J::Array(vec!["list".into(), e.to_json()]),
            Type::Set(e) => J::Array(vec!["set".into(), e.to_json()]),
            Type::Map(e) => J::Array(vec!["map".into(), e.to_json()]),
            Type::Object(a) => J::Array(vec![
                "object".into(),
                J::Object(a.iter().map(|(k, t)| (k.clone(), t.to_json())).collect()),
            ]),
            Type::Tuple(ts) => J::Array(vec![
                "tuple".into(),
                J::Array(ts.iter().map(Type::to_json).collect()),
            ]),
        }
    }

    /// The cty JSON form as bytes (what the protocol's `bytes type` fields hold).
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // Serializing a serde_json::Value cannot fail.
        serde_json::to_vec(&self.to_json()).unwrap_or_default()
    }

    /// Parses the cty JSON form of a type. Optional-attribute markers of
    /// object type constraints are accepted and ignored.
    pub fn from_json(json: &serde_json::Value) -> Result<Type, ValueError> {
        use serde_json::Value as J;
        match json {
            J::String(s) => match s.as_str() {
                "bool" => Ok(Type::Bool),
                "number" => Ok(Type::Number),
                "string" => Ok(Type::String),
                "dynamic" => Ok(Type::Dynamic),
                other => Err(ValueError::new(format!("unknown primitive type {other:?}"))),
            },
            J::Array(items) if items.len() >= 2 => {
                let kind = items[0].as_str().unwrap_or_default();
                match kind {
                    "list" => Ok(Type::list(Type::from_json(&items[1])?)),
                    "set" => Ok(Type::set(Type::from_json(&items[1])?)),
                    "map" => Ok(Type::map(Type::from_json(&items[1])?)),
                    "object" => {
                        let J::Object(attrs) = &items[1] else {
                            return Err(ValueError::new("object type needs an attribute map"));
                        };
                        let mut out = BTreeMap::new();
                        for (k, v) in attrs {
                            out.insert(k.clone(), Type::from_json(v)?);
                        }
                        Ok(Type::Object(out))
                    }
                    "tuple" => {
                        let J::Array(elems) = &items[1] else {
                            return Err(ValueError::new("tuple type needs an element list"));
                        };
                        Ok(Type::Tuple(
                            elems
                                .iter()
                                .map(Type::from_json)
                                .collect::<Result<_, _>>()?,
                        ))
                    }
                    other => Err(ValueError::new(format!("unknown type kind {other:?}"))),
                }
            }
            other => Err(ValueError::new(format!("invalid type JSON {other}"))),
        }
    }

    /// Parses type JSON from bytes.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Type, ValueError> {
        let json: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| ValueError::new(format!("invalid type JSON: {e}")))?;
        Type::from_json(&json)
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

/// A cty number. cty numbers are arbitrary-precision decimals; on the wire
/// they are an integer, a float64, or a decimal string when neither is exact.
#[derive(Debug, Clone, PartialEq)]
pub enum Number {
    /// Fits in i64 exactly.
    Int(i64),
    /// Fits in u64 but not i64.
    Uint(u64),
    /// A non-integral (or infinite) value exact in f64.
    Float(f64),
    /// Any other decimal, kept as its text so no precision is lost.
    Big(String),
}

impl Number {
    /// Normalises a float: integral values in i64 range become [`Number::Int`],
    /// matching cty's encoder, so equal numbers compare equal.
    pub fn from_f64(f: f64) -> Number {
        // 2^63 as f64 is exact; the i64 range is [-2^63, 2^63).
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        if f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f) {
            Number::Int(f as i64)
        } else {
            Number::Float(f)
        }
    }

    /// Parses a decimal string (as cty sends numbers that do not fit int64/float64).
    pub fn parse(s: &str) -> Result<Number, ValueError> {
        let t = s.trim();
        if let Ok(i) = t.parse::<i64>() {
            return Ok(Number::Int(i));
        }
        if let Ok(u) = t.parse::<u64>() {
            return Ok(Number::Uint(u));
        }
        if !is_decimal(t) {
            return Err(ValueError::new(format!("{s:?} is not a number")));
        }
        // Keep the text unless it round-trips exactly through f64.
        match t.parse::<f64>() {
            Ok(f) if f.is_finite() && format_f64(f) == t => Ok(Number::from_f64(f)),
            _ => Ok(Number::Big(t.to_string())),
        }
    }

    /// The value as i64 when it is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Number::Int(i) => Some(*i),
            Number::Uint(u) => i64::try_from(*u).ok(),
            _ => None,
        }
    }

    /// The value as f64 (lossy for big numbers).
    pub fn as_f64(&self) -> f64 {
        match self {
            Number::Int(i) => *i as f64,
            Number::Uint(u) => *u as f64,
            Number::Float(f) => *f,
            Number::Big(s) => s.parse().unwrap_or(f64::NAN),
        }
    }
}

fn format_f64(f: f64) -> String {
    format!("{f}")
}

fn is_decimal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let fs = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - fs;
    }
    if digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let es = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == es {
            return false;
        }
    }
    i == b.len()
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Int(i) => write!(f, "{i}"),
            Number::Uint(u) => write!(f, "{u}"),
            Number::Float(x) => write!(f, "{x}"),
            Number::Big(s) => f.write_str(s),
        }
    }
}

impl From<i64> for Number {
    fn from(v: i64) -> Self {
        Number::Int(v)
    }
}

impl From<f64> for Number {
    fn from(v: f64) -> Self {
        Number::from_f64(v)
    }
}

impl serde::Serialize for Number {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Number::Int(i) => s.serialize_i64(*i),
            Number::Uint(u) => s.serialize_u64(*u),
            Number::Float(f) => s.serialize_f64(*f),
            // A string in a number-typed slot is converted back by the encoder.
            Number::Big(t) => s.serialize_str(t),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Number, E> {
                Ok(Number::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Number, E> {
                Ok(i64::try_from(v).map(Number::Int).unwrap_or(Number::Uint(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Number, E> {
                Ok(Number::from_f64(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Number, E> {
                Number::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// What Terraform knows about an unknown value ("refined unknowns", cty ≥1.13).
/// Each refinement is optional; an empty set encodes as a plain unknown.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Refinements {
    /// `Some(false)`: definitely not null. (Wire key 1.)
    pub is_null: Option<bool>,
    /// Known prefix of an unknown string. (Wire key 2.)
    pub string_prefix: Option<String>,
    /// Lower bound of an unknown number and whether it is inclusive. (Key 3.)
    pub number_lower: Option<(Number, bool)>,
    /// Upper bound of an unknown number and whether it is inclusive. (Key 4.)
    pub number_upper: Option<(Number, bool)>,
    /// Minimum length of an unknown collection. (Key 5.)
    pub length_lower: Option<i64>,
    /// Maximum length of an unknown collection. (Key 6.)
    pub length_upper: Option<i64>,
}

impl Refinements {
    /// True when no refinement is set.
    pub fn is_empty(&self) -> bool {
        *self == Refinements::default()
    }
}

/// A dynamically typed cty value, the in-memory form of everything on the wire.
///
/// Lists, sets and tuples are all [`Dynamic::List`]; maps and objects are both
/// [`Dynamic::Map`]: the schema type decides their wire form, as in JSON.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Dynamic {
    /// A null value.
    #[default]
    Null,
    /// A value not known until apply, with optional refinements.
    Unknown(Option<Box<Refinements>>),
    /// A boolean.
    Bool(bool),
    /// A number.
    Number(Number),
    /// A string.
    String(String),
    /// A list, set or tuple.
    List(Vec<Dynamic>),
    /// A map or object.
    Map(BTreeMap<String, Dynamic>),
    /// A value of the dynamic pseudo-type together with its concrete type, as
    /// decoded from the `[type, value]` wire pair.
    Typed(Box<Type>, Box<Dynamic>),
}

impl Dynamic {
    /// A plain unknown (no refinements).
    pub const UNKNOWN: Dynamic = Dynamic::Unknown(None);

    /// True for [`Dynamic::Null`] (also under [`Dynamic::Typed`]).
    pub fn is_null(&self) -> bool {
        match self {
            Dynamic::Null => true,
            Dynamic::Typed(_, v) => v.is_null(),
            _ => false,
        }
    }

    /// True for an unknown value (also under [`Dynamic::Typed`]).
    pub fn is_unknown(&self) -> bool {
        match self {
            Dynamic::Unknown(_) => true,
            Dynamic::Typed(_, v) => v.is_unknown(),
            _ => false,
        }
    }

    /// True when no unknown appears anywhere inside.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Dynamic::Unknown(_) => false,
            Dynamic::List(v) => v.iter().all(Dynamic::is_wholly_known),
            Dynamic::Map(m) => m.values().all(Dynamic::is_wholly_known),
            Dynamic::Typed(_, v) => v.is_wholly_known(),
            _ => true,
        }
    }

    /// Object attribute or map element by name.
    pub fn get(&self, key: &str) -> Option<&Dynamic> {
        match self {
            Dynamic::Map(m) => m.get(key),
            Dynamic::Typed(_, v) => v.get(key),
            _ => None,
        }
    }

    /// The string, if this is a known string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Dynamic::String(s) => Some(s),
            Dynamic::Typed(_, v) => v.as_str(),
            _ => None,
        }
    }

    /// An object value from `(name, value)` pairs.
    pub fn object<I, S>(attributes: I) -> Dynamic
    where
        I: IntoIterator<Item = (S, Dynamic)>,
        S: Into<String>,
    {
        Dynamic::Map(attributes.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The type cty would infer for this value when it has to be sent as the
    /// dynamic pseudo-type: lists become tuples and maps become objects.
    pub fn implied_type(&self) -> Type {
        match self {
            Dynamic::Null | Dynamic::Unknown(_) => Type::Dynamic,
            Dynamic::Bool(_) => Type::Bool,
            Dynamic::Number(_) => Type::Number,
            Dynamic::String(_) => Type::String,
            Dynamic::List(v) => Type::Tuple(v.iter().map(Dynamic::implied_type).collect()),
            Dynamic::Map(m) => Type::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), v.implied_type()))
                    .collect(),
            ),
            Dynamic::Typed(t, _) => (**t).clone(),
        }
    }
}

impl From<&str> for Dynamic {
    fn from(v: &str) -> Self {
        Dynamic::String(v.to_string())
    }
}
impl From<String> for Dynamic {
    fn from(v: String) -> Self {
        Dynamic::String(v)
    }
}
impl From<bool> for Dynamic {
    fn from(v: bool) -> Self {
        Dynamic::Bool(v)
    }
}
impl From<i64> for Dynamic {
    fn from(v: i64) -> Self {
        Dynamic::Number(Number::Int(v))
    }
}
impl From<f64> for Dynamic {
    fn from(v: f64) -> Self {
        Dynamic::Number(Number::from_f64(v))
    }
}
impl From<Number> for Dynamic {
    fn from(v: Number) -> Self {
        Dynamic::Number(v)
    }
}
impl<T: Into<Dynamic>> From<Option<T>> for Dynamic {
    fn from(v: Option<T>) -> Self {
        v.map(Into::into).unwrap_or(Dynamic::Null)
    }
}
