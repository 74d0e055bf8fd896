//! `provider::omni::schematic_id(schematic)`: the Image Factory schematic ID of a POST body,
//! computed offline exactly as the factory does (image-factory-and-talos.md §2.1).

use tfplugin::{
    async_trait, Arguments, Ctx, Dynamic, Function, FunctionDefinition, FunctionError, Parameter,
    Type,
};

const DESCRIPTION: &str = "Computes the [Talos Image Factory](https://factory.talos.dev) \
schematic ID of a schematic document, offline and exactly as the factory does when the same text \
is sent to `POST /schematics`: the document (YAML or JSON; only the first YAML document counts) \
is parsed strictly, re-emitted in the factory's canonical YAML layout, and hashed with SHA-256.\n\n\
Key order, indentation, comments and JSON vs YAML do not change the ID; list order, duplicates \
and every value do. A document the factory would reject (an unknown or misspelt field, a value \
of the wrong type, a META key outside 0–255, an empty document) is a function error carrying the \
factory's reason, so a typo never silently yields the vanilla ID.\n\n\
Build the document with `yamlencode()` or read it with `file()`.\n\n\
Strings that are whole YAML 1.1 booleans (`yes`, `off`, ...), base-60 numbers (`1:20`) or `<<` \
are quoted differently by different factory releases; the ID returned is the one of the current \
factory (v1.5.0).";

/// The `schematic_id` provider function.
pub struct SchematicIdFunction;

#[async_trait]
impl Function for SchematicIdFunction {
    const NAME: &'static str = "schematic_id";

    fn definition(&self) -> FunctionDefinition {
        FunctionDefinition::new(
            Type::String,
            "Image Factory schematic ID of a schematic document",
        )
        .description(DESCRIPTION)
        .parameter(Parameter::new(
            "schematic",
            Type::String,
            "The schematic document (YAML or JSON), as it would be sent to the factory.",
        ))
    }

    async fn call(&self, _ctx: &Ctx, args: Arguments) -> Result<Dynamic, FunctionError> {
        let text: String = args.get(0)?;
        schematic_id(&text)
            .map(Dynamic::from)
            .map_err(|e| FunctionError::argument(0, e))
    }
}

/// The ID, or the factory's reason for rejecting the document (§1.2).
pub fn schematic_id(text: &str) -> Result<String, String> {
    talos_machinery::schematic::schematic_id(text)
        .map_err(|e| format!("the Image Factory would reject this schematic: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_rejections() {
        // image-factory-and-talos.md §2.7 V8.
        assert_eq!(
            schematic_id(
                "customization:\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/iscsi-tools\n      - siderolabs/util-linux-tools\n"
            )
            .unwrap(),
            "613e1592b2da41ae5e265e8789429f22e121aab91cb4deb6bc3c0b6262961245"
        );
        let e = schematic_id("customisation: {}\n").unwrap_err();
        assert!(e.contains("field customisation not found"), "{e}");
        assert!(schematic_id("").unwrap_err().ends_with("EOF"));
    }

    #[test]
    fn every_conformance_vector() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/conformance/schematic-vectors.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let vectors = doc["vectors"].as_array().unwrap();
        assert!(!vectors.is_empty());
        for v in vectors {
            let name = v["name"].as_str().unwrap();
            let input = v["input"].as_str().unwrap();
            match (v["id"].as_str(), v["error_v4"].as_str()) {
                (Some(id), _) => assert_eq!(schematic_id(input).as_deref(), Ok(id), "{name}"),
                (None, Some(err)) => {
                    let got = schematic_id(input).unwrap_err();
                    assert!(got.ends_with(err), "{name}: {got} vs {err}");
                }
                _ => panic!("{name}: neither id nor error"),
            }
        }
    }
}
