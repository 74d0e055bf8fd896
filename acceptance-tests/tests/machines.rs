//! `omni_machines` and `omni_machine` against the emulator's seeded machines: selector and
//! convenience filters, an empty result, one machine by ID, and plan-time selector errors.

mod oob;

use acceptance_tests::{has_diagnostic, resource_values, Omni, Workspace};
use anyhow::Result;
use serde_json::Value;

fn ids(v: &Value) -> Vec<String> {
    v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn filters_empty_result_and_single_machine() -> Result<()> {
    let omni = Omni::start(4)?;
    let all_ids = oob::machine_ids(&omni)?;
    assert_eq!(all_ids.len(), 4);
    // Put the first machine into a cluster so `available` and `cluster` have something to split.
    oob::create_cluster(&omni, "lab", &all_ids[..1])?;

    let ws = Workspace::new(&omni)?;
    ws.write_config(&format!(
        r#"
data "omni_machines" "all" {{}}
data "omni_machines" "amd64_big" {{
  selector = "omni.sidero.dev/arch = amd64, omni.sidero.dev/cores >= 1"
}}
data "omni_machines" "none" {{
  selector = "team = nobody"
}}
data "omni_machines" "free" {{
  available = true
}}
data "omni_machines" "in_lab" {{
  cluster = "lab"
}}
data "omni_machine" "first" {{
  id = "{first}"
}}
"#,
        first = all_ids[0]
    ))?;
    // The allocation takes a few controller steps; the data sources are re-read every apply.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let state = loop {
        ws.apply()?;
        let state = ws.state()?;
        let lab = resource_values(&state, "data.omni_machines.in_lab")?;
        if !ids(&lab).is_empty() || std::time::Instant::now() > deadline {
            break state;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };

    let all = resource_values(&state, "data.omni_machines.all")?;
    assert_eq!(ids(&all), all_ids, "every machine, sorted by ID");
    let machines = all["machines"].as_array().unwrap();
    for m in machines {
        assert!(m["hostname"].as_str().is_some_and(|h| !h.is_empty()), "{m}");
        assert!(m["cores"].as_i64().unwrap() > 0);
        assert!(m["memory"].as_i64().unwrap() > 0);
        assert!(!m["disks"].as_array().unwrap().is_empty());
        assert!(!m["addresses"].as_array().unwrap().is_empty());
        assert!(m["talos_version"]
            .as_str()
            .is_some_and(|v| !v.starts_with('v')));
        assert_eq!(m["platform"], "metal");
        assert!(m["labels"]["omni.sidero.dev/arch"].is_string());
    }

    // The selector applies Omni's label semantics: recompute the expectation from the labels.
    let expected_amd64: Vec<String> = machines
        .iter()
        .filter(|m| m["arch"] == "amd64")
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    let amd = resource_values(&state, "data.omni_machines.amd64_big")?;
    assert_eq!(ids(&amd), expected_amd64);

    let none = resource_values(&state, "data.omni_machines.none")?;
    assert_eq!(ids(&none), Vec::<String>::new());
    assert_eq!(none["machines"], serde_json::json!([]));

    let lab = resource_values(&state, "data.omni_machines.in_lab")?;
    assert_eq!(ids(&lab), vec![all_ids[0].clone()]);
    assert_eq!(lab["machines"][0]["cluster"], "lab");
    assert_eq!(lab["machines"][0]["role"], "controlplane");

    let free = resource_values(&state, "data.omni_machines.free")?;
    assert_eq!(ids(&free), all_ids[1..].to_vec());

    let first = resource_values(&state, "data.omni_machine.first")?;
    assert_eq!(first["id"], all_ids[0].as_str());
    assert_eq!(first["hostname"], machines[0]["hostname"]);
    assert_eq!(first["cluster"], "lab");

    // A re-plan reads the same data: nothing to do.
    assert!(!ws.plan_has_changes()?);
    Ok(())
}

#[test]
fn bad_selector_and_unknown_machine_fail_at_the_attribute() -> Result<()> {
    let omni = Omni::start(1)?;
    let ws = Workspace::new(&omni)?;
    for bad in ["a in (b", "a b", "=x", "a notin b"] {
        ws.write_config(&format!(
            "data \"omni_machines\" \"bad\" {{\n  selector = \"{bad}\"\n}}\n"
        ))?;
        let diags = ws.plan_expect_error()?;
        assert!(
            has_diagnostic(&diags, "Invalid machine selector", Some("selector")),
            "{bad}: {diags:#?}"
        );
    }
    // `terraform validate` runs the check without any Omni call.
    let run = ws.run(&["validate", "-json"])?;
    assert_ne!(run.status, 0, "validate must fail: {}", run.stdout);
    assert!(
        run.stdout.contains("Invalid machine selector"),
        "{}",
        run.stdout
    );

    ws.write_config(
        "data \"omni_machine\" \"x\" {\n  id = \"00000000-0000-4000-8000-000000000000\"\n}\n",
    )?;
    let diags = ws.plan_expect_error()?;
    assert!(
        has_diagnostic(&diags, "Machine not found", Some("id")),
        "{diags:#?}"
    );
    Ok(())
}
