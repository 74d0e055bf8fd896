//! serde bridge between typed Rust structs and [`Dynamic`].
//!
//! Structs become objects, `Vec`/sets become lists, maps become maps, unit
//! variants become strings. [`super::Value`] maps Null/Unknown through the
//! hooks described in `typed.rs`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};

use super::{Dynamic, Number, ValueError};

/// The unit-struct name [`super::Value::Unknown`] serializes as; our
/// serializer turns it into an unknown, any other serializer sees a unit.
pub(crate) const UNKNOWN_MARKER: &str = "$tfplugin::Unknown";

/// The newtype name [`Dynamic`]'s `Deserialize` asks for, so our deserializer
/// can hand over unknowns that `deserialize_any` would reject.
const DYNAMIC_MARKER: &str = "$tfplugin::Dynamic";

impl ser::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ValueError::new(msg.to_string())
    }
}

impl de::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ValueError::new(msg.to_string())
    }
}

/// Converts any serializable value into a [`Dynamic`].
pub fn to_dynamic<T: Serialize + ?Sized>(value: &T) -> Result<Dynamic, ValueError> {
    value.serialize(DynSerializer)
}

/// Converts a [`Dynamic`] into a typed value.
///
/// Unknown values can only land in [`super::Value`] fields (or `Option`, where
/// they read as `None`); anywhere else they are an error naming the path.
pub fn from_dynamic<T: DeserializeOwned>(value: Dynamic) -> Result<T, ValueError> {
    T::deserialize(value)
}

struct DynSerializer;

struct SeqSer(Vec<Dynamic>);
struct MapSer {
    map: BTreeMap<String, Dynamic>,
    key: Option<String>,
}
struct VariantSer {
    name: &'static str,
    inner: SeqOrMap,
}
enum SeqOrMap {
    Seq(Vec<Dynamic>),
    Map(BTreeMap<String, Dynamic>),
}

impl ser::Serializer for DynSerializer {
    type Ok = Dynamic;
    type Error = ValueError;
    type SerializeSeq = SeqSer;
    type SerializeTuple = SeqSer;
    type SerializeTupleStruct = SeqSer;
    type SerializeTupleVariant = VariantSer;
    type SerializeMap = MapSer;
    type SerializeStruct = MapSer;
    type SerializeStructVariant = VariantSer;

    fn serialize_bool(self, v: bool) -> Result<Dynamic, ValueError> {
        Ok(Dynamic::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Dynamic, ValueError> {
        Ok(Dynamic::Number(Number::Int(v.into())))
    }
    fn serialize_i16(self, v: i16) -> Result<Dynamic, ValueError> {
        Ok(Dynamic::Number(Number::Int(v.into())))
    }
    fn serialize_i32(self, v: i32) -> Result<Dynamic, ValueError> {
        Ok(Dynamic::Number(Number::Int(v.into())))
    }
    fn serialize_i64(self, v: i64) -> Result<Dynamic, ValueError> {
        Ok(Dynamic::Number(Number::Int(v)))
    }
    fn serialize_u8(self, v: u8) -> Result<Dynamic, ValueError> {
        Ok(Dynamic::Number(Number::Int(v.into())))
    }
    fn serialize_u16(self, v: u16) -> Result<Dynamic, ValueError> {
        Ok(Dynamic::Number(Number::Int(v.into())))
    }
    fn serialize_u32(self, v: u32) -> Result<Dynamic, ValueError> {
        Ok(Dynamic::Number(Number::Int(v.into())))
    }
    fn serialize_u64(self, v: u64) -> Result<Dynamic, ValueError> {
        Ok(Dynamic::Number(
            i64::try_from(v).map(Number::Int).unwrap_or(Number::Uint(v)),
        ))
    }
    fn serialize_f32(self, v: f32) -> Result<Dynamic, ValueError> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<Dynamic, ValueError> {
        if v.is_nan() {
            return Err(ValueError::new("NaN is not a valid number"));
        }
        Ok(Dynamic::Number(Number::from_f64(v)))
    }
    fn serialize_char(self, v: char) -> Result<Dynamic, ValueError> {
        Ok(Dynamic::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Dynamic, ValueError> {
        Ok(Dynamic::String(v.to_string()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Dynamic, ValueError> {
        Ok(Dynamic::List(
            v.iter()
                .map(|b| Dynamic::Number(Number::Int((*b).into())))
                .collect(),
        ))
    }
    fn serialize_none(self) -> Result<Dynamic, ValueError> {
        Ok(Dynamic::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Dynamic, ValueError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Dynamic, ValueError> {
        Ok(Dynamic::Null)
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<Dynamic, ValueError> {
        if name == UNKNOWN_MARKER {
            Ok(Dynamic::UNKNOWN)
        } else {
            Ok(Dynamic::Null)
        }
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Dynamic, ValueError> {
        Ok(Dynamic::String(variant.to_string()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<Dynamic, ValueError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Dynamic, ValueError> {
        let mut m = BTreeMap::new();
        m.insert(variant.to_string(), v.serialize(DynSerializer)?);
        Ok(Dynamic::Map(m))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqSer, ValueError> {
        Ok(SeqSer(Vec::with_capacity(len.unwrap_or(0))))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqSer, ValueError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<SeqSer, ValueError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<VariantSer, ValueError> {
        Ok(VariantSer {
            name: variant,
            inner: SeqOrMap::Seq(Vec::new()),
        })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<MapSer, ValueError> {
        Ok(MapSer {
            map: BTreeMap::new(),
            key: None,
        })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<MapSer, ValueError> {
        self.serialize_map(None)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<VariantSer, ValueError> {
        Ok(VariantSer {
            name: variant,
            inner: SeqOrMap::Map(BTreeMap::new()),
        })
    }
}

impl ser::SerializeSeq for SeqSer {
    type Ok = Dynamic;
    type Error = ValueError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ValueError> {
        self.0.push(v.serialize(DynSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Dynamic, ValueError> {
        Ok(Dynamic::List(self.0))
    }
}
impl ser::SerializeTuple for SeqSer {
    type Ok = Dynamic;
    type Error = ValueError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ValueError> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Dynamic, ValueError> {
        ser::SerializeSeq::end(self)
    }
}
impl ser::SerializeTupleStruct for SeqSer {
    type Ok = Dynamic;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ValueError> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Dynamic, ValueError> {
        ser::SerializeSeq::end(self)
    }
}

fn key_string(d: Dynamic) -> Result<String, ValueError> {
    match d {
        Dynamic::String(s) => Ok(s),
        Dynamic::Number(n) => Ok(n.to_string()),
        Dynamic::Bool(b) => Ok(b.to_string()),
        _ => Err(ValueError::new("map keys must be strings")),
    }
}

impl ser::SerializeMap for MapSer {
    type Ok = Dynamic;
    type Error = ValueError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), ValueError> {
        self.key = Some(key_string(k.serialize(DynSerializer)?)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ValueError> {
        let k = self
            .key
            .take()
            .ok_or_else(|| ValueError::new("map value without key"))?;
        let v = v
            .serialize(DynSerializer)
            .map_err(|e| e.within(&format!("[{k:?}]")))?;
        self.map.insert(k, v);
        Ok(())
    }
    fn end(self) -> Result<Dynamic, ValueError> {
        Ok(Dynamic::Map(self.map))
    }
}
impl ser::SerializeStruct for MapSer {
    type Ok = Dynamic;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        k: &'static str,
        v: &T,
    ) -> Result<(), ValueError> {
        let v = v
            .serialize(DynSerializer)
            .map_err(|e| e.within(&format!(".{k}")))?;
        self.map.insert(k.to_string(), v);
        Ok(())
    }
    fn end(self) -> Result<Dynamic, ValueError> {
        Ok(Dynamic::Map(self.map))
    }
}
impl VariantSer {
    fn finish(self) -> Dynamic {
        let inner = match self.inner {
            SeqOrMap::Seq(v) => Dynamic::List(v),
            SeqOrMap::Map(m) => Dynamic::Map(m),
        };
        let mut m = BTreeMap::new();
        m.insert(self.name.to_string(), inner);
        Dynamic::Map(m)
    }
}
impl ser::SerializeTupleVariant for VariantSer {
    type Ok = Dynamic;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ValueError> {
        if let SeqOrMap::Seq(s) = &mut self.inner {
            s.push(v.serialize(DynSerializer)?);
        }
        Ok(())
    }
    fn end(self) -> Result<Dynamic, ValueError> {
        Ok(self.finish())
    }
}
impl ser::SerializeStructVariant for VariantSer {
    type Ok = Dynamic;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        k: &'static str,
        v: &T,
    ) -> Result<(), ValueError> {
        if let SeqOrMap::Map(m) = &mut self.inner {
            m.insert(k.to_string(), v.serialize(DynSerializer)?);
        }
        Ok(())
    }
    fn end(self) -> Result<Dynamic, ValueError> {
        Ok(self.finish())
    }
}

// ---- Deserializer -------------------------------------------------------

fn unknown_error() -> ValueError {
    ValueError::new("value is unknown here; declare the field as tfplugin::Value<T>")
}

impl<'de> de::Deserializer<'de> for Dynamic {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Dynamic::Null => visitor.visit_unit(),
            Dynamic::Unknown(_) => Err(unknown_error()),
            Dynamic::Bool(b) => visitor.visit_bool(b),
            Dynamic::Number(Number::Int(i)) => visitor.visit_i64(i),
            Dynamic::Number(Number::Uint(u)) => visitor.visit_u64(u),
            Dynamic::Number(Number::Float(f)) => visitor.visit_f64(f),
            Dynamic::Number(Number::Big(s)) => visitor.visit_string(s),
            Dynamic::String(s) => visitor.visit_string(s),
            Dynamic::List(items) => visitor.visit_seq(SeqAccess {
                iter: items.into_iter(),
                index: 0,
            }),
            Dynamic::Map(m) => visitor.visit_map(MapAccess {
                iter: m.into_iter(),
                pending: None,
            }),
            Dynamic::Typed(_, v) => v.deserialize_any(visitor),
        }
    }

    /// `Value<T>` deserializes through here: null → `visit_none`, unknown →
    /// `visit_unit` (plain `Option` reads that as `None` too), else `visit_some`.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Dynamic::Null => visitor.visit_none(),
            Dynamic::Unknown(_) => visitor.visit_unit(),
            Dynamic::Typed(_, v) => v.deserialize_option(visitor),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        if name == DYNAMIC_MARKER {
            match self {
                Dynamic::Unknown(_) => return visitor.visit_str(UNKNOWN_MARKER),
                Dynamic::Typed(_, v) => return v.deserialize_newtype_struct(name, visitor),
                other => return visitor.visit_newtype_struct(other),
            }
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self {
            Dynamic::String(s) => visitor.visit_enum(s.into_deserializer()),
            Dynamic::Map(m) if m.len() == 1 => {
                let (k, v) = m
                    .into_iter()
                    .next()
                    .ok_or_else(|| ValueError::new("empty enum"))?;
                visitor.visit_enum(EnumAccess {
                    variant: k,
                    value: v,
                })
            }
            Dynamic::Typed(_, v) => v.deserialize_enum("", &[], visitor),
            Dynamic::Unknown(_) => Err(unknown_error()),
            _ => Err(ValueError::new(
                "expected a string or single-key object for an enum",
            )),
        }
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            // Integral floats are normalised to Int already; accept numeric strings too.
            Dynamic::Number(Number::Big(s)) | Dynamic::String(s) => match s.parse::<i64>() {
                Ok(i) => visitor.visit_i64(i),
                Err(_) => Err(ValueError::new(format!(
                    "{s:?} is not a whole number in range"
                ))),
            },
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Dynamic::Number(n) => visitor.visit_f64(n.as_f64()),
            other => other.deserialize_any(visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i128 u8 u16 u32 u64 u128 f32 char str string
        bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

struct SeqAccess {
    iter: std::vec::IntoIter<Dynamic>,
    index: usize,
}

impl<'de> de::SeqAccess<'de> for SeqAccess {
    type Error = ValueError;
    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ValueError> {
        match self.iter.next() {
            Some(v) => {
                let i = self.index;
                self.index += 1;
                seed.deserialize(v)
                    .map(Some)
                    .map_err(|e| e.within(&format!("[{i}]")))
            }
            None => Ok(None),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct MapAccess {
    iter: std::collections::btree_map::IntoIter<String, Dynamic>,
    pending: Option<(String, Dynamic)>,
}

impl<'de> de::MapAccess<'de> for MapAccess {
    type Error = ValueError;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ValueError> {
        match self.iter.next() {
            Some((k, v)) => {
                let key = seed.deserialize(k.clone().into_deserializer())?;
                self.pending = Some((k, v));
                Ok(Some(key))
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ValueError> {
        let (k, v) = self
            .pending
            .take()
            .ok_or_else(|| ValueError::new("map value without key"))?;
        seed.deserialize(v).map_err(|e| e.within(&format!(".{k}")))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct EnumAccess {
    variant: String,
    value: Dynamic,
}

impl<'de> de::EnumAccess<'de> for EnumAccess {
    type Error = ValueError;
    type Variant = Dynamic;
    fn variant_seed<V: de::DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Dynamic), ValueError> {
        let v = seed.deserialize(self.variant.into_deserializer())?;
        Ok((v, self.value))
    }
}

impl<'de> de::VariantAccess<'de> for Dynamic {
    type Error = ValueError;
    fn unit_variant(self) -> Result<(), ValueError> {
        Ok(())
    }
    fn newtype_variant_seed<T: de::DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, ValueError> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, ValueError> {
        de::Deserializer::deserialize_any(self, visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        de::Deserializer::deserialize_any(self, visitor)
    }
}

impl<'de> IntoDeserializer<'de, ValueError> for Dynamic {
    type Deserializer = Dynamic;
    fn into_deserializer(self) -> Dynamic {
        self
    }
}

impl Serialize for Dynamic {
    fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use ser::{SerializeMap, SerializeSeq};
        match self {
            Dynamic::Null => s.serialize_none(),
            Dynamic::Unknown(_) => s.serialize_unit_struct(UNKNOWN_MARKER),
            Dynamic::Bool(b) => s.serialize_bool(*b),
            Dynamic::Number(n) => n.serialize(s),
            Dynamic::String(v) => s.serialize_str(v),
            Dynamic::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Dynamic::Map(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Dynamic::Typed(_, v) => v.serialize(s),
        }
    }
}

impl<'de> de::Deserialize<'de> for Dynamic {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Dynamic;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Dynamic, E> {
                Ok(Dynamic::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Dynamic, E> {
                Ok(Dynamic::Number(Number::Int(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Dynamic, E> {
                Ok(Dynamic::Number(
                    i64::try_from(v).map(Number::Int).unwrap_or(Number::Uint(v)),
                ))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Dynamic, E> {
                Ok(Dynamic::Number(Number::from_f64(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Dynamic, E> {
                if v == UNKNOWN_MARKER {
                    return Ok(Dynamic::UNKNOWN);
                }
                Ok(Dynamic::String(v.to_string()))
            }
            fn visit_newtype_struct<D: de::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Dynamic, D::Error> {
                d.deserialize_any(V)
            }
            fn visit_string<E>(self, v: String) -> Result<Dynamic, E> {
                Ok(Dynamic::String(v))
            }
            fn visit_none<E>(self) -> Result<Dynamic, E> {
                Ok(Dynamic::Null)
            }
            fn visit_unit<E>(self) -> Result<Dynamic, E> {
                Ok(Dynamic::Null)
            }
            fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Dynamic, D::Error> {
                <Dynamic as de::Deserialize>::deserialize(d)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Dynamic, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(Dynamic::List(v))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<Dynamic, A::Error> {
                let mut m = BTreeMap::new();
                while let Some((k, v)) = a.next_entry::<String, Dynamic>()? {
                    m.insert(k, v);
                }
                Ok(Dynamic::Map(m))
            }
        }
        // Through our own deserializer the marker name makes unknowns arrive
        // as the marker string (see deserialize_newtype_struct); any other
        // deserializer just sees a newtype around the value.
        d.deserialize_newtype_struct(DYNAMIC_MARKER, V)
    }
}
