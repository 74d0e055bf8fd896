//! Fuzzing the msgpack and JSON decoders with *mutated valid encodings*: random bytes (see
//! `codec.rs`) rarely get past the first marker, while a valid state blob with one byte flipped,
//! removed or inserted, or cut short, reaches the deep paths (nested collections, dynamic
//! values carrying their type, refinements). Whatever Terraform sends, decoding returns a
//! value or an error and never panics.

use proptest::prelude::*;
use tfplugin::value::{decode, dynamic_from_json_bytes, encode};
use tfplugin::Type;

/// A state-shaped type like a resource schema's, with every kind of collection and a
/// dynamic attribute.
fn state_type() -> Type {
    let item = Type::object([
        ("flag".to_string(), Type::Bool),
        ("extra".to_string(), Type::Dynamic),
    ]);
    Type::object([
        ("id".to_string(), Type::String),
        ("size".to_string(), Type::Number),
        ("tags".to_string(), Type::list(Type::String)),
        ("names".to_string(), Type::set(Type::String)),
        ("labels".to_string(), Type::map(Type::String)),
        ("items".to_string(), Type::list(item)),
        (
            "pair".to_string(),
            Type::Tuple(vec![Type::String, Type::Number]),
        ),
    ])
}

/// JSON for [`state_type`], with nulls sprinkled in.
fn state_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{json, Value as J};
    let text = "[a-zA-Z0-9 ._/-]{0,12}";
    // A dynamic attribute is written in JSON state with its type next to its value.
    let extra = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(|b| json!({ "value": b, "type": "bool" })),
        any::<i64>().prop_map(|n| json!({ "value": n, "type": "number" })),
        text.prop_map(|s| json!({ "value": s, "type": "string" })),
        prop::collection::vec(text, 0..3)
            .prop_map(|v| json!({ "value": v, "type": ["list", "string"] })),
    ];
    let item = (prop::option::of(any::<bool>()), extra)
        .prop_map(|(flag, extra)| json!({ "flag": flag, "extra": extra }));
    (
        prop::option::of(text),
        prop::option::of(any::<i32>()),
        prop::collection::vec(text, 0..5),
        prop::collection::btree_set(text, 0..5),
        prop::collection::btree_map("[a-z]{1,6}", text, 0..5),
        prop::collection::vec(item, 0..4),
        (text, any::<u16>()),
    )
        .prop_map(|(id, size, tags, names, labels, items, pair)| {
            json!({
                "id": id, "size": size, "tags": tags, "names": names, "labels": labels,
                "items": items, "pair": [pair.0, pair.1],
            })
        })
}

/// One way of damaging a valid encoding.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Remove(usize),
    Insert(usize, u8),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let at = |i: &usize| i % bytes.len();
    match m {
        Mutation::Flip(i, x) => {
            let i = at(i);
            bytes[i] ^= x;
        }
        Mutation::Remove(i) => {
            let i = at(i);
            bytes.remove(i);
        }
        Mutation::Insert(i, b) => {
            let i = at(i);
            bytes.insert(i, *b);
        }
        Mutation::Truncate(i) => {
            let i = at(i);
            bytes.truncate(i);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn mutated_msgpack_state_never_panics(
        json in state_json(),
        muts in prop::collection::vec(mutation(), 1..4),
    ) {
        let ty = state_type();
        let value = dynamic_from_json_bytes(json.to_string().as_bytes(), &ty).unwrap();
        let mut bytes = encode(&value, &ty).unwrap();
        // The unmutated blob decodes back (the generator makes valid states).
        prop_assert_eq!(decode(&bytes, &ty).unwrap(), value.clone());
        for m in &muts {
            mutate(&mut bytes, m);
        }
        let _ = decode(&bytes, &ty);
        // The same bytes read as a dynamic value (type carried in the data) or another type.
        let _ = decode(&bytes, &Type::Dynamic);
        let _ = decode(&bytes, &Type::map(Type::list(Type::Dynamic)));
        // Dynamic encodings carry their type as JSON inside msgpack: damage that too.
        let mut dynamic = encode(&value, &Type::Dynamic).unwrap();
        for m in &muts {
            mutate(&mut dynamic, m);
        }
        let _ = decode(&dynamic, &Type::Dynamic);
    }

    #[test]
    fn mutated_json_state_never_panics(
        json in state_json(),
        muts in prop::collection::vec(mutation(), 1..4),
    ) {
        // Terraform sends prior state as JSON on upgrade: the same damage on the JSON text.
        let mut bytes = json.to_string().into_bytes();
        for m in &muts {
            mutate(&mut bytes, m);
        }
        let _ = dynamic_from_json_bytes(&bytes, &state_type());
        let _ = dynamic_from_json_bytes(&bytes, &Type::Dynamic);
    }
}
