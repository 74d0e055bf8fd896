//! `omni_schematic` and `provider::omni::schematic_id` with the real terraform against the
//! emulator's Image Factory endpoints (image-factory-and-talos.md §1–§5).

use acceptance_tests::{has_diagnostic, planned_actions, resource_values, Omni, Workspace};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::io::{Read, Write};

/// V8 of §2.7: iscsi-tools + util-linux-tools.
const V8: &str = "613e1592b2da41ae5e265e8789429f22e121aab91cb4deb6bc3c0b6262961245";

/// Minimal HTTP/1.1 exchange with the emulator's factory (out-of-band checks only).
fn http(endpoint: &str, method: &str, path: &str, body: &str) -> Result<(u16, String)> {
    let addr = endpoint
        .strip_prefix("http://")
        .context("the factory tests use a plain-http emulator")?
        .trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").context("no header end")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .context("no status")?
        .parse()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn provider(factory: &str) -> String {
    format!("provider \"omni\" {{\n  image_factory_url = \"{factory}\"\n}}\n")
}

/// The provider block and `resource "omni_schematic" "this"` holding `body` (its attribute lines).
fn schematic_config(factory: &str, body: &str) -> String {
    format!(
        "{}\nresource \"omni_schematic\" \"this\" {{\n{body}}}\n",
        provider(factory)
    )
}

fn host_of(endpoint: &str) -> &str {
    endpoint
        .trim_end_matches('/')
        .split_once("://")
        .map(|(_, h)| h)
        .unwrap_or(endpoint)
}

/// The planned `after` object of `address`, and its `after_unknown`.
fn planned_change(plan: &Value, address: &str) -> Result<(Value, Value)> {
    let c = plan["resource_changes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["address"] == address)
        .with_context(|| format!("{address} not in plan"))?;
    Ok((
        c["change"]["after"].clone(),
        c["change"]["after_unknown"].clone(),
    ))
}

fn structured(factory: &str, extensions: &[&str], talos: &str) -> String {
    let list: Vec<String> = extensions.iter().map(|e| format!("\"{e}\"")).collect();
    format!(
        "{}\nresource \"omni_schematic\" \"this\" {{\n  extensions    = [{}]\n  talos_version = \"{talos}\"\n}}\n\n\
         resource \"terraform_data\" \"consumer\" {{\n  input = omni_schematic.this.id\n}}\n",
        provider(factory),
        list.join(", ")
    )
}

#[test]
fn schematic_lifecycle_id_known_in_plan_update_replace_destroy() -> Result<()> {
    let omni = Omni::start(0)?;
    let f = omni.endpoint.clone();
    let ws = Workspace::new(&omni)?;
    ws.write_config(&structured(
        &f,
        &["siderolabs/iscsi-tools", "siderolabs/util-linux-tools"],
        "v1.13.9",
    ))?;

    // The ID is known at plan time, and so is what depends on it.
    let plan = ws.plan_json()?;
    let (after, unknown) = planned_change(&plan, "omni_schematic.this")?;
    assert_eq!(after["id"], V8, "{after}");
    assert_eq!(unknown.get("id"), None, "id must be known: {unknown}");
    assert_eq!(
        after["installer_image"],
        format!("{}/metal-installer/{V8}:v1.13.9", host_of(&f))
    );
    let (consumer, consumer_unknown) = planned_change(&plan, "terraform_data.consumer")?;
    assert_eq!(consumer["input"], V8, "{consumer}");
    assert_ne!(consumer_unknown["input"], true);

    ws.apply()?;
    let state = ws.state()?;
    let v = resource_values(&state, "omni_schematic.this")?;
    assert_eq!(v["id"], V8);
    assert_eq!(v["register_via"], "factory");
    assert_eq!(v["platform"], "metal");
    assert_eq!(
        v["iso_url"],
        format!("{f}/image/{V8}/v1.13.9/metal-amd64.iso")
    );
    // Registered: the factory serves exactly our canonical YAML.
    let (status, body) = http(&f, "GET", &format!("/schematics/{V8}"), "")?;
    assert_eq!(status, 200);
    assert_eq!(Value::String(body), v["schematic_yaml"]);
    assert!(!ws.plan_has_changes()?, "re-plan must be empty");

    // talos_version only changes the references: in-place update.
    ws.write_config(&structured(
        &f,
        &["siderolabs/iscsi-tools", "siderolabs/util-linux-tools"],
        "v1.12.11",
    ))?;
    let plan = ws.plan_json()?;
    assert_eq!(
        planned_actions(&plan, "omni_schematic.this"),
        vec!["update"]
    );
    ws.apply()?;
    assert!(!ws.plan_has_changes()?);

    // The same schematic as a raw document: same ID, so no replacement.
    ws.write_config(&format!(
        "{}\nresource \"omni_schematic\" \"this\" {{\n  schematic = yamlencode({{ customization = {{ systemExtensions = {{ officialExtensions = [\"siderolabs/iscsi-tools\", \"siderolabs/util-linux-tools\"] }} }} }})\n  talos_version = \"v1.12.11\"\n}}\n\nresource \"terraform_data\" \"consumer\" {{\n  input = omni_schematic.this.id\n}}\n",
        provider(&f)
    ))?;
    let plan = ws.plan_json()?;
    assert_eq!(
        planned_actions(&plan, "omni_schematic.this"),
        vec!["update"]
    );
    ws.apply()?;

    // A changed extension list is a different schematic: replace, new ID known in plan.
    ws.write_config(&structured(
        &f,
        &["siderolabs/util-linux-tools", "siderolabs/iscsi-tools"],
        "v1.12.11",
    ))?;
    let plan = ws.plan_json()?;
    assert_eq!(
        planned_actions(&plan, "omni_schematic.this"),
        vec!["delete", "create"]
    );
    let (after, _) = planned_change(&plan, "omni_schematic.this")?;
    let reversed = "ffdc59f4fd5b62784876a03c3e31a81fbfecc871eaa7f27aca33b9f5ff1ec96e";
    assert_eq!(after["id"], reversed, "§2.7 V8 reversed");
    let (consumer, _) = planned_change(&plan, "terraform_data.consumer")?;
    assert_eq!(consumer["input"], reversed);
    ws.apply()?;
    assert_eq!(
        http(&f, "GET", &format!("/schematics/{reversed}"), "")?.0,
        200
    );
    assert!(!ws.plan_has_changes()?);

    // Destroy forgets: nothing left in the state; the factory keeps it (no delete API).
    ws.destroy()?;
    let state = ws.state()?;
    assert!(resource_values(&state, "omni_schematic.this").is_err());
    assert_eq!(
        http(&f, "GET", &format!("/schematics/{reversed}"), "")?.0,
        200
    );
    Ok(())
}

#[test]
fn schematic_import_reads_the_document_back() -> Result<()> {
    let omni = Omni::start(0)?;
    let f = omni.endpoint.clone();
    let config = schematic_config(&f, "  extensions        = [\"siderolabs/iscsi-tools\"]\n  extra_kernel_args = [\"console=ttyS0\", \"net.ifnames=0\"]\n  meta              = { \"10\" = \"{\\\"externalIPs\\\":[\\\"1.2.3.4\\\"]}\" }\n  overlay = {\n    name  = \"rpi_generic\"\n    image = \"siderolabs/sbc-raspberrypi\"\n  }\n  secureboot = { include_well_known_certificates = true }\n  bootloader = \"sd-boot\"\n");
    let ws = Workspace::new(&omni)?;
    ws.write_config(&config)?;
    ws.apply()?;
    let original = resource_values(&ws.state()?, "omni_schematic.this")?;
    let id = original["id"].as_str().context("id")?.to_string();

    // Import into a fresh workspace with the same configuration: the plan must be empty.
    let ws2 = Workspace::new(&omni)?;
    ws2.write_config(&config)?;
    ws2.import("omni_schematic.this", &id)?;
    let imported = resource_values(&ws2.state()?, "omni_schematic.this")?;
    for attr in [
        "id",
        "schematic_yaml",
        "extensions",
        "extra_kernel_args",
        "meta",
        "overlay",
        "secureboot",
        "bootloader",
        "register_via",
    ] {
        assert_eq!(imported[attr], original[attr], "{attr}");
    }
    assert!(
        !ws2.plan_has_changes()?,
        "import-verify must give an empty plan"
    );

    // An `import` block works too, and an ID the factory does not know is an error.
    let ws3 = Workspace::new(&omni)?;
    ws3.write_config(&format!(
        "import {{\n  to = omni_schematic.this\n  id = \"{id}\"\n}}\n\n{config}"
    ))?;
    let plan = ws3.plan_json()?;
    assert!(planned_actions(&plan, "omni_schematic.this")
        .iter()
        .all(|a| a == "no-op"));
    let missing = "0".repeat(64);
    let ws4 = Workspace::new(&omni)?;
    ws4.write_config(&config)?;
    let run = ws4.run(&["import", "-input=false", "omni_schematic.this", &missing])?;
    assert_ne!(run.status, 0, "importing an unknown schematic must fail");
    let run = ws4.run(&["import", "-input=false", "omni_schematic.this", "not-an-id"])?;
    assert_ne!(run.status, 0);
    assert!(
        run.stderr.contains("Invalid schematic ID") || run.stdout.contains("Invalid schematic ID")
    );
    Ok(())
}

#[test]
fn schematic_lost_by_the_factory_is_registered_again() -> Result<()> {
    let omni = Omni::start(0)?;
    // A separate emulator plays the factory, so it can lose its (in-memory) schematics.
    let mut factory = Omni::start(0)?;
    anyhow::ensure!(
        factory.is_emulator(),
        "needs an emulator to lose schematics"
    );
    let ws = Workspace::new(&omni)?;
    let config = |f: &str| {
        schematic_config(
            f,
            "  extensions = [\"siderolabs/iscsi-tools\", \"siderolabs/util-linux-tools\"]\n",
        )
    };
    ws.write_config(&config(&factory.endpoint))?;
    ws.apply()?;
    assert_eq!(
        http(&factory.endpoint, "GET", &format!("/schematics/{V8}"), "")?.0,
        200
    );

    factory.restart()?; // same data dir, empty schematic registry, new port
    assert_eq!(
        http(&factory.endpoint, "GET", &format!("/schematics/{V8}"), "")?.0,
        404
    );
    ws.write_config(&config(&factory.endpoint))?;
    let plan = ws.plan_json()?;
    assert_eq!(
        planned_actions(&plan, "omni_schematic.this"),
        vec!["create"]
    );
    ws.apply()?;
    assert_eq!(
        http(&factory.endpoint, "GET", &format!("/schematics/{V8}"), "")?.0,
        200
    );
    assert!(!ws.plan_has_changes()?);
    Ok(())
}

#[test]
fn factory_down_is_a_clear_error_naming_the_url() -> Result<()> {
    let omni = Omni::start(0)?;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        format!("http://127.0.0.1:{}", l.local_addr()?.port())
    };
    let ws = Workspace::new(&omni)?;
    ws.write_config(&schematic_config(
        &dead,
        "  extensions = [\"siderolabs/iscsi-tools\"]\n",
    ))?;
    let diags = ws.apply_expect_error()?;
    assert!(
        has_diagnostic(
            &diags,
            &format!(
                "Image Factory unreachable.*{}/schematics",
                regex::escape(&dead)
            ),
            None
        ),
        "{diags:#?}"
    );
    assert!(ws.state_file_text().is_empty() || !ws.state_file_text().contains("omni_schematic"));

    // With a schematic in the state, refresh fails the same way instead of dropping it.
    let f = omni.endpoint.clone();
    ws.write_config(&schematic_config(
        &f,
        "  extensions = [\"siderolabs/iscsi-tools\"]\n",
    ))?;
    ws.apply()?;
    ws.write_config(&schematic_config(
        &dead,
        "  extensions = [\"siderolabs/iscsi-tools\"]\n",
    ))?;
    let diags = ws.plan_expect_error()?;
    assert!(
        has_diagnostic(&diags, "Image Factory unreachable", None),
        "{diags:#?}"
    );
    Ok(())
}

#[test]
fn register_via_omni_uses_omnis_management_api() -> Result<()> {
    let omni = Omni::start(0)?;
    let f = omni.endpoint.clone();
    let ws = Workspace::new(&omni)?;
    ws.write_config(&schematic_config(&f, "  extensions   = [\"siderolabs/iscsi-tools\", \"siderolabs/util-linux-tools\"]\n  register_via = \"omni\"\n"))?;
    ws.apply()?;
    let v = resource_values(&ws.state()?, "omni_schematic.this")?;
    assert_eq!(v["id"], V8);
    assert_eq!(http(&f, "GET", &format!("/schematics/{V8}"), "")?.0, 200);
    assert!(!ws.plan_has_changes()?);

    // Proof that it went through Omni: with `image_factory_url` pointing elsewhere, only Omni's
    // factory receives the schematic.
    let elsewhere = Omni::start(0)?;
    let ws2 = Workspace::new(&omni)?;
    ws2.write_config(&schematic_config(
        &elsewhere.endpoint,
        "  extensions   = [\"siderolabs/qemu-guest-agent\"]\n  register_via = \"omni\"\n",
    ))?;
    ws2.apply()?;
    let id = resource_values(&ws2.state()?, "omni_schematic.this")?["id"]
        .as_str()
        .context("id")?
        .to_string();
    assert_eq!(http(&f, "GET", &format!("/schematics/{id}"), "")?.0, 200);
    assert_eq!(
        http(&elsewhere.endpoint, "GET", &format!("/schematics/{id}"), "")?.0,
        404
    );
    Ok(())
}

#[test]
fn bad_inputs_fail_at_plan_naming_the_attribute() -> Result<()> {
    let omni = Omni::start(0)?;
    let f = omni.endpoint.clone();
    // Terraform maps an attribute path to a configuration range only down to top-level
    // attributes, so the nested `overlay.options` case is matched by its text.
    let cases: &[(&str, &str, Option<&str>)] = &[
        (
            "schematic = \"{}\"\n  extensions = [\"siderolabs/iscsi-tools\"]",
            "Conflicting schematic styles",
            Some("schematic"),
        ),
        (
            "schematic = \"customisation: {}\"",
            "field customisation not found in type schematic.Schematic",
            Some("schematic"),
        ),
        ("meta = { \"256\" = \"x\" }", "META key", Some("meta")),
        (
            "bootloader = \"auto\"",
            "Invalid bootloader",
            Some("bootloader"),
        ),
        (
            "register_via = \"email\"",
            "register_via",
            Some("register_via"),
        ),
        (
            "talos_version = \"latest\"",
            "not a Talos version",
            Some("talos_version"),
        ),
        (
            "platform = \"amiga\"",
            "not a Talos platform",
            Some("platform"),
        ),
        ("architecture = \"riscv64\"", "amd64", Some("architecture")),
        (
            "extensions = [\"\"]",
            "must not be empty",
            Some("extensions"),
        ),
        (
            "overlay = {\n    name    = \"rpi_generic\"\n    options = \"- not a mapping\"\n  }",
            "overlay.options",
            None,
        ),
    ];
    let ws = Workspace::new(&omni)?;
    let mut failures = Vec::new();
    for (body, pattern, attr) in cases {
        ws.write_config(&format!(
            "{}\nresource \"omni_schematic\" \"bad\" {{\n  {body}\n}}\n",
            provider(&f)
        ))?;
        let diags = ws.plan_expect_error()?;
        // The harness's attribute check also accepts the resource address, which contains
        // "schematic"; here the highlighted source line itself must be the attribute's.
        let at_line = |d: &Value| {
            attr.is_none_or(|a| {
                d["snippet"]["code"]
                    .as_str()
                    .is_some_and(|c| c.trim_start().starts_with(a))
            })
        };
        let matching: Vec<Value> = diags.iter().filter(|d| at_line(d)).cloned().collect();
        if !has_diagnostic(&matching, pattern, None) {
            failures.push(format!(
                "{body}: expected /{pattern}/ at {attr:?}, got {diags:#?}"
            ));
        }
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("\n\n"));
    }
    Ok(())
}

/// Every conformance vector through the Terraform function: accepted inputs as outputs (known
/// at plan time), rejected ones as function errors carrying the factory's reason.
#[test]
fn schematic_id_function_reproduces_every_conformance_vector() -> Result<()> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/schematic-vectors.json");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let doc: Value = serde_json::from_str(&text)?;
    let vectors = doc["vectors"].as_array().context("vectors")?.clone();
    anyhow::ensure!(!vectors.is_empty());
    let omni = Omni::start(0)?;
    let ws = Workspace::new(&omni)?;
    // The inputs go through a JSON file so every byte reaches the function unchanged.
    let inputs: Vec<&str> = vectors
        .iter()
        .map(|v| v["input"].as_str().unwrap_or_default())
        .collect();
    std::fs::write(
        ws.path().join("inputs.json"),
        serde_json::to_string(&inputs)?,
    )?;
    let mut outputs = String::new();
    let mut expected = Vec::new();
    for (i, v) in vectors.iter().enumerate() {
        if let Some(id) = v["id"].as_str() {
            outputs.push_str(&format!(
                "output \"v{i}\" {{\n  value = provider::omni::schematic_id(local.inputs[{i}])\n}}\n"
            ));
            expected.push((
                i,
                id.to_string(),
                v["name"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    ws.write_config(&format!(
        "locals {{\n  inputs = jsondecode(file(\"${{path.module}}/inputs.json\"))\n}}\n\n{outputs}"
    ))?;
    let plan = ws.plan_json()?;
    for (i, id, name) in &expected {
        assert_eq!(
            plan["planned_values"]["outputs"][format!("v{i}")]["value"],
            Value::String(id.clone()),
            "vector {name}"
        );
    }
    let mut rejected = 0;
    for (i, v) in vectors.iter().enumerate() {
        let Some(err) = v["error_v4"].as_str() else {
            continue;
        };
        ws.write_config(&format!(
            "locals {{\n  inputs = jsondecode(file(\"${{path.module}}/inputs.json\"))\n}}\n\noutput \"bad\" {{\n  value = provider::omni::schematic_id(local.inputs[{i}])\n}}\n"
        ))?;
        let diags = ws.plan_expect_error()?;
        assert!(
            has_diagnostic(&diags, &regex::escape(err), None),
            "vector {}: {diags:#?}",
            v["name"]
        );
        rejected += 1;
    }
    assert_eq!(expected.len() + rejected, vectors.len());
    Ok(())
}

/// A factory that answers every `POST /schematics` with a fixed ID, as a factory release that
/// encodes schematics differently would (§2.5).
fn skewed_factory(id: &'static str) -> Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the head, then as many body bytes as Content-Length says.
            let body_needed = loop {
                let Ok(n) = s.read(&mut chunk) else {
                    break None;
                };
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    break Some(len.saturating_sub(body.len()));
                }
            };
            let mut left = body_needed.unwrap_or(0);
            while left > 0 {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => left = left.saturating_sub(n),
                }
            }
            let body = format!("{{\"id\":\"{id}\"}}\n");
            let _ = write!(
                s,
                "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Ok(format!("http://{addr}"))
}

#[test]
fn a_factory_assigning_another_id_fails_the_apply() -> Result<()> {
    let omni = Omni::start(0)?;
    let other = "ffdc59f4fd5b62784876a03c3e31a81fbfecc871eaa7f27aca33b9f5ff1ec96e";
    let f = skewed_factory(other)?;
    let ws = Workspace::new(&omni)?;
    ws.write_config(&schematic_config(
        &f,
        "  extensions = [\"siderolabs/iscsi-tools\", \"siderolabs/util-linux-tools\"]\n",
    ))?;
    let diags = ws.apply_expect_error()?;
    assert!(
        has_diagnostic(
            &diags,
            &format!(
                "different schematic ID.*{V8}.*{}.*{other}",
                regex::escape(&f)
            ),
            None
        ),
        "{diags:#?}"
    );
    assert!(!ws.state_file_text().contains(other));
    Ok(())
}

#[test]
fn extensions_and_overlays_missing_for_the_talos_version_are_plan_warnings() -> Result<()> {
    let omni = Omni::start(0)?;
    let f = omni.endpoint.clone();
    let ws = Workspace::new(&omni)?;
    ws.write_config(&schematic_config(&f, "  extensions    = [\"siderolabs/iscsi-tools\", \"siderolabs/no-such-extension\"]\n  overlay       = { name = \"no-such-board\" }\n  talos_version = \"v1.13.9\"\n"))?;
    let run = ws.run(&["plan", "-input=false", "-json"])?;
    assert_eq!(
        run.status, 0,
        "warnings must not fail the plan: {}",
        run.stdout
    );
    let warnings: Vec<Value> = run
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "diagnostic" && v["diagnostic"]["severity"] == "warning")
        .map(|v| v["diagnostic"].clone())
        .collect();
    assert!(
        has_diagnostic(
            &warnings,
            r"does not list .{1,2}siderolabs/no-such-extension.{1,3}for Talos v1\.13\.9",
            None
        ),
        "{warnings:#?}"
    );
    assert!(
        !has_diagnostic(&warnings, "siderolabs/iscsi-tools", None),
        "a listed extension must not warn: {warnings:#?}"
    );
    assert!(
        has_diagnostic(&warnings, "overlay .{1,2}no-such-board", None),
        "{warnings:#?}"
    );
    Ok(())
}

/// §2.5: a whole string like `off` is quoted differently by factory releases, so the ID is the
/// factory's; once applied, re-plans keep it instead of replacing forever.
#[test]
fn factory_dependent_schematic_takes_the_factorys_id_and_then_stays_put() -> Result<()> {
    let omni = Omni::start(0)?;
    let f = omni.endpoint.clone();
    let ws = Workspace::new(&omni)?;
    ws.write_config(&schematic_config(&f, "  extra_kernel_args = [\"off\"]\n"))?;
    let plan = ws.plan_json()?;
    let (_, unknown) = planned_change(&plan, "omni_schematic.this")?;
    assert_eq!(unknown["id"], true, "the ID is the factory's to decide");
    ws.apply()?;
    let v = resource_values(&ws.state()?, "omni_schematic.this")?;
    let id = v["id"].as_str().context("id")?;
    assert_eq!(http(&f, "GET", &format!("/schematics/{id}"), "")?.0, 200);
    assert!(!ws.plan_has_changes()?, "the applied ID must be kept");
    Ok(())
}
