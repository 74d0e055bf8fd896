//! `omni_machine_labels`: adopting a MachineLabels object Omni already made (no AlreadyExists),
//! never touching labels it does not manage, update, drift, import-verify, re-create after an
//! out-of-band delete, destroy, and plan-time label checks.

mod oob;

use std::collections::BTreeMap;

use acceptance_tests::{has_diagnostic, resource_values, Omni, Workspace};
use anyhow::Result;
use omni_client::resources::MachineLabels;
use omni_client::Object;

fn server_labels(omni: &Omni, id: &str) -> Result<Option<BTreeMap<String, String>>> {
    oob::with_api::<MachineLabels, _, _, _>(omni, |api| async move {
        Ok(api.get_opt(id).await?.map(|o| o.metadata.labels))
    })
}

fn set_label(omni: &Omni, id: &str, k: &str, v: &str) -> Result<()> {
    oob::with_api::<MachineLabels, _, _, _>(omni, |api| async move {
        api.update(id, |o| {
            o.metadata.labels.insert(k.to_string(), v.to_string());
        })
        .await?;
        Ok(())
    })
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn config(m0: &str, m0_labels: &str, m1: Option<&str>) -> String {
    let mut s = format!(
        "resource \"omni_machine_labels\" \"m0\" {{\n  machine_id = \"{m0}\"\n  labels = {{\n{m0_labels}\n  }}\n}}\n"
    );
    if let Some(m1) = m1 {
        s.push_str(&format!(
            "\nresource \"omni_machine_labels\" \"m1\" {{\n  machine_id = \"{m1}\"\n  labels = {{\n    env = \"prod\"\n  }}\n}}\n"
        ));
    }
    s
}

#[test]
fn adoption_lifecycle_and_foreign_labels() -> Result<()> {
    let omni = Omni::start(2)?;
    let ids = oob::machine_ids(&omni)?;
    let (m0, m1) = (ids[0].as_str(), ids[1].as_str());

    // Omni made MachineLabels for m0 itself on first join (cloud tags): owner "", labels set.
    oob::with_api::<MachineLabels, _, _, _>(&omni, |api| async move {
        let mut o = Object::<MachineLabels>::new(m0, Default::default());
        o.metadata.labels = map(&[("cloud", "aws"), ("team", "ops")]);
        api.create(o).await?;
        Ok(())
    })?;

    let ws = Workspace::new(&omni)?;
    ws.write_config(&config(
        m0,
        "    team = \"db\"\n    tier = \"gold\"",
        Some(m1),
    ))?;
    ws.apply()?; // adoption: no AlreadyExists
    assert_eq!(
        server_labels(&omni, m0)?.unwrap(),
        map(&[("cloud", "aws"), ("team", "db"), ("tier", "gold")]),
        "the foreign label survives, ours are set"
    );
    assert_eq!(server_labels(&omni, m1)?.unwrap(), map(&[("env", "prod")]));
    let state = ws.state()?;
    let v = resource_values(&state, "omni_machine_labels.m0")?;
    assert_eq!(v["id"], m0);
    assert_eq!(
        v["labels"],
        serde_json::json!({"team": "db", "tier": "gold"})
    );
    assert!(!ws.plan_has_changes()?, "empty re-plan");

    // Update in place: drop `tier`, keep `cloud` (never ours).
    ws.write_config(&config(m0, "    team = \"db\"", Some(m1)))?;
    let plan = ws.plan_json()?;
    assert_eq!(
        acceptance_tests::planned_actions(&plan, "omni_machine_labels.m0"),
        ["update"]
    );
    ws.apply()?;
    assert_eq!(
        server_labels(&omni, m0)?.unwrap(),
        map(&[("cloud", "aws"), ("team", "db")])
    );

    // Out of band: a label we do not manage is no change; one we manage is drift.
    set_label(&omni, m0, "rack", "r12")?;
    assert!(!ws.plan_has_changes()?, "unmanaged keys are not ours");
    set_label(&omni, m0, "team", "web")?;
    assert!(
        ws.plan_has_changes()?,
        "a managed label changed outside Terraform"
    );
    ws.apply()?;
    assert_eq!(server_labels(&omni, m0)?.unwrap()["team"], "db");

    // Import-verify m1 in a fresh workspace: an empty plan.
    let ws2 = Workspace::new(&omni)?;
    ws2.write_config(&format!(
        "resource \"omni_machine_labels\" \"m1\" {{\n  machine_id = \"{m1}\"\n  labels = {{\n    env = \"prod\"\n  }}\n}}\n"
    ))?;
    ws2.import("omni_machine_labels.m1", m1)?;
    assert!(!ws2.plan_has_changes()?, "import-verify");
    // What was there at import is managed; a label somebody adds afterwards is not.
    set_label(&omni, m1, "added-later", "x")?;
    assert!(
        !ws2.plan_has_changes()?,
        "a label added after the import is not ours"
    );
    ws2.run(&["state", "rm", "omni_machine_labels.m1"])?;

    // Deleted out of band: planned for creation, then re-created.
    oob::with_api::<MachineLabels, _, _, _>(&omni, |api| async move {
        api.teardown_and_destroy(m1).await?;
        Ok(())
    })?;
    let plan = ws.plan_json()?;
    assert_eq!(
        acceptance_tests::planned_actions(&plan, "omni_machine_labels.m1"),
        ["create"]
    );
    ws.apply()?;
    assert_eq!(server_labels(&omni, m1)?.unwrap(), map(&[("env", "prod")]));

    // Destroy: the adopted object keeps what was not ours; the one we made is gone.
    ws.destroy()?;
    assert_eq!(
        server_labels(&omni, m0)?.unwrap(),
        map(&[("cloud", "aws"), ("rack", "r12")])
    );
    assert_eq!(server_labels(&omni, m1)?, None);
    Ok(())
}

#[test]
fn bad_labels_fail_at_plan_time() -> Result<()> {
    let omni = Omni::start(1)?;
    let ws = Workspace::new(&omni)?;
    for (labels, summary) in [
        ("\"omni.sidero.dev/role\" = \"x\"", "reserved prefix"),
        ("\"\" = \"x\"", "must not be empty"),
    ] {
        ws.write_config(&format!(
            "resource \"omni_machine_labels\" \"x\" {{\n  machine_id = \"m\"\n  labels = {{\n    {labels}\n  }}\n}}\n"
        ))?;
        let diags = ws.plan_expect_error()?;
        assert!(
            has_diagnostic(&diags, summary, Some("labels")),
            "{labels}: {diags:#?}"
        );
    }
    Ok(())
}

#[test]
fn omni_machines_selects_by_the_labels_set_here() -> Result<()> {
    let omni = Omni::start(3)?;
    let ids = oob::machine_ids(&omni)?;
    let ws = Workspace::new(&omni)?;
    ws.write_config(&format!(
        r#"
resource "omni_machine_labels" "db" {{
  machine_id = "{m}"
  labels = {{
    role = "database"
  }}
}}
"#,
        m = ids[1]
    ))?;
    ws.apply()?;
    // Omni copies the labels onto the machine status (a controller step), then the selector sees
    // them; the data source is read again on every apply.
    ws.write_config(&format!(
        r#"
resource "omni_machine_labels" "db" {{
  machine_id = "{m}"
  labels = {{
    role = "database"
  }}
}}

data "omni_machines" "db" {{
  selector = "role = database"
}}
"#,
        m = ids[1]
    ))?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        ws.apply()?;
        let found = resource_values(&ws.state()?, "data.omni_machines.db")?["ids"].clone();
        if found == serde_json::json!([ids[1]]) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not selected: {found}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let v = resource_values(&ws.state()?, "data.omni_machines.db")?;
    assert_eq!(v["machines"][0]["labels"]["role"], "database");
    Ok(())
}
