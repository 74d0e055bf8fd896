//! Decoding of Terraform's JSON state form (UpgradeResourceState raw states,
//! MoveResourceState source states) into [`Dynamic`], guided by a type.

use std::collections::BTreeMap;

use serde_json::Value as J;

use super::{Dynamic, Number, Type, ValueError};

/// Decodes JSON bytes as a value of type `ty` (see [`dynamic_from_json`]).
pub fn dynamic_from_json_bytes(bytes: &[u8], ty: &Type) -> Result<Dynamic, ValueError> {
    if bytes.is_empty() {
        return Ok(Dynamic::Null);
    }
    let json: J =
        serde_json::from_slice(bytes).map_err(|e| ValueError::new(format!("invalid JSON: {e}")))?;
    dynamic_from_json(&json, ty)
}

/// Decodes a JSON value as a value of type `ty`.
///
/// Object attributes missing from the JSON become null and attributes the
/// type does not know are dropped: stored states routinely lag behind the
/// schema, and a removed attribute must not make the state unreadable.
/// Dynamic-typed values use cty's `{"value": ..., "type": ...}` wrapping.
pub fn dynamic_from_json(json: &J, ty: &Type) -> Result<Dynamic, ValueError> {
    if json.is_null() {
        return Ok(Dynamic::Null);
    }
    match ty {
        Type::Dynamic => {
            let (Some(v), Some(t)) = (json.get("value"), json.get("type")) else {
                return Err(ValueError::new(
                    "dynamic value must be an object with \"value\" and \"type\"",
                ));
            };
            let inner_ty = Type::from_json(t)?;
            let inner = dynamic_from_json(v, &inner_ty)?;
            Ok(Dynamic::Typed(Box::new(inner_ty), Box::new(inner)))
        }
        Type::Bool => match json {
            J::Bool(b) => Ok(Dynamic::Bool(*b)),
            J::String(s) if s == "true" || s == "false" => Ok(Dynamic::Bool(s == "true")),
            _ => Err(ValueError::new("bool required")),
        },
        Type::Number => match json {
            J::Number(n) => Ok(Dynamic::Number(if let Some(i) = n.as_i64() {
                Number::Int(i)
            } else if let Some(u) = n.as_u64() {
                Number::Uint(u)
            } else {
                Number::from_f64(n.as_f64().unwrap_or(f64::NAN))
            })),
            J::String(s) => Ok(Dynamic::Number(Number::parse(s)?)),
            _ => Err(ValueError::new("number required")),
        },
        Type::String => match json {
            J::String(s) => Ok(Dynamic::String(s.clone())),
            J::Number(n) => Ok(Dynamic::String(n.to_string())),
            J::Bool(b) => Ok(Dynamic::String(b.to_string())),
            _ => Err(ValueError::new("string required")),
        },
        Type::List(et) | Type::Set(et) => match json {
            J::Array(items) => Ok(Dynamic::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| dynamic_from_json(v, et).map_err(|e| e.within(&format!("[{i}]"))))
                    .collect::<Result<_, _>>()?,
            )),
            _ => Err(ValueError::new("list required")),
        },
        Type::Tuple(ets) => match json {
            J::Array(items) if items.len() == ets.len() => Ok(Dynamic::List(
                items
                    .iter()
                    .zip(ets)
                    .enumerate()
                    .map(|(i, (v, t))| {
                        dynamic_from_json(v, t).map_err(|e| e.within(&format!("[{i}]")))
                    })
                    .collect::<Result<_, _>>()?,
            )),
            _ => Err(ValueError::new(format!(
                "tuple of {} elements required",
                ets.len()
            ))),
        },
        Type::Map(et) => match json {
            J::Object(m) => {
                let mut out = BTreeMap::new();
                for (k, v) in m {
                    out.insert(
                        k.clone(),
                        dynamic_from_json(v, et).map_err(|e| e.within(&format!("[{k:?}]")))?,
                    );
                }
                Ok(Dynamic::Map(out))
            }
            _ => Err(ValueError::new("map required")),
        },
        Type::Object(attrs) => match json {
            J::Object(m) => {
                let mut out = BTreeMap::new();
                for (name, aty) in attrs {
                    let v = match m.get(name) {
                        Some(v) => {
                            dynamic_from_json(v, aty).map_err(|e| e.within(&format!(".{name}")))?
                        }
                        None => Dynamic::Null,
                    };
                    out.insert(name.clone(), v);
                }
                Ok(Dynamic::Map(out))
            }
            _ => Err(ValueError::new("object required")),
        },
    }
}
