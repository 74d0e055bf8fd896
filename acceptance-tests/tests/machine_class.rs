//! `omni_machine_class` with the real terraform against the emulator (or a real Omni).

use acceptance_tests::oob::OutOfBand;
use acceptance_tests::{
    assert_plan_errors, has_diagnostic, import_verify, planned_actions, resource_values, Omni,
    PlanErrorCase, Workspace,
};
use anyhow::Result;
use omni_client::resources::{annotations, MachineClass};

const ADDR: &str = "omni_machine_class.c";

fn class_config(name: &str, selectors: &[&str]) -> String {
    format!(
        "resource \"omni_machine_class\" \"c\" {{\n  name         = \"{name}\"\n  match_labels = {}\n}}\n",
        serde_json::to_string(selectors).unwrap()
    )
}

fn server_selectors(oob: &OutOfBand, id: &str) -> Result<Vec<String>> {
    Ok(oob
        .run(oob.api::<MachineClass>().get(id))?
        .spec
        .match_labels)
}

#[test]
fn machine_class_lifecycle() -> Result<()> {
    let omni = Omni::start(0)?;
    let oob = OutOfBand::new(&omni)?;
    let ws = Workspace::new(&omni)?;

    let first = ["omni.sidero.dev/arch = amd64, omni.sidero.dev/cores >= 4"];
    let config = class_config("big", &first);
    ws.write_config(&config)?;
    ws.apply()?;
    assert_eq!(resource_values(&ws.state()?, ADDR)?["id"], "big");
    let obj = oob.run(oob.api::<MachineClass>().get("big"))?;
    assert_eq!(obj.spec.match_labels, first);
    assert!(obj.spec.auto_provision.is_none());
    assert_eq!(
        obj.metadata
            .annotations
            .get(annotations::MANAGED_BY_GITOPS_TOOLS)
            .map(String::as_str),
        Some("Terraform")
    );
    assert!(!ws.plan_has_changes()?);
    import_verify(
        &omni,
        &config,
        ADDR,
        "big",
        &resource_values(&ws.state()?, ADDR)?,
        &["timeouts"],
    )?;

    // Update in place.
    let second = [first[0], "omni.sidero.dev/mem>=16GiB"];
    ws.write_config(&class_config("big", &second))?;
    assert_eq!(planned_actions(&ws.plan_json()?, ADDR), ["update"]);
    ws.apply()?;
    assert_eq!(server_selectors(&oob, "big")?, second);
    assert!(!ws.plan_has_changes()?);

    // Drift: a selector edited out of band.
    oob.run(oob.api::<MachineClass>().update("big", |o| {
        o.spec.match_labels = vec!["omni.sidero.dev/arch = arm64".into()]
    }))?;
    assert!(
        ws.plan_has_changes()?,
        "an out-of-band selector change must be drift"
    );
    ws.apply()?;
    assert_eq!(server_selectors(&oob, "big")?, second);

    // Replace: the name is the ID.
    ws.write_config(&class_config("bigger", &second))?;
    assert_eq!(
        planned_actions(&ws.plan_json()?, ADDR),
        ["delete", "create"]
    );
    ws.apply()?;
    assert!(oob.exists::<MachineClass>("bigger")?);
    assert!(!oob.exists::<MachineClass>("big")?);

    // Deleted out of band: re-created.
    oob.delete::<MachineClass>("bigger")?;
    assert_eq!(planned_actions(&ws.plan_json()?, ADDR), ["create"]);
    ws.apply()?;
    assert_eq!(server_selectors(&oob, "bigger")?, second);

    ws.destroy()?;
    assert!(!oob.exists::<MachineClass>("bigger")?);
    Ok(())
}

#[test]
fn auto_provision_errors_surface_from_omni() -> Result<()> {
    // The emulator runs no infrastructure provider, so Omni's own refusal must come back on
    // `auto_provision` at apply (omni-api.md §4 "MachineClass").
    let omni = Omni::start(0)?;
    if !omni.is_emulator() {
        return Ok(());
    }
    let ws = Workspace::new(&omni)?;
    ws.write_config(
        r#"resource "omni_machine_class" "c" {
  name = "cloud"
  auto_provision {
    provider_id = "kubevirt"
    kernel_args = ["console=ttyS0"]
    meta_values = [{ key = 12, value = "x" }]
    grpc_tunnel = "enabled"
  }
}
"#,
    )?;
    let plan = ws.plan_json()?;
    assert_eq!(planned_actions(&plan, ADDR), ["create"]);
    let diags = ws.apply_expect_error()?;
    assert!(
        has_diagnostic(&diags, "kubevirt", Some("provider_id")),
        "{diags:#?}"
    );
    Ok(())
}

#[test]
fn bad_inputs_fail_at_plan_with_the_attribute() -> Result<()> {
    let omni = Omni::start(0)?;
    let ws = Workspace::new(&omni)?;
    let cases: Vec<PlanErrorCase> = vec![
        (
            "unclosed set",
            "resource \"omni_machine_class\" \"c\" {\n  name = \"c\"\n  match_labels = [\n    \"omni.sidero.dev/arch=amd64\",\n    \"zone in (a, b\",\n  ]\n}\n".into(),
            "not a valid label selector",
            Some("zone in"),
        ),
        (
            "reserved label",
            class_config("c", &["omni.sidero.dev/no-manual-allocation"]),
            "reserved label",
            Some("match_labels"),
        ),
        (
            "neither selectors nor provision",
            class_config("c", &[]),
            "needs either",
            Some("match_labels"),
        ),
        (
            "both",
            "resource \"omni_machine_class\" \"c\" {\n  name = \"c\"\n  match_labels = [\"a=b\"]\n  auto_provision {\n    provider_id = \"p\"\n  }\n}\n".into(),
            "both",
            Some("match_labels"),
        ),
        (
            "bad tunnel mode",
            "resource \"omni_machine_class\" \"c\" {\n  name = \"c\"\n  auto_provision {\n    provider_id = \"p\"\n    grpc_tunnel = \"sometimes\"\n  }\n}\n".into(),
            "sometimes",
            Some("grpc_tunnel"),
        ),
    ];
    assert_plan_errors(&ws, cases)
}
