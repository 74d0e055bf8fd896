//! cty MessagePack / JSON codec and serde bridge tests: fixed byte vectors
//! from the format facts, plus property tests over every type.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use tfplugin::value::{
    self, decode, dynamic_from_json, encode, from_dynamic, to_dynamic, Refinements,
};
use tfplugin::{Dynamic, Number, Type, Value};

fn obj(pairs: &[(&str, Type)]) -> Type {
    Type::object(pairs.iter().map(|(k, t)| (k.to_string(), t.clone())))
}

#[test]
fn null_and_unknown_bytes() {
    assert_eq!(encode(&Dynamic::Null, &Type::String).unwrap(), vec![0xc0]);
    // cty's compact "wholly unknown": fixext1, type 0, one zero byte.
    assert_eq!(
        encode(&Dynamic::UNKNOWN, &Type::String).unwrap(),
        vec![0xd4, 0, 0]
    );
    for code in [0u8, 5, 12] {
        assert_eq!(
            decode(&[0xd4, code, 0], &Type::Number).unwrap(),
            Dynamic::UNKNOWN
        );
    }
    // Zero-length ext8 is also a plain unknown.
    assert_eq!(
        decode(&[0xc7, 0, 0], &Type::Bool).unwrap(),
        Dynamic::UNKNOWN
    );
    // Empty input (absent DynamicValue) is null.
    assert_eq!(decode(&[], &Type::String).unwrap(), Dynamic::Null);
}

#[test]
fn refined_unknown_exact_bytes() {
    // Not-null string with prefix "abc": ext 12 { 1: false, 2: "abc" }.
    let bytes = [
        0xc7, 0x08, 0x0c, 0x82, 0x01, 0xc2, 0x02, 0xa3, b'a', b'b', b'c',
    ];
    let v = decode(&bytes, &Type::String).unwrap();
    let want = Dynamic::Unknown(Some(Box::new(Refinements {
        is_null: Some(false),
        string_prefix: Some("abc".into()),
        ..Default::default()
    })));
    assert_eq!(v, want);
    assert_eq!(encode(&want, &Type::String).unwrap(), bytes.to_vec());
    // Number bounds are [number, bool] pairs; unknown keys are skipped.
    let bytes = [
        0xc7, 0x0b, 0x0c, 0x83, 0x03, 0x92, 0x01, 0xc3, 0x04, 0x92, 0x0a, 0xc2, 0x09, 0xc0,
    ];
    let v = decode(&bytes[..bytes.len() - 2], &Type::Number);
    assert!(v.is_err(), "truncated refinement map must fail");
    let bytes = [
        0xc7, 0x0b, 0x0c, 0x83, 0x03, 0x92, 0x01, 0xc3, 0x04, 0x92, 0x0a, 0xc2, 0x63, 0xc0,
    ];
    let v = decode(&bytes, &Type::Number).unwrap();
    let Dynamic::Unknown(Some(r)) = v else {
        panic!("expected refined unknown")
    };
    assert_eq!(r.number_lower, Some((Number::Int(1), true)));
    assert_eq!(r.number_upper, Some((Number::Int(10), false)));
    // Under the dynamic pseudo-type refinements are dropped, as cty does.
    let v = decode(&[0xc7, 0x03, 0x0c, 0x81, 0x01, 0xc2], &Type::Dynamic).unwrap();
    assert_eq!(v, Dynamic::UNKNOWN);
    assert_eq!(
        encode(&Dynamic::Unknown(Some(r)), &Type::Dynamic).unwrap(),
        vec![0xd4, 0, 0]
    );
    // Non-refinement extension types with a body are rejected.
    assert!(decode(&[0xd5, 0x05, 1, 2], &Type::String).is_err());
}

#[test]
fn numbers_use_the_narrowest_exact_form() {
    let cases: Vec<(Dynamic, Vec<u8>)> = vec![
        (Dynamic::from(5), vec![0x05]),
        (Dynamic::from(-3), vec![0xfd]),
        (Dynamic::from(200), vec![0xcc, 200]),
        (Dynamic::from(-200), vec![0xd1, 0xff, 0x38]),
        (Dynamic::from(70000), vec![0xce, 0, 1, 0x11, 0x70]),
        (Dynamic::from(1.0), vec![0x01]),
        (Dynamic::from(0.5), vec![0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0]),
        (
            Dynamic::Number(Number::Uint(u64::MAX)),
            vec![0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
    ];
    for (v, bytes) in cases {
        assert_eq!(encode(&v, &Type::Number).unwrap(), bytes, "{v:?}");
        assert_eq!(decode(&bytes, &Type::Number).unwrap(), v);
    }
    // Too big or too precise for int64/float64: a decimal string, kept exactly.
    let big = "123456789012345678901234567890.000000000000000000001";
    let n = Number::parse(big).unwrap();
    assert_eq!(n, Number::Big(big.into()));
    let bytes = encode(&Dynamic::Number(n.clone()), &Type::Number).unwrap();
    assert_eq!(bytes[0], 0xd9);
    assert_eq!(decode(&bytes, &Type::Number).unwrap(), Dynamic::Number(n));
    // A numeric string in a number slot (cty conversion) and the reverse.
    assert_eq!(encode(&"42".into(), &Type::Number).unwrap(), vec![42]);
    assert_eq!(
        encode(&Dynamic::from(42), &Type::String).unwrap(),
        vec![0xa2, b'4', b'2']
    );
    assert!(encode(&"forty".into(), &Type::Number).is_err());
    assert!(Number::parse("1e").is_err());
    assert!(Number::parse("--1").is_err());
    // Infinity is a float64.
    let inf = Dynamic::Number(Number::Float(f64::INFINITY));
    assert_eq!(
        decode(&encode(&inf, &Type::Number).unwrap(), &Type::Number).unwrap(),
        inf
    );
}

#[test]
fn objects_are_sorted_and_complete() {
    let ty = obj(&[("b", Type::String), ("a", Type::Number), ("c", Type::Bool)]);
    let v = Dynamic::object([("b", Dynamic::from("x")), ("a", Dynamic::from(1))]);
    let bytes = encode(&v, &ty).unwrap();
    // map of 3: "a" 1, "b" "x", "c" nil
    assert_eq!(
        bytes,
        vec![0x83, 0xa1, b'a', 0x01, 0xa1, b'b', 0xa1, b'x', 0xa1, b'c', 0xc0]
    );
    let back = decode(&bytes, &ty).unwrap();
    assert_eq!(back.get("c"), Some(&Dynamic::Null));
    // Unknown attributes are refused both ways.
    let extra = Dynamic::object([("zzz", Dynamic::from(1))]);
    assert!(encode(&extra, &ty).unwrap_err().to_string().contains("zzz"));
    assert!(decode(&[0x81, 0xa1, b'z', 0x01], &ty).is_err());
}

#[test]
fn dynamic_values_carry_their_type() {
    let inner = Type::list(Type::String);
    let v = Dynamic::Typed(
        Box::new(inner.clone()),
        Box::new(Dynamic::List(vec!["a".into()])),
    );
    let bytes = encode(&v, &Type::Dynamic).unwrap();
    let tj = br#"["list","string"]"#;
    let mut want = vec![0x92, 0xc4, tj.len() as u8];
    want.extend_from_slice(tj);
    want.extend_from_slice(&[0x91, 0xa1, b'a']);
    assert_eq!(bytes, want);
    assert_eq!(decode(&bytes, &Type::Dynamic).unwrap(), v);
    // A plain value under the dynamic type gets its implied type.
    let bytes = encode(
        &Dynamic::List(vec![Dynamic::from(1), "x".into()]),
        &Type::Dynamic,
    )
    .unwrap();
    let back = decode(&bytes, &Type::Dynamic).unwrap();
    let Dynamic::Typed(t, _) = back else { panic!() };
    assert_eq!(*t, Type::Tuple(vec![Type::Number, Type::String]));
    // The type JSON may also arrive as a str.
    let mut as_str = vec![0x92, 0xa8];
    as_str.extend_from_slice(br#""string""#);
    as_str.extend_from_slice(&[0xa1, b'q']);
    assert_eq!(decode(&as_str, &Type::Dynamic).unwrap().as_str(), Some("q"));
}

#[test]
fn type_json_round_trips() {
    let t = Type::object([
        ("a".to_string(), Type::set(Type::map(Type::Bool))),
        (
            "b".to_string(),
            Type::Tuple(vec![Type::Dynamic, Type::Number]),
        ),
    ]);
    assert_eq!(Type::from_json_bytes(&t.to_json_bytes()).unwrap(), t);
    // Optional-attribute markers of type constraints are accepted.
    let j = serde_json::json!(["object", {"a": "string"}, ["a"]]);
    assert_eq!(Type::from_json(&j).unwrap(), obj(&[("a", Type::String)]));
    assert!(Type::from_json(&serde_json::json!("strin")).is_err());
}

#[test]
fn json_state_decoding_is_lenient_about_attributes() {
    let ty = obj(&[
        ("a", Type::Number),
        ("d", Type::Dynamic),
        ("m", Type::map(Type::String)),
    ]);
    let j = serde_json::json!({
        "a": 12345678901234i64,
        "removed_attr": true,
        "d": {"value": ["x", 1], "type": ["tuple", ["string", "number"]]},
    });
    let v = dynamic_from_json(&j, &ty).unwrap();
    assert_eq!(v.get("a"), Some(&Dynamic::from(12345678901234)));
    assert_eq!(v.get("m"), Some(&Dynamic::Null));
    assert_eq!(v.get("removed_attr"), None);
    let Some(Dynamic::Typed(t, inner)) = v.get("d") else {
        panic!()
    };
    assert_eq!(**t, Type::Tuple(vec![Type::String, Type::Number]));
    assert_eq!(**inner, Dynamic::List(vec!["x".into(), Dynamic::from(1)]));
    // And the result encodes with the same type.
    encode(&v, &ty).unwrap();
    assert!(value::dynamic_from_json_bytes(b"{", &ty).is_err());
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Inner {
    port: Value<i64>,
    proto: Value<String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct State {
    id: Value<String>,
    size: Value<f64>,
    big: Value<Number>,
    tags: Value<BTreeMap<String, String>>,
    rules: Value<Vec<Inner>>,
    single: Value<Inner>,
    any: Value<Dynamic>,
    opt: Option<String>,
}

fn state_type() -> Type {
    let inner = obj(&[("port", Type::Number), ("proto", Type::String)]);
    obj(&[
        ("id", Type::String),
        ("size", Type::Number),
        ("big", Type::Number),
        ("tags", Type::map(Type::String)),
        ("rules", Type::list(inner.clone())),
        ("single", inner),
        ("any", Type::Dynamic),
        ("opt", Type::String),
    ])
}

#[test]
fn typed_structs_round_trip_with_null_and_unknown() {
    let s = State {
        id: Value::Unknown,
        size: Value::Known(2.5),
        big: Value::Known(Number::parse("98765432109876543210987654321").unwrap()),
        tags: Value::Known(BTreeMap::from([("k".to_string(), "v".to_string())])),
        rules: Value::Known(vec![Inner {
            port: 80.into(),
            proto: Value::Unknown,
        }]),
        single: Value::Null,
        any: Value::Known(Dynamic::List(vec![Dynamic::UNKNOWN, true.into()])),
        opt: None,
    };
    let ty = state_type();
    let d = to_dynamic(&s).unwrap();
    let bytes = encode(&d, &ty).unwrap();
    let back: State = from_dynamic(decode(&bytes, &ty).unwrap()).unwrap();
    assert_eq!(back, s);
}

#[test]
fn unknown_in_a_plain_field_is_a_clear_error() {
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Plain {
        name: String,
    }
    let err = from_dynamic::<Plain>(Dynamic::object([("name", Dynamic::UNKNOWN)])).unwrap_err();
    assert!(err.to_string().contains(".name"), "{err}");
    assert!(err.to_string().contains("Value<T>"), "{err}");
    // Option reads an unknown as None rather than failing.
    #[derive(Deserialize, Debug)]
    struct Opt {
        name: Option<String>,
    }
    let o: Opt = from_dynamic(Dynamic::object([("name", Dynamic::UNKNOWN)])).unwrap();
    assert_eq!(o.name, None);
}

#[test]
fn value_through_json_writes_unknown_as_null() {
    let v: Vec<Value<i64>> = vec![Value::Null, Value::Unknown, Value::Known(3)];
    let j = serde_json::to_string(&v).unwrap();
    assert_eq!(j, "[null,null,3]");
    let back: Vec<Value<i64>> = serde_json::from_str(&j).unwrap();
    assert_eq!(back, vec![Value::Null, Value::Null, Value::Known(3)]);
}

#[test]
fn hostile_lengths_do_not_allocate_or_panic() {
    // Array claiming 2^32-1 elements with no data.
    assert!(decode(&[0xdd, 0xff, 0xff, 0xff, 0xff], &Type::list(Type::String)).is_err());
    // Deep nesting is refused, not a stack overflow.
    let mut deep = vec![0x91u8; 10_000];
    deep.push(0xc0);
    let mut ty = Type::String;
    for _ in 0..200 {
        ty = Type::list(ty);
    }
    assert!(decode(&deep, &ty).is_err());
    assert!(decode(&[0xc1], &Type::String).is_err());
    assert!(decode(&[0xa5, b'a'], &Type::String).is_err());
    assert!(decode(&[0xa2, 0xff, 0xfe], &Type::String).is_err());
}

// ---- property tests -------------------------------------------------------

fn arb_type() -> impl Strategy<Value = Type> {
    let leaf = prop_oneof![
        Just(Type::Bool),
        Just(Type::Number),
        Just(Type::String),
        Just(Type::Dynamic),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(Type::list),
            inner.clone().prop_map(Type::set),
            inner.clone().prop_map(Type::map),
            prop::collection::btree_map("[a-z_]{1,8}", inner.clone(), 0..4).prop_map(Type::Object),
            prop::collection::vec(inner, 0..4).prop_map(Type::Tuple),
        ]
    })
}

fn arb_number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::Int),
        (i64::MAX as u64 + 1..=u64::MAX).prop_map(Number::Uint),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Number::from_f64),
        Just(Number::Float(f64::NEG_INFINITY)),
        ("[1-9][0-9]{20,40}", "[0-9]{0,20}[1-9]")
            .prop_map(|(i, f)| { Number::parse(&format!("{i}.{f}")).unwrap() }),
        "-?[1-9][0-9]{19,40}".prop_map(|i| Number::parse(&i).unwrap()),
    ]
}

fn arb_refinements(ty: &Type) -> BoxedStrategy<Option<Box<Refinements>>> {
    let base = prop::option::of(Just(false));
    match ty {
        Type::Dynamic => Just(None).boxed(),
        Type::String => (base, prop::option::of("[a-z]{1,6}"))
            .prop_map(|(n, p)| Refinements {
                is_null: n,
                string_prefix: p,
                ..Default::default()
            })
            .prop_map(wrap)
            .boxed(),
        Type::Number => (
            base,
            prop::option::of((arb_number(), any::<bool>())),
            prop::option::of((arb_number(), any::<bool>())),
        )
            .prop_map(|(n, lo, hi)| Refinements {
                is_null: n,
                number_lower: lo,
                number_upper: hi,
                ..Default::default()
            })
            .prop_map(wrap)
            .boxed(),
        Type::List(_) | Type::Set(_) | Type::Map(_) => (
            base,
            prop::option::of(0i64..10),
            prop::option::of(10i64..1000),
        )
            .prop_map(|(n, lo, hi)| Refinements {
                is_null: n,
                length_lower: lo,
                length_upper: hi,
                ..Default::default()
            })
            .prop_map(wrap)
            .boxed(),
        _ => base
            .prop_map(|n| Refinements {
                is_null: n,
                ..Default::default()
            })
            .prop_map(wrap)
            .boxed(),
    }
}

fn wrap(r: Refinements) -> Option<Box<Refinements>> {
    if r.is_empty() {
        None
    } else {
        Some(Box::new(r))
    }
}

/// A known (non-null, non-unknown) value of `ty`.
fn arb_known(ty: &Type, depth: u32) -> BoxedStrategy<Dynamic> {
    match ty {
        Type::Bool => any::<bool>().prop_map(Dynamic::Bool).boxed(),
        Type::Number => arb_number().prop_map(Dynamic::Number).boxed(),
        Type::String => ".{0,40}".prop_map(Dynamic::String).boxed(),
        Type::Dynamic => {
            // Pick a concrete type, then a known value of it.
            let inner = if depth > 2 {
                prop_oneof![Just(Type::String), Just(Type::Number)].boxed()
            } else {
                arb_type().boxed()
            };
            inner
                .prop_flat_map(move |t| {
                    arb_known(&t, depth + 1)
                        .prop_map(move |v| Dynamic::Typed(Box::new(t.clone()), Box::new(v)))
                })
                .boxed()
        }
        Type::List(et) | Type::Set(et) => prop::collection::vec(arb_value(et, depth + 1), 0..4)
            .prop_map(Dynamic::List)
            .boxed(),
        Type::Map(et) => prop::collection::btree_map(".{0,6}", arb_value(et, depth + 1), 0..4)
            .prop_map(Dynamic::Map)
            .boxed(),
        Type::Tuple(ets) => ets
            .iter()
            .map(|t| arb_value(t, depth + 1))
            .collect::<Vec<_>>()
            .prop_map(Dynamic::List)
            .boxed(),
        Type::Object(attrs) => {
            let names: Vec<String> = attrs.keys().cloned().collect();
            attrs
                .values()
                .map(|t| arb_value(t, depth + 1))
                .collect::<Vec<_>>()
                .prop_map(move |vals| Dynamic::Map(names.iter().cloned().zip(vals).collect()))
                .boxed()
        }
    }
}

/// Any value of `ty`: null, (refined) unknown or known, at every depth.
fn arb_value(ty: &Type, depth: u32) -> BoxedStrategy<Dynamic> {
    prop_oneof![
        1 => Just(Dynamic::Null),
        1 => arb_refinements(ty).prop_map(Dynamic::Unknown),
        4 => arb_known(ty, depth),
    ]
    .boxed()
}

fn typed_value() -> impl Strategy<Value = (Type, Dynamic)> {
    arb_type().prop_flat_map(|t| {
        let t2 = t.clone();
        arb_value(&t, 0).prop_map(move |v| (t2.clone(), v))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn msgpack_round_trips((ty, v) in typed_value()) {
        let bytes = encode(&v, &ty).unwrap();
        let back = decode(&bytes, &ty).unwrap();
        prop_assert_eq!(back, v);
    }

    #[test]
    fn serde_bridge_round_trips((ty, v) in typed_value()) {
        // Dynamic → serde → Dynamic keeps everything but refinements and the
        // carried types of dynamic values (the encoder re-derives those).
        let through: Dynamic = from_dynamic(to_dynamic(&v).unwrap()).unwrap();
        let a = encode(&strip_refinements(&v), &ty);
        let b = encode(&through, &ty);
        if let (Ok(a), Ok(b)) = (&a, &b) {
            if !contains_typed(&v) {
                prop_assert_eq!(a, b);
            }
        }
        prop_assert_eq!(through.is_wholly_known(), v.is_wholly_known());
    }

    #[test]
    fn decoding_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64), ty in arb_type()) {
        let _ = decode(&bytes, &ty);
    }

    #[test]
    fn integers_and_floats_are_exact(i in any::<i64>(), f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
        let d = Dynamic::from(i);
        prop_assert_eq!(decode(&encode(&d, &Type::Number).unwrap(), &Type::Number).unwrap(), d);
        let back = decode(&encode(&Dynamic::from(f), &Type::Number).unwrap(), &Type::Number).unwrap();
        let Dynamic::Number(n) = back else { panic!() };
        prop_assert_eq!(n.as_f64(), f);
    }
}

fn contains_typed(v: &Dynamic) -> bool {
    match v {
        Dynamic::Typed(..) => true,
        Dynamic::List(items) => items.iter().any(contains_typed),
        Dynamic::Map(m) => m.values().any(contains_typed),
        _ => false,
    }
}

fn strip_refinements(v: &Dynamic) -> Dynamic {
    match v {
        Dynamic::Unknown(_) => Dynamic::UNKNOWN,
        Dynamic::List(items) => Dynamic::List(items.iter().map(strip_refinements).collect()),
        Dynamic::Map(m) => Dynamic::Map(
            m.iter()
                .map(|(k, v)| (k.clone(), strip_refinements(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}
