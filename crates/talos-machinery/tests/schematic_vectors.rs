//! Runs every vector of the shared conformance file (image-factory-and-talos.md §2.8).
//! CI keeps `shared/` beside the checkout, hence the path relative to the crate.

use std::path::PathBuf;

use talos_machinery::schematic;

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/schematic-vectors.json")
}

#[test]
fn all_conformance_vectors() {
    let text = std::fs::read_to_string(vectors_path()).expect("conformance file readable");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let vectors = doc["vectors"].as_array().expect("vectors array");
    assert!(!vectors.is_empty());
    let mut failures = Vec::new();
    let mut passed = 0;
    for v in vectors {
        let name = v["name"].as_str().unwrap_or("?");
        let input = v["input"].as_str().expect("input");
        let result = schematic::parse(input);
        if let Some(want_err) = v["error_v4"].as_str() {
            match result {
                Err(e) if e.message == want_err => passed += 1,
                Err(e) => failures.push(format!(
                    "{name}: error {:?}, want {:?}",
                    e.message, want_err
                )),
                Ok(s) => failures.push(format!(
                    "{name}: accepted ({}), want error {want_err:?}",
                    s.id()
                )),
            }
            continue;
        }
        let want_canonical = v["canonical"].as_str().expect("canonical");
        let want_id = v["id"].as_str().expect("id");
        match result {
            Ok(s) => {
                let canonical = s.canonical_yaml();
                if canonical != want_canonical {
                    failures.push(format!(
                        "{name}: canonical {canonical:?}, want {want_canonical:?}"
                    ));
                } else if s.id() != want_id {
                    failures.push(format!("{name}: id {}, want {want_id}", s.id()));
                } else {
                    passed += 1;
                }
                // Variants for older factory builds (§2.5), when the vector records them.
                for (field, flavor) in [
                    ("id_yaml_v3", talos_machinery::yaml::Flavor::V3),
                    ("id_yaml_v4_rc4", talos_machinery::yaml::Flavor::V4Rc4),
                ] {
                    if let Some(want) = v[field].as_str() {
                        if s.id_with(flavor) != want {
                            failures.push(format!(
                                "{name}: {field} {}, want {want}",
                                s.id_with(flavor)
                            ));
                        }
                    }
                }
            }
            Err(e) => failures.push(format!("{name}: rejected: {e}")),
        }
    }
    println!(
        "schematic conformance: {passed}/{} vectors pass",
        vectors.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
