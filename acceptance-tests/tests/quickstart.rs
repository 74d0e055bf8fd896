//! `examples/quickstart` applied as a user would: apply, outputs, empty re-plan, Omni holds what
//! the state says, destroy leaves nothing of ours behind.

mod omni_view;

use acceptance_tests::examples::{all_resources, outputs, use_example};
use acceptance_tests::{Omni, Workspace};
use omni_client::resources::{
    Cluster, ConfigPatch, ExtensionsConfiguration, MachineClass, MachineSet,
};
use std::time::Instant;

#[test]
fn quickstart_applies_replans_empty_and_destroys_cleanly() -> anyhow::Result<()> {
    // 1 control plane + 2 workers out of 6 machines.
    let omni = Omni::start(6)?;
    let ws = Workspace::new(&omni)?;
    use_example(&ws, &omni, "quickstart")?;

    println!("tried: terraform apply of examples/quickstart");
    let t = Instant::now();
    ws.apply()?;
    println!("found: apply complete in {:.1}s", t.elapsed().as_secs_f64());

    let out = outputs(&ws)?;
    println!("found: outputs {out}");
    assert_eq!(out["cluster_id"], "quickstart");
    assert_eq!(
        out["cluster_ready"], true,
        "the status output waits for ready"
    );
    assert_eq!(out["cluster_phase"], "RUNNING");
    assert_eq!(out["machines"]["total"], 3, "1 control plane + 2 workers");
    let schematic = out["schematic_id"].as_str().unwrap_or_default().to_string();
    assert!(
        schematic.len() == 64 && schematic.chars().all(|c| c.is_ascii_hexdigit()),
        "schematic_id is a SHA-256: {schematic:?}"
    );
    let installer = out["installer_image"].as_str().unwrap_or_default();
    assert!(
        installer.contains(&schematic) && installer.ends_with(":v1.13.9"),
        "installer image names the schematic and the Talos version: {installer:?}"
    );

    println!("tried: terraform plan -detailed-exitcode right after apply");
    let changes = ws.plan_has_changes()?;
    println!("found: plan has changes = {changes}");
    assert!(!changes, "a fresh apply re-plans empty");

    if omni.is_emulator() {
        // Omni holds exactly what the state lists.
        let state = ws.state()?;
        let ids_of = |ty: &str| -> Vec<String> {
            let mut v: Vec<String> = all_resources(&state)
                .into_iter()
                .filter(|(_, t, _)| t == ty)
                .map(|(_, _, v)| v["id"].as_str().unwrap_or_default().to_string())
                .collect();
            v.sort();
            v
        };
        assert_eq!(omni_view::ids::<Cluster>(&omni)?, ids_of("omni_cluster"));
        assert_eq!(
            omni_view::ids::<MachineSet>(&omni)?,
            ids_of("omni_machine_set")
        );
        assert_eq!(
            omni_view::ids::<MachineClass>(&omni)?,
            ids_of("omni_machine_class")
        );
        assert_eq!(
            omni_view::ids_with_prefix::<ConfigPatch>(&omni, "200-cluster-quickstart")?,
            ids_of("omni_config_patch")
        );
        println!("found: Omni's clusters, machine sets, classes and patches equal the state");
    }

    println!("tried: terraform destroy");
    ws.destroy()?;
    let left = all_resources(&ws.state()?);
    assert!(left.is_empty(), "state after destroy: {left:?}");
    if omni.is_emulator() {
        let leftovers = [
            omni_view::ids::<Cluster>(&omni)?,
            omni_view::ids::<MachineSet>(&omni)?,
            omni_view::ids::<MachineClass>(&omni)?,
            omni_view::ids_with_prefix::<ConfigPatch>(&omni, "200-cluster-quickstart")?,
            omni_view::ids_with_prefix::<ExtensionsConfiguration>(&omni, "schematic-quickstart")?,
        ]
        .concat();
        println!("found: objects left in Omni after destroy: {leftovers:?}");
        assert!(leftovers.is_empty());
    }
    Ok(())
}
