//! `examples/lab`: the lab module composed twice (two clusters side by side) is applied, re-plans
//! empty, each cluster gets exactly its own pools, and destroy removes both.

mod omni_view;

use acceptance_tests::examples::{all_resources, outputs, use_example};
use acceptance_tests::{Omni, Workspace};
use omni_client::resources::{Cluster, MachineClass, MachineSet};
use std::time::Instant;

#[test]
fn lab_builds_two_clusters_side_by_side() -> anyhow::Result<()> {
    // blue: 1 control plane + 2 workers, green: 1 control plane + 1 worker = 5 of 8 machines.
    let omni = Omni::start(8)?;
    let ws = Workspace::new(&omni)?;
    use_example(&ws, &omni, "lab")?;

    println!("tried: terraform apply of examples/lab (module omni-lab-cluster twice)");
    let t = Instant::now();
    ws.apply()?;
    println!("found: apply complete in {:.1}s", t.elapsed().as_secs_f64());

    let out = outputs(&ws)?;
    println!("found: outputs {out}");
    let blue = &out["clusters"]["blue"];
    let green = &out["clusters"]["green"];
    assert_eq!(blue["cluster_id"], "lab-blue");
    assert_eq!(green["cluster_id"], "lab-green");
    for (name, c, machines) in [("blue", blue, 3), ("green", green, 2)] {
        assert_eq!(c["status"]["ready"], true, "{name} is ready");
        assert_eq!(
            c["status"]["machines"]["total"], machines,
            "{name} machines"
        );
    }
    assert_eq!(
        blue["machine_set_ids"],
        serde_json::json!({
            "control_plane": "lab-blue-control-planes",
            "general": "lab-blue-general",
            "large": "lab-blue-large",
        })
    );
    assert_eq!(
        green["machine_set_ids"],
        serde_json::json!({
            "control_plane": "lab-green-control-planes",
            "general": "lab-green-general",
        })
    );
    // Different extension lists are different schematics.
    assert_ne!(blue["schematic_id"], green["schematic_id"]);
    for c in [blue, green] {
        let id = c["schematic_id"].as_str().unwrap_or_default();
        assert!(c["installer_image"]
            .as_str()
            .unwrap_or_default()
            .contains(id));
    }

    println!("tried: terraform plan -detailed-exitcode after apply");
    let changes = ws.plan_has_changes()?;
    println!("found: plan has changes = {changes}");
    assert!(!changes);

    if omni.is_emulator() {
        assert_eq!(omni_view::ids::<Cluster>(&omni)?, ["lab-blue", "lab-green"]);
        assert_eq!(
            omni_view::ids::<MachineSet>(&omni)?,
            [
                "lab-blue-control-planes",
                "lab-blue-general",
                "lab-blue-large",
                "lab-green-control-planes",
                "lab-green-general",
            ]
        );
        assert_eq!(omni_view::ids::<MachineClass>(&omni)?.len(), 5);
        println!("found: Omni holds both clusters with exactly their machine sets");
    }

    println!("tried: terraform destroy");
    ws.destroy()?;
    assert!(all_resources(&ws.state()?).is_empty());
    if omni.is_emulator() {
        let left = [
            omni_view::ids::<Cluster>(&omni)?,
            omni_view::ids::<MachineSet>(&omni)?,
            omni_view::ids::<MachineClass>(&omni)?,
        ]
        .concat();
        println!("found: objects left after destroy: {left:?}");
        assert!(left.is_empty());
    }
    Ok(())
}
