//! Renders the registry documentation (`docs/`) from the provider's own schema and `examples/`.
//!
//! The schema comes from `terraform providers schema -json` run against the provider binary built
//! next to this one (dev_overrides, no `init`), so the docs always describe what the binary
//! serves. Layout and sections follow the registry's conventions (terraform-plugin-protocol.md
//! §6): front matter, description, "Example Usage", "Schema" split into Required / Optional /
//! Read-Only with nested sections, and "Import".
//!
//! `gen-docs` writes `docs/`; `gen-docs --check` renders into memory and fails when `docs/` differs
//! (CI runs it, so stale docs fail the build).

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const PROVIDER_NAME: &str = "omni";
const PROVIDER_SOURCE: &str = "siderolabs/omni";

fn main() {
    if let Err(err) = run() {
        eprintln!("gen-docs: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let mut check = false;
    let mut root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut schema_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--check" => check = true,
            "--root" => root = PathBuf::from(args.next().context("--root needs a directory")?),
            "--schema" => {
                schema_file = Some(PathBuf::from(args.next().context("--schema needs a file")?))
            }
            other => bail!("unknown argument {other:?} (use --check, --root DIR, --schema FILE)"),
        }
    }
    let schema = match schema_file {
        Some(f) => serde_json::from_str(&std::fs::read_to_string(f)?)?,
        None => provider_schema()?,
    };
    let pages = render_all(&schema, &root)?;
    let docs = root.join("docs");
    if check {
        let mut stale = Vec::new();
        for (rel, text) in &pages {
            let path = docs.join(rel);
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(rel.clone());
            }
        }
        for existing in list_markdown(&docs)? {
            if !pages.contains_key(&existing) {
                stale.push(format!("{existing} (no longer generated)"));
            }
        }
        if !stale.is_empty() {
            bail!("docs/ is stale, run `make docs`: {}", stale.join(", "));
        }
        println!("docs/ is up to date ({} pages)", pages.len());
        return Ok(());
    }
    if docs.exists() {
        for existing in list_markdown(&docs)? {
            if !pages.contains_key(&existing) {
                std::fs::remove_file(docs.join(&existing))?;
            }
        }
    }
    for (rel, text) in &pages {
        let path = docs.join(rel);
        std::fs::create_dir_all(path.parent().unwrap())?;
        std::fs::write(&path, text)?;
    }
    std::fs::write(
        root.join("terraform-registry-manifest.json"),
        "{\n  \"version\": 1,\n  \"metadata\": {\n    \"protocol_versions\": [\"6.0\"]\n  }\n}\n",
    )?;
    println!("wrote {} pages to {}", pages.len(), docs.display());
    Ok(())
}

fn list_markdown(docs: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    if !docs.exists() {
        return Ok(out);
    }
    let mut stack = vec![docs.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path.strip_prefix(docs)?.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Asks terraform for the schema of the provider binary that sits next to this executable.
fn provider_schema() -> Result<Value> {
    let exe = std::env::current_exe()?;
    let bin_dir = exe.parent().context("executable has no directory")?;
    let provider = bin_dir.join("terraform-provider-omni");
    if !provider.is_file() {
        bail!(
            "{} is missing: build the provider first (make build)",
            provider.display()
        );
    }
    let work = std::env::temp_dir().join(format!("omni-gen-docs-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let rc = work.join("terraform.rc");
    std::fs::write(
        &rc,
        format!(
            "provider_installation {{\n  dev_overrides {{\n    \"{PROVIDER_SOURCE}\" = \"{}\"\n  }}\n}}\n",
            bin_dir.display()
        ),
    )?;
    std::fs::write(
        work.join("main.tf"),
        format!(
            "terraform {{\n  required_providers {{\n    {PROVIDER_NAME} = {{ source = \"{PROVIDER_SOURCE}\" }}\n  }}\n}}\n"
        ),
    )?;
    let out = Command::new("terraform")
        .args(["providers", "schema", "-json"])
        .current_dir(&work)
        .env("TF_CLI_CONFIG_FILE", &rc)
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_IN_AUTOMATION", "1")
        .output()
        .context("running `terraform providers schema -json` (is terraform on PATH?)")?;
    let _ = std::fs::remove_dir_all(&work);
    if !out.status.success() {
        bail!(
            "terraform providers schema failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let all: Value = serde_json::from_slice(&out.stdout)?;
    let schemas = all["provider_schemas"]
        .as_object()
        .context("no provider_schemas in terraform output")?;
    // The key carries the tool's default host; find ours by its suffix.
    let suffix = format!("/{PROVIDER_SOURCE}");
    schemas
        .iter()
        .find(|(k, _)| k.ends_with(&suffix) || k.as_str() == PROVIDER_SOURCE)
        .map(|(_, v)| v.clone())
        .context("the omni provider is not in the schema output")
}

/// Every page, keyed by its path below `docs/`.
fn render_all(schema: &Value, root: &Path) -> Result<BTreeMap<String, String>> {
    let examples = root.join("examples");
    let mut pages = BTreeMap::new();
    pages.insert(
        "index.md".to_string(),
        render_index(&schema["provider"]["block"], &examples)?,
    );
    let kinds = [
        ("resource_schemas", "resources", "Resource", "resource.tf"),
        (
            "data_source_schemas",
            "data-sources",
            "Data Source",
            "data-source.tf",
        ),
        (
            "ephemeral_resource_schemas",
            "ephemeral-resources",
            "Ephemeral Resource",
            "ephemeral-resource.tf",
        ),
    ];
    for (key, dir, label, example_file) in kinds {
        let Some(map) = schema[key].as_object() else {
            continue;
        };
        for (type_name, entry) in map {
            let short = type_name
                .strip_prefix(&format!("{PROVIDER_NAME}_"))
                .unwrap_or(type_name);
            let example_dir = examples.join(dir).join(type_name);
            let page = render_object(
                type_name,
                label,
                &entry["block"],
                &example_dir,
                example_file,
            )?;
            pages.insert(format!("{dir}/{short}.md"), page);
        }
    }
    if let Some(functions) = schema["functions"].as_object() {
        for (name, f) in functions {
            let page = render_function(name, f, &examples.join("functions").join(name))?;
            pages.insert(format!("functions/{name}.md"), page);
        }
    }
    Ok(pages)
}

fn front_matter(title: &str, description: &str) -> String {
    let first = description.lines().next().unwrap_or("").replace('"', "'");
    format!("---\npage_title: \"{title}\"\nsubcategory: \"\"\ndescription: |-\n  {first}\n---\n\n")
}

fn example_section(path: &Path, heading: &str) -> Result<String> {
    if !path.is_file() {
        return Ok(String::new());
    }
    let text = std::fs::read_to_string(path)?;
    let lang = if path.extension().is_some_and(|e| e == "sh") {
        "shell"
    } else {
        "terraform"
    };
    Ok(format!(
        "## {heading}\n\n```{lang}\n{}\n```\n\n",
        text.trim_end()
    ))
}

fn render_index(block: &Value, examples: &Path) -> Result<String> {
    let mut out = front_matter(
        "Provider: Omni",
        "Manage Sidero Omni clusters, machine sets, config patches and Image Factory schematics.",
    );
    out.push_str("# Omni Provider\n\n");
    if let Some(d) = block["description"].as_str() {
        out.push_str(d.trim());
        out.push_str("\n\n");
    }
    out.push_str(&example_section(
        &examples.join("provider/provider.tf"),
        "Example Usage",
    )?);
    out.push_str(&render_schema(block));
    Ok(out)
}

fn render_object(
    type_name: &str,
    label: &str,
    block: &Value,
    example_dir: &Path,
    example_file: &str,
) -> Result<String> {
    let description = block["description"].as_str().unwrap_or("").trim();
    let mut out = front_matter(
        &format!("{type_name} {label} - {PROVIDER_NAME}"),
        description,
    );
    let _ = writeln!(out, "# {type_name} ({label})\n");
    if !description.is_empty() {
        let _ = writeln!(out, "{description}\n");
    }
    out.push_str(&example_section(
        &example_dir.join(example_file),
        "Example Usage",
    )?);
    out.push_str(&render_schema(block));
    let import = example_section(&example_dir.join("import.sh"), "Import")?;
    if !import.is_empty() {
        out.push_str("## Import\n\nImport is supported using the following syntax:\n\n");
        out.push_str(import.trim_start_matches("## Import\n\n"));
    }
    Ok(out.trim_end().to_string() + "\n")
}

fn render_function(name: &str, f: &Value, example_dir: &Path) -> Result<String> {
    let summary = f["summary"].as_str().unwrap_or("");
    let mut out = front_matter(&format!("{name} function - {PROVIDER_NAME}"), summary);
    let _ = writeln!(out, "# function: {name}\n");
    if let Some(d) = f["description"].as_str() {
        let _ = writeln!(out, "{}\n", d.trim());
    }
    out.push_str(&example_section(
        &example_dir.join("function.tf"),
        "Example Usage",
    )?);
    let params: Vec<&Value> = f["parameters"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let sig: Vec<String> = params
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["name"].as_str().unwrap_or("arg"),
                type_string(&p["type"])
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "## Signature\n\n```text\n{name}({}) {}\n```\n",
        sig.join(", "),
        type_string(&f["return_type"])
    );
    if !params.is_empty() {
        out.push_str("## Arguments\n\n");
        for (i, p) in params.iter().enumerate() {
            let _ = writeln!(
                out,
                "{}. `{}` ({}) {}",
                i + 1,
                p["name"].as_str().unwrap_or("arg"),
                type_string(&p["type"]),
                p["description"].as_str().unwrap_or("").trim()
            );
        }
        out.push('\n');
    }
    Ok(out.trim_end().to_string() + "\n")
}

/// A cty type (as JSON) in the registry's words: `String`, `List of String`, `Map of Number`.
fn type_string(t: &Value) -> String {
    match t {
        Value::String(s) => capitalise(s),
        Value::Array(a) if a.len() == 2 => {
            let kind = a[0].as_str().unwrap_or("");
            match kind {
                "list" | "set" | "map" => format!("{} of {}", capitalise(kind), type_string(&a[1])),
                "object" => "Object".to_string(),
                "tuple" => "Tuple".to_string(),
                _ => capitalise(kind),
            }
        }
        _ => "Dynamic".to_string(),
    }
}

fn capitalise(s: &str) -> String {
    let s = if s == "dynamic" { "Dynamic" } else { s };
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// One attribute or block, normalised for rendering.
struct Item {
    name: String,
    kind: String,
    description: String,
    required: bool,
    optional: bool,
    computed: bool,
    sensitive: bool,
    write_only: bool,
    deprecated: bool,
    nested: Option<Value>,
}

fn items(block: &Value) -> Vec<Item> {
    let mut out = Vec::new();
    let empty = Map::new();
    for (name, a) in block["attributes"].as_object().unwrap_or(&empty) {
        let (kind, nested) = match a.get("nested_type") {
            Some(n) => {
                let mode = n["nesting_mode"].as_str().unwrap_or("single");
                let kind = match mode {
                    "single" => "Attributes".to_string(),
                    m => format!("Attributes {}", capitalise(m)),
                };
                (kind, Some(n.clone()))
            }
            None => (type_string(&a["type"]), None),
        };
        out.push(Item {
            name: name.clone(),
            kind,
            description: a["description"].as_str().unwrap_or("").trim().to_string(),
            required: a["required"].as_bool().unwrap_or(false),
            optional: a["optional"].as_bool().unwrap_or(false),
            computed: a["computed"].as_bool().unwrap_or(false),
            sensitive: a["sensitive"].as_bool().unwrap_or(false),
            write_only: a["write_only"].as_bool().unwrap_or(false),
            deprecated: a["deprecated"].as_bool().unwrap_or(false),
            nested,
        });
    }
    for (name, b) in block["block_types"].as_object().unwrap_or(&empty) {
        let mode = b["nesting_mode"].as_str().unwrap_or("single");
        let min = b["min_items"].as_u64().unwrap_or(0);
        out.push(Item {
            name: name.clone(),
            kind: format!("Block {}", capitalise(mode)),
            description: b["block"]["description"]
                .as_str()
                .unwrap_or("")
                .trim()
                .to_string(),
            required: min > 0,
            optional: min == 0,
            computed: false,
            sensitive: false,
            write_only: false,
            deprecated: b["block"]["deprecated"].as_bool().unwrap_or(false),
            nested: Some(b["block"].clone()),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn render_schema(block: &Value) -> String {
    let mut out = String::from("## Schema\n\n");
    let mut nested = Vec::new();
    render_groups(block, "", &mut out, &mut nested);
    while let Some((path, value)) = nested.pop() {
        let anchor = format!("nestedatt--{}", path.replace('.', "--"));
        let _ = writeln!(
            out,
            "<a id=\"{anchor}\"></a>\n### Nested Schema for `{path}`\n"
        );
        render_groups(&value, &path, &mut out, &mut nested);
    }
    out
}

fn render_groups(block: &Value, prefix: &str, out: &mut String, nested: &mut Vec<(String, Value)>) {
    let all = items(block);
    type Pick = fn(&Item) -> bool;
    let groups: [(&str, Pick); 3] = [
        ("Required", |i| i.required),
        ("Optional", |i| i.optional),
        ("Read-Only", |i| i.computed && !i.optional && !i.required),
    ];
    let mut later = Vec::new();
    for (title, pick) in groups {
        let chosen: Vec<&Item> = all.iter().filter(|i| pick(i)).collect();
        if chosen.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {title}\n");
        for item in chosen {
            let path = if prefix.is_empty() {
                item.name.clone()
            } else {
                format!("{prefix}.{}", item.name)
            };
            let mut flags = vec![item.kind.clone()];
            if item.sensitive {
                flags.push("Sensitive".into());
            }
            if item.write_only {
                flags.push("Write-only".into());
            }
            if item.deprecated {
                flags.push("Deprecated".into());
            }
            let link = match &item.nested {
                Some(_) => format!(
                    " (see [below for nested schema](#nestedatt--{}))",
                    path.replace('.', "--")
                ),
                None => String::new(),
            };
            let desc = item.description.replace('\n', " ");
            let _ = writeln!(
                out,
                "- `{}` ({}) {}{}",
                item.name,
                flags.join(", "),
                desc,
                link
            );
            if let Some(n) = &item.nested {
                later.push((path, n.clone()));
            }
        }
        out.push('\n');
    }
    // Reverse so the stack pops them in schema order.
    later.reverse();
    nested.extend(later);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_sections_are_grouped_sorted_and_nested() {
        let block = json!({
            "attributes": {
                "zeta": {"type": "string", "optional": true, "description": "Z."},
                "alpha": {"type": ["list", "string"], "required": true, "description": "A."},
                "id": {"type": "string", "computed": true, "description": "The ID."},
                "key": {"type": "string", "optional": true, "sensitive": true, "description": "K."},
                "features": {"nested_type": {"nesting_mode": "single", "attributes": {
                    "flag": {"type": "bool", "optional": true, "description": "F."}}},
                    "optional": true, "description": "Feat."}
            }
        });
        let text = render_schema(&block);
        let req = text.find("### Required").unwrap();
        let opt = text.find("### Optional").unwrap();
        let ro = text.find("### Read-Only").unwrap();
        assert!(req < opt && opt < ro, "{text}");
        assert!(text.contains("- `alpha` (List of String) A."));
        assert!(text.contains("- `key` (String, Sensitive) K."));
        assert!(text.find("`features`").unwrap() < text.find("`key`").unwrap());
        assert!(text.contains("### Nested Schema for `features`"));
        assert!(text.contains("- `flag` (Bool) F."));
    }

    #[test]
    fn type_strings_read_like_the_registry() {
        assert_eq!(type_string(&json!("number")), "Number");
        assert_eq!(type_string(&json!(["map", "string"])), "Map of String");
        assert_eq!(
            type_string(&json!(["set", ["list", "bool"]])),
            "Set of List of Bool"
        );
        assert_eq!(type_string(&json!("dynamic")), "Dynamic");
    }
}
