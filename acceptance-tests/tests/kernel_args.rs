//! `omni_kernel_args`: create, import-verify, update in place, replace, drift, re-create after
//! an out-of-band delete, adoption of Omni's own object (restored on destroy), destroy, and
//! the plan-time limits of omni-api.md §4.

mod oob;

use acceptance_tests::{has_diagnostic, planned_actions, resource_values, Omni, Workspace};
use anyhow::Result;
use omni_client::omni_api::specs;
use omni_client::resources::KernelArgs;
use omni_client::Object;

fn server_args(omni: &Omni, id: &str) -> Result<Option<Vec<String>>> {
    oob::with_api::<KernelArgs, _, _, _>(omni, |api| async move {
        Ok(api.get_opt(id).await?.map(|o| o.spec.args))
    })
}

fn config(machine: &str, args: &[&str]) -> String {
    let list: Vec<String> = args.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "resource \"omni_kernel_args\" \"k\" {{\n  machine_id = \"{machine}\"\n  args       = [{}]\n}}\n",
        list.join(", ")
    )
}

#[test]
fn lifecycle() -> Result<()> {
    let omni = Omni::start(2)?;
    let ids = oob::machine_ids(&omni)?;
    let (m0, m1) = (ids[0].as_str(), ids[1].as_str());
    let ws = Workspace::new(&omni)?;

    ws.write_config(&config(m0, &["console=ttyS0"]))?;
    ws.apply()?;
    assert_eq!(
        server_args(&omni, m0)?,
        Some(vec!["console=ttyS0".to_string()])
    );
    let v = resource_values(&ws.state()?, "omni_kernel_args.k")?;
    assert_eq!(v["id"], m0);
    assert!(!ws.plan_has_changes()?, "empty re-plan");

    // Import-verify in a fresh workspace.
    let ws2 = Workspace::new(&omni)?;
    ws2.write_config(&config(m0, &["console=ttyS0"]))?;
    ws2.import("omni_kernel_args.k", m0)?;
    assert!(!ws2.plan_has_changes()?, "import-verify");

    // Update in place (order matters: it is a list).
    ws.write_config(&config(m0, &["net.ifnames=0", "console=ttyS0"]))?;
    assert_eq!(
        planned_actions(&ws.plan_json()?, "omni_kernel_args.k"),
        ["update"]
    );
    ws.apply()?;
    assert_eq!(
        server_args(&omni, m0)?,
        Some(vec![
            "net.ifnames=0".to_string(),
            "console=ttyS0".to_string()
        ])
    );

    // Out-of-band change: drift.
    oob::with_api::<KernelArgs, _, _, _>(&omni, |api| async move {
        api.update(m0, |o| o.spec.args = vec!["quiet".into()])
            .await?;
        Ok(())
    })?;
    assert!(ws.plan_has_changes()?, "drift shows in plan");
    ws.apply()?;
    assert_eq!(server_args(&omni, m0)?.unwrap().len(), 2);

    // Out-of-band delete: planned for creation, re-created.
    oob::with_api::<KernelArgs, _, _, _>(&omni, |api| async move {
        api.teardown_and_destroy(m0).await?;
        Ok(())
    })?;
    assert_eq!(
        planned_actions(&ws.plan_json()?, "omni_kernel_args.k"),
        ["create"]
    );
    ws.apply()?;
    assert!(server_args(&omni, m0)?.is_some());

    // Another machine: replace (the old machine's args are removed).
    ws.write_config(&config(m1, &["console=ttyS0"]))?;
    let actions = planned_actions(&ws.plan_json()?, "omni_kernel_args.k");
    assert!(actions.contains(&"delete".to_string()) && actions.contains(&"create".to_string()));
    ws.apply()?;
    assert_eq!(server_args(&omni, m0)?, None);
    assert_eq!(
        server_args(&omni, m1)?,
        Some(vec!["console=ttyS0".to_string()])
    );

    ws.destroy()?;
    assert_eq!(server_args(&omni, m1)?, None, "nothing of ours left");
    Ok(())
}

#[test]
fn omnis_own_kernel_args_are_adopted_and_restored() -> Result<()> {
    let omni = Omni::start(1)?;
    let m = oob::machine_ids(&omni)?.remove(0);
    // Omni recorded the args the machine booted with.
    let id = m.clone();
    oob::with_api::<KernelArgs, _, _, _>(&omni, |api| async move {
        api.create(Object::new(
            id,
            specs::KernelArgsSpec {
                args: vec!["talos.dashboard.disabled=1".into()],
            },
        ))
        .await?;
        Ok(())
    })?;
    let ws = Workspace::new(&omni)?;
    ws.write_config(&config(&m, &["console=ttyS0"]))?;
    ws.apply()?; // no AlreadyExists
    assert_eq!(
        server_args(&omni, &m)?,
        Some(vec!["console=ttyS0".to_string()])
    );
    assert!(!ws.plan_has_changes()?);
    ws.destroy()?;
    assert_eq!(
        server_args(&omni, &m)?,
        Some(vec!["talos.dashboard.disabled=1".to_string()]),
        "destroy gives Omni back what it had"
    );
    Ok(())
}

#[test]
fn limits_fail_at_plan_time() -> Result<()> {
    let omni = Omni::start(1)?;
    let ws = Workspace::new(&omni)?;
    let long = "x".repeat(257);
    let many: Vec<String> = (0..65).map(|i| format!("a{i}=1")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (many, "Too many kernel arguments"),
        (vec!["ok=1", long.as_str()], "Kernel argument too long"),
        (vec!["a\\tb"], "Invalid kernel argument"),
        (vec![""], "Empty kernel argument"),
    ];
    for (args, summary) in cases {
        ws.write_config(&config("m", &args))?;
        let diags = ws.plan_expect_error()?;
        assert!(
            has_diagnostic(&diags, summary, Some("args")),
            "{summary}: {diags:#?}"
        );
    }
    Ok(())
}
