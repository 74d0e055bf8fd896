//! The tri-state [`Value<T>`]: null, unknown, or a known `T`.

use std::fmt;

use serde::de::{Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};

use super::serde_bridge::UNKNOWN_MARKER;

/// A Terraform attribute value in a typed state struct: null, unknown (only
/// during validation and planning), or known.
///
/// Use it for every attribute of a state struct, since almost any attribute can
/// be null or unknown at some point of the lifecycle. Through
/// [`crate::value::to_dynamic`]/[`crate::value::from_dynamic`] the three cases
/// map exactly; through other serde formats (JSON private state) unknown is
/// written as null. Add `#[serde(default)]` on the struct to read JSON that
/// lacks some fields.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Value<T> {
    /// No value.
    #[default]
    Null,
    /// Known only after apply.
    Unknown,
    /// A known value.
    Known(T),
}

impl<T> Value<T> {
    /// True for [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    /// True for [`Value::Unknown`].
    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown)
    }
    /// True for [`Value::Known`].
    pub fn is_known(&self) -> bool {
        matches!(self, Value::Known(_))
    }
    /// The known value, by reference.
    pub fn as_option(&self) -> Option<&T> {
        match self {
            Value::Known(v) => Some(v),
            _ => None,
        }
    }
    /// The known value, by mutable reference.
    pub fn as_option_mut(&mut self) -> Option<&mut T> {
        match self {
            Value::Known(v) => Some(v),
            _ => None,
        }
    }
    /// The known value, consuming `self`.
    pub fn known(self) -> Option<T> {
        match self {
            Value::Known(v) => Some(v),
            _ => None,
        }
    }
    /// `Value<&T>` view.
    pub fn as_ref(&self) -> Value<&T> {
        match self {
            Value::Null => Value::Null,
            Value::Unknown => Value::Unknown,
            Value::Known(v) => Value::Known(v),
        }
    }
    /// Maps the known value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Value<U> {
        match self {
            Value::Null => Value::Null,
            Value::Unknown => Value::Unknown,
            Value::Known(v) => Value::Known(f(v)),
        }
    }
    /// The known value or `default` (for null and unknown).
    pub fn unwrap_or(self, default: T) -> T {
        self.known().unwrap_or(default)
    }
    /// The known value or `T::default()`.
    pub fn unwrap_or_default(self) -> T
    where
        T: Default,
    {
        self.known().unwrap_or_default()
    }
    /// Replaces null (not unknown) with `default`: for optional attributes with a default.
    pub fn or_default_value(self, default: T) -> Value<T> {
        match self {
            Value::Null => Value::Known(default),
            other => other,
        }
    }
}

impl Value<String> {
    /// The known string as `&str`.
    pub fn as_str(&self) -> Option<&str> {
        self.as_option().map(String::as_str)
    }
}

impl<T> From<T> for Value<T> {
    fn from(v: T) -> Self {
        Value::Known(v)
    }
}

impl From<&str> for Value<String> {
    fn from(v: &str) -> Self {
        Value::Known(v.to_string())
    }
}

impl<T> From<Option<T>> for Value<T> {
    fn from(v: Option<T>) -> Self {
        match v {
            Some(v) => Value::Known(v),
            None => Value::Null,
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Unknown => f.write_str("(unknown)"),
            Value::Known(v) => v.fmt(f),
        }
    }
}

impl<T: Serialize> Serialize for Value<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_none(),
            Value::Unknown => s.serialize_unit_struct(UNKNOWN_MARKER),
            Value::Known(v) => s.serialize_some(v),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Value<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Value<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value, null or unknown")
            }
            fn visit_none<E>(self) -> Result<Value<T>, E> {
                Ok(Value::Null)
            }
            // Only our own deserializer calls visit_unit here, for unknowns.
            fn visit_unit<E>(self) -> Result<Value<T>, E> {
                Ok(Value::Unknown)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value<T>, D::Error> {
                T::deserialize(d).map(Value::Known)
            }
        }
        d.deserialize_option(V(std::marker::PhantomData))
    }
}
