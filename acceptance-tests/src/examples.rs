//! Running whole example directories (`examples/quickstart`, `examples/lab`) in a [`Workspace`],
//! and reading what Omni holds afterwards, for tests that check an apply left nothing behind.

use crate::{Omni, Workspace};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The repository root (the parent of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("acceptance-tests lives in the repository root")
        .to_path_buf()
}

/// Copies `from` into `to` recursively, skipping `.terraform` directories and state files, so a
/// developer's local runs of an example never leak into a test.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name == ".terraform"
            || name.starts_with("terraform.tfstate")
            || name.ends_with(".lock.hcl")
        {
            continue;
        }
        let dest = to.join(path.file_name().unwrap_or_default());
        if path.is_dir() {
            copy_tree(&path, &dest)?;
        } else {
            std::fs::copy(&path, &dest)?;
        }
    }
    Ok(())
}

/// Copies `examples/<name>` into the workspace and installs its local modules (`terraform get`,
/// which never reaches a registry for `./` sources). When the target is an emulator, its
/// built-in Image Factory is used instead of the public one (`image_factory_url`).
pub fn use_example(ws: &Workspace, omni: &Omni, name: &str) -> Result<()> {
    copy_tree(&repo_root().join("examples").join(name), ws.path())?;
    if omni.is_emulator() {
        std::fs::write(
            ws.path().join("emulator.auto.tfvars"),
            format!("image_factory_url = {:?}\n", omni.endpoint),
        )?;
    }
    let get = ws.run(&["get"])?;
    if get.status != 0 {
        bail!("terraform get failed: {}", get.stderr);
    }
    Ok(())
}

/// `terraform output -json`, as `{ name: value }`.
pub fn outputs(ws: &Workspace) -> Result<Value> {
    let run = ws.run(&["output", "-json"])?;
    if run.status != 0 {
        bail!("terraform output failed: {}", run.stderr);
    }
    let raw: Value = serde_json::from_str(&run.stdout)?;
    let mut out = serde_json::Map::new();
    if let Some(map) = raw.as_object() {
        for (k, v) in map {
            out.insert(k.clone(), v["value"].clone());
        }
    }
    Ok(Value::Object(out))
}

/// Every resource instance in a `terraform show -json` state, module or not, as
/// `(address, type, values)`.
pub fn all_resources(state: &Value) -> Vec<(String, String, Value)> {
    fn walk(module: &Value, out: &mut Vec<(String, String, Value)>) {
        for r in module["resources"].as_array().into_iter().flatten() {
            if r["mode"] == "managed" {
                out.push((
                    r["address"].as_str().unwrap_or_default().to_string(),
                    r["type"].as_str().unwrap_or_default().to_string(),
                    r["values"].clone(),
                ));
            }
        }
        for m in module["child_modules"].as_array().into_iter().flatten() {
            walk(m, out);
        }
    }
    let mut out = Vec::new();
    walk(&state["values"]["root_module"], &mut out);
    out
}
