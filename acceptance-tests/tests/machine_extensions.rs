//! `omni_machine_extensions` with the real terraform against the emulator (or a real Omni).

use acceptance_tests::oob::OutOfBand;
use acceptance_tests::{
    assert_plan_errors, has_diagnostic, import_verify, planned_actions, resource_values, Omni,
    PlanErrorCase, Workspace,
};
use anyhow::{Context, Result};
use omni_client::resources::{labels, ExtensionsConfiguration, TalosExtensions};
use omni_client::{LabelQuery, ListParams};

const ADDR: &str = "omni_machine_extensions.e";

fn ext_config(selector: &str, extensions: &[&str]) -> String {
    format!(
        "resource \"omni_machine_extensions\" \"e\" {{\n  cluster    = \"lab\"\n{selector}  extensions = {}\n}}\n",
        serde_json::to_string(extensions).unwrap()
    )
}

/// Two extensions the catalogue offers for `talos`.
fn two_extensions(oob: &OutOfBand, talos: &str) -> Result<(String, String)> {
    let cat = oob.run(oob.api::<TalosExtensions>().get(talos))?;
    let mut names = cat.spec.items.into_iter().map(|i| i.name);
    let a = names.next().context("empty extension catalogue")?;
    let b = names
        .next()
        .context("one extension only in the catalogue")?;
    Ok((a, b))
}

fn server_list(oob: &OutOfBand, id: &str) -> Result<Vec<String>> {
    let mut l = oob
        .run(oob.api::<ExtensionsConfiguration>().get(id))?
        .spec
        .extensions;
    l.sort();
    Ok(l)
}

#[test]
fn extensions_lifecycle() -> Result<()> {
    let omni = Omni::start(0)?;
    let oob = OutOfBand::new(&omni)?;
    let talos = oob.create_cluster("lab")?;
    let set = oob.create_worker_set("lab", "workers")?;
    let (a, b) = two_extensions(&oob, &talos)?;
    let ws = Workspace::new(&omni)?;

    let config = ext_config("", &[&a]);
    ws.write_config(&config)?;
    ws.apply()?;
    assert_eq!(resource_values(&ws.state()?, ADDR)?["id"], "schematic-lab");
    let obj = oob.run(oob.api::<ExtensionsConfiguration>().get("schematic-lab"))?;
    assert_eq!(obj.spec.extensions, std::slice::from_ref(&a));
    let scope: Vec<_> = obj
        .metadata
        .labels
        .iter()
        .filter(|(k, _)| k.starts_with(labels::PREFIX))
        .collect();
    assert_eq!(scope, [(&labels::CLUSTER.to_string(), &"lab".to_string())]);
    assert!(!ws.plan_has_changes()?);
    import_verify(
        &omni,
        &config,
        ADDR,
        "schematic-lab",
        &resource_values(&ws.state()?, ADDR)?,
        &["timeouts"],
    )?;

    // Update in place (order in the configuration does not matter: it is a set).
    let config = ext_config("", &[&b, &a]);
    ws.write_config(&config)?;
    assert_eq!(planned_actions(&ws.plan_json()?, ADDR), ["update"]);
    ws.apply()?;
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(server_list(&oob, "schematic-lab")?, both);
    assert!(!ws.plan_has_changes()?);

    // Drift: the list changed out of band; the same list reordered is not drift.
    oob.run(
        oob.api::<ExtensionsConfiguration>()
            .update("schematic-lab", |o| {
                o.spec.extensions.reverse();
            }),
    )?;
    assert!(!ws.plan_has_changes()?, "order is not drift");
    oob.run(
        oob.api::<ExtensionsConfiguration>()
            .update("schematic-lab", |o| {
                o.spec.extensions.pop();
            }),
    )?;
    assert!(ws.plan_has_changes()?, "a removed extension must be drift");
    ws.apply()?;
    assert_eq!(server_list(&oob, "schematic-lab")?, both);

    // Replace: a machine-set scope is another object.
    let selector = format!("  selector {{\n    machine_set = \"{set}\"\n  }}\n");
    let config = ext_config(&selector, &[&a]);
    ws.write_config(&config)?;
    assert_eq!(
        planned_actions(&ws.plan_json()?, ADDR),
        ["delete", "create"]
    );
    ws.apply()?;
    assert!(!oob.exists::<ExtensionsConfiguration>("schematic-lab")?);
    let obj = oob.run(
        oob.api::<ExtensionsConfiguration>()
            .get("schematic-lab-workers"),
    )?;
    assert_eq!(obj.metadata.labels.get(labels::MACHINE_SET), Some(&set));
    assert_eq!(
        obj.metadata.labels.get(labels::CLUSTER).map(String::as_str),
        Some("lab")
    );
    import_verify(
        &omni,
        &config,
        ADDR,
        "schematic-lab-workers",
        &resource_values(&ws.state()?, ADDR)?,
        &["timeouts"],
    )?;

    // Deleted out of band: re-created.
    oob.delete::<ExtensionsConfiguration>("schematic-lab-workers")?;
    assert_eq!(planned_actions(&ws.plan_json()?, ADDR), ["create"]);
    ws.apply()?;
    assert!(oob.exists::<ExtensionsConfiguration>("schematic-lab-workers")?);

    ws.destroy()?;
    let left = oob
        .run(oob.api::<ExtensionsConfiguration>().list(
            &ListParams::default().labels(LabelQuery::new().equal(labels::CLUSTER, "lab")),
        ))?;
    assert!(
        left.is_empty(),
        "left behind: {:?}",
        left.iter().map(|o| o.id()).collect::<Vec<_>>()
    );
    Ok(())
}

#[test]
fn unavailable_extensions_are_refused_on_extensions() -> Result<()> {
    let omni = Omni::start(0)?;
    let oob = OutOfBand::new(&omni)?;
    let talos = oob.create_cluster("lab")?;
    let (a, _) = two_extensions(&oob, &talos)?;
    let ws = Workspace::new(&omni)?;

    // The cluster exists: caught while planning.
    ws.write_config(&ext_config("", &[&a, "siderolabs/no-such-extension"]))?;
    let diags = ws.plan_expect_error()?;
    assert!(
        has_diagnostic(&diags, "no-such-extension", Some("extensions")),
        "{diags:#?}"
    );

    // The cluster name is only known at apply: Terraform plans again once it is known, and the
    // check fires then, still on `extensions`.
    ws.write_config(&format!(
        r#"
resource "terraform_data" "cluster" {{
  input = "lab"
}}

resource "omni_machine_extensions" "e" {{
  cluster    = terraform_data.cluster.output
  extensions = ["{a}", "siderolabs/no-such-extension"]
}}
"#
    ))?;
    let diags = ws.apply_expect_error()?;
    assert!(
        has_diagnostic(&diags, "ot available for Talos", Some("extensions")),
        "{diags:#?}"
    );
    assert!(!oob.exists::<ExtensionsConfiguration>("schematic-lab")?);
    Ok(())
}

#[test]
fn omnis_refusal_at_apply_names_the_attribute() -> Result<()> {
    // Terraform re-plans during apply, so unknown extensions are always caught by the plan
    // check above. A missing cluster is only Omni's to refuse (omni-api.md §4
    // "ExtensionsConfiguration": a non-empty list needs an existing cluster).
    let omni = Omni::start(0)?;
    let oob = OutOfBand::new(&omni)?;
    let ws = Workspace::new(&omni)?;
    ws.write_config(&ext_config("", &["siderolabs/gvisor"]).replace("\"lab\"", "\"ghost\""))?;
    let diags = ws.apply_expect_error()?;
    assert!(
        has_diagnostic(&diags, "ghost.* does not exist", Some("cluster")),
        "{diags:#?}"
    );
    assert!(!oob.exists::<ExtensionsConfiguration>("schematic-ghost")?);
    Ok(())
}

#[test]
fn bad_inputs_fail_at_plan_with_the_attribute() -> Result<()> {
    let omni = Omni::start(0)?;
    let ws = Workspace::new(&omni)?;
    let cases: Vec<PlanErrorCase> = vec![
        (
            "malformed name",
            ext_config("", &["siderolabs/iscsi tools"]),
            "not an extension name",
            Some("extensions"),
        ),
        (
            "two slashes",
            ext_config("", &["a/b/c"]),
            "not an extension name",
            Some("extensions"),
        ),
        (
            "duplicate after the default owner",
            ext_config("", &["iscsi-tools", "siderolabs/iscsi-tools"]),
            "listed twice",
            Some("extensions"),
        ),
        (
            "two selectors",
            ext_config(
                "  selector {\n    machine_set     = \"lab-workers\"\n    cluster_machine = \"u\"\n  }\n",
                &["siderolabs/gvisor"],
            ),
            "at most one",
            Some("cluster_machine = "),
        ),
        (
            "machine set of another cluster",
            ext_config(
                "  selector {\n    machine_set = \"prod-workers\"\n  }\n",
                &["siderolabs/gvisor"],
            ),
            "start with",
            Some("machine_set"),
        ),
    ];
    assert_plan_errors(&ws, cases)
}
