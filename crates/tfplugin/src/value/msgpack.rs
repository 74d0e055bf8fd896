//! cty's MessagePack encoding, written against the format facts:
//! null is nil; an unknown is extension 0 (any extension with a body of at
//! most one byte) or extension 12 carrying a map of refinements; numbers are
//! int, float64 or a decimal string; the dynamic pseudo-type is a two-element
//! array `[type JSON as bytes, value]`; objects are maps keyed by attribute
//! name in sorted order; lists, sets and tuples are arrays.

use std::collections::BTreeMap;

use super::{Dynamic, Number, Refinements, Type, ValueError};

const EXT_UNKNOWN_REFINED: i8 = 12;

/// Encodes `value` as cty MessagePack of type `ty`.
///
/// Conversions cty itself would make are applied (number or bool to string,
/// numeric string to number); missing object attributes are sent as null.
pub fn encode(value: &Dynamic, ty: &Type) -> Result<Vec<u8>, ValueError> {
    let mut out = Vec::with_capacity(64);
    encode_into(&mut out, value, ty)?;
    Ok(out)
}

fn encode_into(out: &mut Vec<u8>, value: &Dynamic, ty: &Type) -> Result<(), ValueError> {
    if let Dynamic::Typed(inner_ty, inner) = value {
        if *ty == Type::Dynamic {
            if inner.is_unknown() || inner.is_null() {
                return encode_into(out, inner, ty);
            }
            return encode_dynamic(out, inner, inner_ty);
        }
        return encode_into(out, inner, ty);
    }
    match value {
        Dynamic::Null => {
            out.push(0xc0);
            return Ok(());
        }
        Dynamic::Unknown(refinements) => {
            match refinements {
                Some(r) if !r.is_empty() && *ty != Type::Dynamic => write_refined(out, r)?,
                _ => out.extend_from_slice(&[0xd4, 0, 0]),
            }
            return Ok(());
        }
        _ => {}
    }
    match ty {
        Type::Dynamic => {
            let implied = value.implied_type();
            encode_dynamic(out, value, &implied)
        }
        Type::Bool => match value {
            Dynamic::Bool(b) => {
                out.push(if *b { 0xc3 } else { 0xc2 });
                Ok(())
            }
            Dynamic::String(s) if s == "true" || s == "false" => {
                out.push(if s == "true" { 0xc3 } else { 0xc2 });
                Ok(())
            }
            other => Err(mismatch("bool", other)),
        },
        Type::Number => match value {
            Dynamic::Number(n) => {
                write_number(out, n);
                Ok(())
            }
            Dynamic::String(s) => {
                write_number(out, &Number::parse(s)?);
                Ok(())
            }
            other => Err(mismatch("number", other)),
        },
        Type::String => match value {
            Dynamic::String(s) => {
                write_str(out, s);
                Ok(())
            }
            Dynamic::Number(n) => {
                write_str(out, &n.to_string());
                Ok(())
            }
            Dynamic::Bool(b) => {
                write_str(out, if *b { "true" } else { "false" });
                Ok(())
            }
            other => Err(mismatch("string", other)),
        },
        Type::List(et) | Type::Set(et) => match value {
            Dynamic::List(items) => {
                write_array_len(out, items.len());
                for (i, item) in items.iter().enumerate() {
                    encode_into(out, item, et).map_err(|e| e.within(&format!("[{i}]")))?;
                }
                Ok(())
            }
            other => Err(mismatch("list", other)),
        },
        Type::Tuple(ets) => match value {
            Dynamic::List(items) if items.len() == ets.len() => {
                write_array_len(out, items.len());
                for (i, (item, et)) in items.iter().zip(ets).enumerate() {
                    encode_into(out, item, et).map_err(|e| e.within(&format!("[{i}]")))?;
                }
                Ok(())
            }
            other => Err(mismatch(&format!("tuple of {} elements", ets.len()), other)),
        },
        Type::Map(et) => match value {
            Dynamic::Map(m) => {
                write_map_len(out, m.len());
                for (k, v) in m {
                    write_str(out, k);
                    encode_into(out, v, et).map_err(|e| e.within(&format!("[{k:?}]")))?;
                }
                Ok(())
            }
            other => Err(mismatch("map", other)),
        },
        Type::Object(attrs) => match value {
            Dynamic::Map(m) => {
                if let Some(extra) = m.keys().find(|k| !attrs.contains_key(*k)) {
                    return Err(ValueError::new(format!("unsupported attribute {extra:?}")));
                }
                write_map_len(out, attrs.len());
                for (name, aty) in attrs {
                    write_str(out, name);
                    let v = m.get(name).unwrap_or(&Dynamic::Null);
                    encode_into(out, v, aty).map_err(|e| e.within(&format!(".{name}")))?;
                }
                Ok(())
            }
            other => Err(mismatch("object", other)),
        },
    }
}

fn encode_dynamic(out: &mut Vec<u8>, value: &Dynamic, ty: &Type) -> Result<(), ValueError> {
    write_array_len(out, 2);
    write_bin(out, &ty.to_json_bytes());
    encode_into(out, value, ty)
}

fn mismatch(want: &str, got: &Dynamic) -> ValueError {
    let got = match got {
        Dynamic::Null => "null",
        Dynamic::Unknown(_) => "unknown",
        Dynamic::Bool(_) => "bool",
        Dynamic::Number(_) => "number",
        Dynamic::String(_) => "string",
        Dynamic::List(_) => "list",
        Dynamic::Map(_) => "map",
        Dynamic::Typed(..) => "typed value",
    };
    ValueError::new(format!("{want} required, got {got}"))
}

fn write_refined(out: &mut Vec<u8>, r: &Refinements) -> Result<(), ValueError> {
    let mut body = Vec::new();
    let mut n = 0;
    if let Some(is_null) = r.is_null {
        n += 1;
        write_int(&mut body, 1);
        body.push(if is_null { 0xc3 } else { 0xc2 });
    }
    if let Some(p) = &r.string_prefix {
        n += 1;
        write_int(&mut body, 2);
        write_str(&mut body, p);
    }
    for (key, bound) in [(3, &r.number_lower), (4, &r.number_upper)] {
        if let Some((num, inclusive)) = bound {
            n += 1;
            write_int(&mut body, key);
            write_array_len(&mut body, 2);
            write_number(&mut body, num);
            body.push(if *inclusive { 0xc3 } else { 0xc2 });
        }
    }
    for (key, bound) in [(5, r.length_lower), (6, r.length_upper)] {
        if let Some(len) = bound {
            n += 1;
            write_int(&mut body, key);
            write_int(&mut body, len);
        }
    }
    let mut payload = Vec::with_capacity(body.len() + 1);
    write_map_len(&mut payload, n);
    payload.extend_from_slice(&body);
    let len = payload.len();
    if len <= u8::MAX as usize {
        out.extend_from_slice(&[0xc7, len as u8, EXT_UNKNOWN_REFINED as u8]);
    } else {
        return Err(ValueError::new("unknown value refinements too large"));
    }
    out.extend_from_slice(&payload);
    Ok(())
}

fn write_number(out: &mut Vec<u8>, n: &Number) {
    match n {
        Number::Int(i) => write_int(out, *i),
        Number::Uint(u) => {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
        Number::Float(f) => {
            out.push(0xcb);
            out.extend_from_slice(&f.to_be_bytes());
        }
        Number::Big(s) => write_str(out, s),
    }
}

fn write_int(out: &mut Vec<u8>, i: i64) {
    if (0..=0x7f).contains(&i) {
        out.push(i as u8);
    } else if (-32..0).contains(&i) {
        out.push(i as i8 as u8);
    } else if i >= 0 {
        if i <= u8::MAX as i64 {
            out.extend_from_slice(&[0xcc, i as u8]);
        } else if i <= u16::MAX as i64 {
            out.push(0xcd);
            out.extend_from_slice(&(i as u16).to_be_bytes());
        } else if i <= u32::MAX as i64 {
            out.push(0xce);
            out.extend_from_slice(&(i as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(i as u64).to_be_bytes());
        }
    } else if i >= i8::MIN as i64 {
        out.extend_from_slice(&[0xd0, i as i8 as u8]);
    } else if i >= i16::MIN as i64 {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= i32::MIN as i64 {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= u8::MAX as usize {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= u16::MAX as usize {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

fn write_bin(out: &mut Vec<u8>, b: &[u8]) {
    let len = b.len();
    if len <= u8::MAX as usize {
        out.extend_from_slice(&[0xc4, len as u8]);
    } else if len <= u16::MAX as usize {
        out.push(0xc5);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xc6);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(b);
}

fn write_array_len(out: &mut Vec<u8>, len: usize) {
    if len < 16 {
        out.push(0x90 | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(0xdc);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdd);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

fn write_map_len(out: &mut Vec<u8>, len: usize) {
    if len < 16 {
        out.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(0xde);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdf);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// Decodes cty MessagePack of type `ty`. Empty input decodes as null (the
/// protocol leaves absent values empty).
pub fn decode(bytes: &[u8], ty: &Type) -> Result<Dynamic, ValueError> {
    if bytes.is_empty() {
        return Ok(Dynamic::Null);
    }
    let mut r = Reader { buf: bytes, pos: 0 };
    let v = r.value(ty, 0)?;
    if r.pos != bytes.len() {
        return Err(ValueError::new("trailing bytes after value"));
    }
    Ok(v)
}

/// Nesting deeper than this is refused, so hostile input cannot overflow the stack.
const MAX_DEPTH: usize = 128;

/// One decoded MessagePack header.
enum Head {
    Nil,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(usize),
    Bin(usize),
    Array(usize),
    Map(usize),
    Ext(i8, usize),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ValueError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| ValueError::new("unexpected end of MessagePack data"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, ValueError> {
        Ok(self.take(1)?[0])
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], ValueError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn head(&mut self) -> Result<Head, ValueError> {
        let b = self.u8()?;
        Ok(match b {
            0x00..=0x7f => Head::Int(b as i64),
            0x80..=0x8f => Head::Map((b & 0x0f) as usize),
            0x90..=0x9f => Head::Array((b & 0x0f) as usize),
            0xa0..=0xbf => Head::Str((b & 0x1f) as usize),
            0xc0 => Head::Nil,
            0xc2 => Head::Bool(false),
            0xc3 => Head::Bool(true),
            0xc4 => Head::Bin(self.u8()? as usize),
            0xc5 => Head::Bin(u16::from_be_bytes(self.be()?) as usize),
            0xc6 => Head::Bin(u32::from_be_bytes(self.be()?) as usize),
            0xc7 => {
                let len = self.u8()? as usize;
                Head::Ext(self.u8()? as i8, len)
            }
            0xc8 => {
                let len = u16::from_be_bytes(self.be()?) as usize;
                Head::Ext(self.u8()? as i8, len)
            }
            0xc9 => {
                let len = u32::from_be_bytes(self.be()?) as usize;
                Head::Ext(self.u8()? as i8, len)
            }
            0xca => Head::Float(f32::from_be_bytes(self.be()?) as f64),
            0xcb => Head::Float(f64::from_be_bytes(self.be()?)),
            0xcc => Head::Int(self.u8()? as i64),
            0xcd => Head::Int(u16::from_be_bytes(self.be()?) as i64),
            0xce => Head::Int(u32::from_be_bytes(self.be()?) as i64),
            0xcf => {
                let u = u64::from_be_bytes(self.be()?);
                match i64::try_from(u) {
                    Ok(i) => Head::Int(i),
                    Err(_) => Head::Uint(u),
                }
            }
            0xd0 => Head::Int(self.u8()? as i8 as i64),
            0xd1 => Head::Int(i16::from_be_bytes(self.be()?) as i64),
            0xd2 => Head::Int(i32::from_be_bytes(self.be()?) as i64),
            0xd3 => Head::Int(i64::from_be_bytes(self.be()?)),
            0xd4 => Head::Ext(self.u8()? as i8, 1),
            0xd5 => Head::Ext(self.u8()? as i8, 2),
            0xd6 => Head::Ext(self.u8()? as i8, 4),
            0xd7 => Head::Ext(self.u8()? as i8, 8),
            0xd8 => Head::Ext(self.u8()? as i8, 16),
            0xd9 => Head::Str(self.u8()? as usize),
            0xda => Head::Str(u16::from_be_bytes(self.be()?) as usize),
            0xdb => Head::Str(u32::from_be_bytes(self.be()?) as usize),
            0xdc => Head::Array(u16::from_be_bytes(self.be()?) as usize),
            0xdd => Head::Array(u32::from_be_bytes(self.be()?) as usize),
            0xde => Head::Map(u16::from_be_bytes(self.be()?) as usize),
            0xdf => Head::Map(u32::from_be_bytes(self.be()?) as usize),
            0xe0..=0xff => Head::Int(b as i8 as i64),
            0xc1 => return Err(ValueError::new("invalid MessagePack marker 0xc1")),
        })
    }

    fn string(&mut self, len: usize) -> Result<String, ValueError> {
        let raw = self.take(len)?;
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| ValueError::new("string is not valid UTF-8"))
    }

    fn key(&mut self) -> Result<String, ValueError> {
        match self.head()? {
            Head::Str(n) => self.string(n),
            _ => Err(ValueError::new("map keys must be strings")),
        }
    }

    /// Guards element counts against the remaining input, so a forged length
    /// cannot make us allocate gigabytes.
    fn check_count(&self, n: usize) -> Result<(), ValueError> {
        if n > self.buf.len() - self.pos {
            return Err(ValueError::new("collection length exceeds input"));
        }
        Ok(())
    }

    fn value(&mut self, ty: &Type, depth: usize) -> Result<Dynamic, ValueError> {
        if depth > MAX_DEPTH {
            return Err(ValueError::new("value nested too deeply"));
        }
        let head = self.head()?;
        if let Head::Ext(code, len) = head {
            let body = self.take(len)?;
            if len <= 1 {
                return Ok(Dynamic::UNKNOWN);
            }
            if code != EXT_UNKNOWN_REFINED {
                return Err(ValueError::new(format!(
                    "unsupported extension type {code} with length {len}"
                )));
            }
            if *ty == Type::Dynamic {
                return Ok(Dynamic::UNKNOWN);
            }
            let r = parse_refinements(body)?;
            return Ok(Dynamic::Unknown(if r.is_empty() {
                None
            } else {
                Some(Box::new(r))
            }));
        }
        if let Head::Nil = head {
            return Ok(Dynamic::Null);
        }
        match ty {
            Type::Dynamic => {
                let Head::Array(2) = head else {
                    return Err(ValueError::new(
                        "dynamic value must be a [type, value] pair",
                    ));
                };
                let tj = match self.head()? {
                    Head::Bin(n) | Head::Str(n) => self.take(n)?,
                    _ => return Err(ValueError::new("dynamic value type must be bytes")),
                };
                let inner_ty = Type::from_json_bytes(tj)?;
                let v = self.value(&inner_ty, depth + 1)?;
                Ok(Dynamic::Typed(Box::new(inner_ty), Box::new(v)))
            }
            Type::Bool => match head {
                Head::Bool(b) => Ok(Dynamic::Bool(b)),
                _ => Err(ValueError::new("bool required")),
            },
            Type::Number => match head {
                Head::Int(i) => Ok(Dynamic::Number(Number::Int(i))),
                Head::Uint(u) => Ok(Dynamic::Number(Number::Uint(u))),
                Head::Float(f) => Ok(Dynamic::Number(Number::from_f64(f))),
                Head::Str(n) => Ok(Dynamic::Number(Number::parse(&self.string(n)?)?)),
                _ => Err(ValueError::new("number required")),
            },
            Type::String => match head {
                Head::Str(n) => Ok(Dynamic::String(self.string(n)?)),
                _ => Err(ValueError::new("string required")),
            },
            Type::List(et) | Type::Set(et) => {
                let Head::Array(n) = head else {
                    return Err(ValueError::new("list required"));
                };
                self.check_count(n)?;
                let mut items = Vec::with_capacity(n);
                for i in 0..n {
                    items.push(
                        self.value(et, depth + 1)
                            .map_err(|e| e.within(&format!("[{i}]")))?,
                    );
                }
                Ok(Dynamic::List(items))
            }
            Type::Tuple(ets) => {
                let Head::Array(n) = head else {
                    return Err(ValueError::new("tuple required"));
                };
                if n != ets.len() {
                    return Err(ValueError::new(format!(
                        "tuple of {} elements required, got {n}",
                        ets.len()
                    )));
                }
                let mut items = Vec::with_capacity(n);
                for (i, et) in ets.iter().enumerate() {
                    items.push(
                        self.value(et, depth + 1)
                            .map_err(|e| e.within(&format!("[{i}]")))?,
                    );
                }
                Ok(Dynamic::List(items))
            }
            Type::Map(et) => {
                let Head::Map(n) = head else {
                    return Err(ValueError::new("map required"));
                };
                self.check_count(n)?;
                let mut m = BTreeMap::new();
                for _ in 0..n {
                    let k = self.key()?;
                    let v = self
                        .value(et, depth + 1)
                        .map_err(|e| e.within(&format!("[{k:?}]")))?;
                    m.insert(k, v);
                }
                Ok(Dynamic::Map(m))
            }
            Type::Object(attrs) => {
                let Head::Map(n) = head else {
                    return Err(ValueError::new("object required"));
                };
                self.check_count(n)?;
                let mut m = BTreeMap::new();
                for _ in 0..n {
                    let k = self.key()?;
                    let Some(aty) = attrs.get(&k) else {
                        return Err(ValueError::new(format!("unsupported attribute {k:?}")));
                    };
                    let v = self
                        .value(aty, depth + 1)
                        .map_err(|e| e.within(&format!(".{k}")))?;
                    m.insert(k, v);
                }
                // Absent attributes are null, so every object has the full shape.
                for name in attrs.keys() {
                    if !m.contains_key(name) {
                        m.insert(name.clone(), Dynamic::Null);
                    }
                }
                Ok(Dynamic::Map(m))
            }
        }
    }
}

fn parse_refinements(body: &[u8]) -> Result<Refinements, ValueError> {
    if body.len() > 1024 {
        return Err(ValueError::new("oversize unknown value refinement"));
    }
    let mut r = Reader { buf: body, pos: 0 };
    let Head::Map(n) = r.head()? else {
        return Err(ValueError::new("unknown value refinements must be a map"));
    };
    let mut out = Refinements::default();
    for _ in 0..n {
        let key = match r.head()? {
            Head::Int(k) => k,
            _ => return Err(ValueError::new("refinement keys must be integers")),
        };
        match key {
            1 => match r.head()? {
                Head::Bool(b) => out.is_null = Some(b),
                _ => return Err(ValueError::new("null refinement must be a bool")),
            },
            2 => match r.head()? {
                Head::Str(n) => out.string_prefix = Some(r.string(n)?),
                _ => return Err(ValueError::new("string prefix refinement must be a string")),
            },
            3 | 4 => {
                let bound_ty = Type::Tuple(vec![Type::Number, Type::Bool]);
                let v = r.value(&bound_ty, 1)?;
                let bound = match v {
                    Dynamic::List(mut items) if items.len() == 2 => {
                        let inc = items.pop();
                        let num = items.pop();
                        match (num, inc) {
                            (Some(Dynamic::Number(n)), Some(Dynamic::Bool(b))) => (n, b),
                            _ => {
                                return Err(ValueError::new(
                                    "number bound refinement must be [number, bool]",
                                ))
                            }
                        }
                    }
                    _ => {
                        return Err(ValueError::new(
                            "number bound refinement must be [number, bool]",
                        ))
                    }
                };
                if key == 3 {
                    out.number_lower = Some(bound);
                } else {
                    out.number_upper = Some(bound);
                }
            }
            5 | 6 => {
                let len = match r.head()? {
                    Head::Int(i) => i,
                    _ => return Err(ValueError::new("length refinement must be an integer")),
                };
                if key == 5 {
                    out.length_lower = Some(len);
                } else {
                    out.length_upper = Some(len);
                }
            }
            // Unknown keys are skipped for forward compatibility, as cty does.
            _ => skip(&mut r, 0)?,
        }
    }
    Ok(out)
}

fn skip(r: &mut Reader<'_>, depth: usize) -> Result<(), ValueError> {
    if depth > MAX_DEPTH {
        return Err(ValueError::new("value nested too deeply"));
    }
    match r.head()? {
        Head::Str(n) | Head::Bin(n) | Head::Ext(_, n) => {
            r.take(n)?;
        }
        Head::Array(n) => {
            for _ in 0..n {
                skip(r, depth + 1)?;
            }
        }
        Head::Map(n) => {
            for _ in 0..n * 2 {
                skip(r, depth + 1)?;
            }
        }
        _ => {}
    }
    Ok(())
}
