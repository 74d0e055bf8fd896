//! Every example under `examples/` is `terraform fmt`-clean and passes `terraform validate`
//! against the built provider's schema, and `docs/` is exactly what `make docs` generates.

use acceptance_tests::{built_binary, terraform_binary, PROVIDER_SOURCE};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn tf_dirs(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut has_tf = false;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == ".terraform") {
                    continue;
                }
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "tf") {
                has_tf = true;
            }
        }
        if has_tf {
            out.push(dir);
        }
    }
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let dest = to.join(path.file_name().unwrap());
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == ".terraform") {
                continue;
            }
            copy_dir(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).unwrap();
        }
    }
}

fn declares_required_providers(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        let p = e.unwrap().path();
        p.extension().is_some_and(|x| x == "tf")
            && std::fs::read_to_string(&p)
                .unwrap_or_default()
                .contains("required_providers")
    })
}

#[test]
fn examples_are_formatted() {
    let out = Command::new(terraform_binary())
        .args(["fmt", "-check", "-recursive", "-diff"])
        .current_dir(repo_root().join("examples"))
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "terraform fmt -check found unformatted examples (run `terraform fmt -recursive examples`):\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn examples_validate_against_the_provider_schema() {
    let provider_dir = built_binary("terraform-provider-omni")
        .parent()
        .unwrap()
        .to_path_buf();
    let root = repo_root().join("examples");
    let dirs = tf_dirs(&root);
    assert!(
        !dirs.is_empty(),
        "no examples found under {}",
        root.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let rc = tmp.path().join("terraform.rc");
    std::fs::write(
        &rc,
        format!(
            "provider_installation {{\n  dev_overrides {{\n    \"{PROVIDER_SOURCE}\" = \"{}\"\n  }}\n}}\n",
            provider_dir.display()
        ),
    )
    .unwrap();
    let mut failures = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let rel = dir.strip_prefix(&root).unwrap();
        // Modules are validated through the configurations that call them.
        if rel.components().any(|c| c.as_os_str() == "modules") {
            continue;
        }
        let work = tmp.path().join(format!("ex{i}"));
        copy_dir(dir, &work);
        // Snippets (resource.tf and friends) omit the terraform block; add it for validation.
        if !declares_required_providers(&work) {
            std::fs::write(
                work.join("zz_providers.tf"),
                format!(
                    "terraform {{\n  required_providers {{\n    omni = {{ source = \"{PROVIDER_SOURCE}\" }}\n  }}\n}}\n"
                ),
            )
            .unwrap();
        }
        let run = |args: &[&str]| {
            Command::new(terraform_binary())
                .args(args)
                .current_dir(&work)
                .env("TF_CLI_CONFIG_FILE", &rc)
                .env("CHECKPOINT_DISABLE", "1")
                .env("TF_IN_AUTOMATION", "1")
                .output()
                .unwrap()
        };
        // Local modules need `terraform get` (init would try to reach a registry).
        let get = run(&["get"]);
        if !get.status.success() {
            failures.push(format!(
                "{}: terraform get: {}",
                rel.display(),
                String::from_utf8_lossy(&get.stderr)
            ));
            continue;
        }
        let out = run(&["validate", "-no-color"]);
        if !out.status.success() {
            failures.push(format!(
                "{}: {}{}",
                rel.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    println!("validated {} example directories", dirs.len());
    assert!(
        failures.is_empty(),
        "examples failed validation:\n{}",
        failures.join("\n")
    );
}

#[test]
fn docs_are_up_to_date() {
    let out = Command::new(built_binary("gen-docs"))
        .args(["--check", "--root"])
        .arg(repo_root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
