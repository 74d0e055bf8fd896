//! `omni_config_patch` with the real terraform against the emulator (or a real Omni).

use acceptance_tests::oob::OutOfBand;
use acceptance_tests::{
    assert_plan_errors, import_verify, planned_actions, resource_values, Omni, PlanErrorCase,
    Workspace,
};
use anyhow::Result;
use omni_client::omni_api::specs::ConfigPatchSpec;
use omni_client::resources::{annotations, labels, ConfigPatch, MachineSet};
use omni_client::{LabelQuery, ListParams};

const ADDR: &str = "omni_config_patch.p";

/// An HCL string literal (JSON string escapes are valid HCL).
fn hcl(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn patch_config(cluster: &str, extra: &str, data: &str) -> String {
    format!(
        "resource \"omni_config_patch\" \"p\" {{\n  name    = \"ntp\"\n  cluster = {}\n{extra}  data    = {}\n}}\n",
        hcl(cluster),
        hcl(data)
    )
}

const DATA_A: &str = "machine:\n  time:\n    servers:\n      - time.cloudflare.com\n";
const DATA_B: &str =
    "machine:\n  time:\n    servers:\n      - time.google.com\n  sysctls:\n    net.core.somaxconn: \"65535\"\n";
/// DATA_B with other key order, indentation, flow style and comments: the same patch.
const DATA_B_REFORMATTED: &str = "# edited by hand\nmachine:\n    sysctls: {net.core.somaxconn: \"65535\"}   # same value\n    time:\n        servers: [time.google.com]\n";
/// DATA_B with one value changed.
const DATA_B_CHANGED: &str =
    "machine:\n  time:\n    servers:\n      - time.google.com\n  sysctls:\n    net.core.somaxconn: \"1024\"\n";

fn set_server_data(oob: &OutOfBand, id: &str, data: &str) -> Result<()> {
    oob.run(oob.api::<ConfigPatch>().update(id, |o| {
        o.spec = ConfigPatchSpec {
            data: data.to_string(),
            ..Default::default()
        };
    }))?;
    Ok(())
}

fn patches_of(oob: &OutOfBand, cluster: &str) -> Result<Vec<String>> {
    let list = oob
        .run(oob.api::<ConfigPatch>().list(
            &ListParams::default().labels(LabelQuery::new().equal(labels::CLUSTER, cluster)),
        ))?;
    Ok(list.into_iter().map(|o| o.id().to_string()).collect())
}

#[test]
fn cluster_patch_lifecycle() -> Result<()> {
    let omni = Omni::start(0)?;
    let oob = OutOfBand::new(&omni)?;
    oob.create_cluster("lab")?;
    let ws = Workspace::new(&omni)?;

    // Create.
    let config = patch_config("lab", "", DATA_A);
    ws.write_config(&config)?;
    ws.apply()?;
    let v = resource_values(&ws.state()?, ADDR)?;
    assert_eq!(v["id"], "200-cluster-lab-ntp");
    assert_eq!(v["weight"], 200);
    let obj = oob.run(oob.api::<ConfigPatch>().get("200-cluster-lab-ntp"))?;
    assert_eq!(
        obj.metadata.labels.get(labels::CLUSTER).map(String::as_str),
        Some("lab")
    );
    assert_eq!(
        obj.metadata
            .annotations
            .get(annotations::NAME)
            .map(String::as_str),
        Some("ntp")
    );
    assert_eq!(
        obj.metadata
            .annotations
            .get(annotations::MANAGED_BY_GITOPS_TOOLS)
            .map(String::as_str),
        Some("Terraform")
    );
    assert_eq!(obj.spec.data, DATA_A);
    assert!(
        !ws.plan_has_changes()?,
        "re-plan after create must be empty"
    );

    // Import-verify.
    import_verify(
        &omni,
        &config,
        ADDR,
        "200-cluster-lab-ntp",
        &resource_values(&ws.state()?, ADDR)?,
        &["timeouts"],
    )?;

    // Update in place.
    let config = patch_config("lab", "", DATA_B);
    ws.write_config(&config)?;
    assert_eq!(planned_actions(&ws.plan_json()?, ADDR), ["update"]);
    ws.apply()?;
    assert_eq!(
        oob.run(oob.api::<ConfigPatch>().get("200-cluster-lab-ntp"))?
            .spec
            .data,
        DATA_B
    );
    assert!(!ws.plan_has_changes()?);

    // Out of band, the same patch written differently is not drift...
    set_server_data(&oob, "200-cluster-lab-ntp", DATA_B_REFORMATTED)?;
    assert!(
        !ws.plan_has_changes()?,
        "reordered keys/comments/whitespace must not be drift"
    );
    assert_eq!(
        resource_values(&ws.state()?, ADDR)?["data"],
        DATA_B,
        "state keeps the user's text"
    );
    // ...but a changed value is.
    set_server_data(&oob, "200-cluster-lab-ntp", DATA_B_CHANGED)?;
    assert!(ws.plan_has_changes()?, "a changed value must show as drift");
    assert_eq!(planned_actions(&ws.plan_json()?, ADDR), ["update"]);
    ws.apply()?;
    assert_eq!(
        oob.run(oob.api::<ConfigPatch>().get("200-cluster-lab-ntp"))?
            .spec
            .data,
        DATA_B
    );

    // Replace: the weight is part of the ID.
    let config = patch_config("lab", "  weight  = 150\n", DATA_B);
    ws.write_config(&config)?;
    assert_eq!(
        planned_actions(&ws.plan_json()?, ADDR),
        ["delete", "create"]
    );
    ws.apply()?;
    assert!(oob.exists::<ConfigPatch>("150-cluster-lab-ntp")?);
    assert!(!oob.exists::<ConfigPatch>("200-cluster-lab-ntp")?);
    assert!(!ws.plan_has_changes()?);
    import_verify(
        &omni,
        &config,
        ADDR,
        "150-cluster-lab-ntp",
        &resource_values(&ws.state()?, ADDR)?,
        &["timeouts"],
    )?;

    // Deleted out of band: planned for creation, and re-created.
    oob.delete::<ConfigPatch>("150-cluster-lab-ntp")?;
    assert_eq!(planned_actions(&ws.plan_json()?, ADDR), ["create"]);
    ws.apply()?;
    assert!(oob.exists::<ConfigPatch>("150-cluster-lab-ntp")?);

    // Destroy leaves nothing of ours.
    ws.destroy()?;
    assert!(patches_of(&oob, "lab")?.is_empty());
    Ok(())
}

#[test]
fn id_override_imports_and_round_trips() -> Result<()> {
    let omni = Omni::start(0)?;
    let oob = OutOfBand::new(&omni)?;
    oob.create_cluster("lab")?;
    let ws = Workspace::new(&omni)?;
    let config = patch_config("lab", "  id_override = \"my-own-id\"\n", DATA_A);
    ws.write_config(&config)?;
    ws.apply()?;
    assert_eq!(resource_values(&ws.state()?, ADDR)?["id"], "my-own-id");
    assert!(oob.exists::<ConfigPatch>("my-own-id")?);
    assert!(!ws.plan_has_changes()?);
    import_verify(
        &omni,
        &config,
        ADDR,
        "my-own-id",
        &resource_values(&ws.state()?, ADDR)?,
        &["timeouts"],
    )?;

    // Behind an override the name is only the `name` annotation: renaming updates in place.
    let renamed = config.replace("name    = \"ntp\"", "name    = \"chrony\"");
    assert_ne!(renamed, config);
    ws.write_config(&renamed)?;
    assert_eq!(planned_actions(&ws.plan_json()?, ADDR), ["update"]);
    ws.apply()?;
    let obj = oob.run(oob.api::<ConfigPatch>().get("my-own-id"))?;
    assert_eq!(
        obj.metadata
            .annotations
            .get(annotations::NAME)
            .map(String::as_str),
        Some("chrony")
    );
    assert!(!ws.plan_has_changes()?);
    ws.destroy()?;
    assert!(!oob.exists::<ConfigPatch>("my-own-id")?);

    // Spelling out the template ID as id_override keeps the object (an in-place update of
    // state only, not a replacement), e.g. after importing a template's patch.
    let plain = patch_config("lab", "", DATA_A);
    ws.write_config(&plain)?;
    ws.apply()?;
    let explicit = patch_config("lab", "  id_override = \"200-cluster-lab-ntp\"\n", DATA_A);
    ws.write_config(&explicit)?;
    assert_eq!(planned_actions(&ws.plan_json()?, ADDR), ["update"]);
    ws.apply()?;
    assert!(!ws.plan_has_changes()?);
    assert!(oob.exists::<ConfigPatch>("200-cluster-lab-ntp")?);
    ws.destroy()?;
    Ok(())
}

#[test]
fn scoped_patches_and_cascade() -> Result<()> {
    let omni = Omni::start(0)?;
    let oob = OutOfBand::new(&omni)?;
    oob.create_cluster("lab")?;
    let set = oob.create_worker_set("lab", "workers")?;
    let uuid = "5b1c7bd4-3f0e-4d43-9b5c-0d7d2b2a9f01";
    let ws = Workspace::new(&omni)?;
    let data = hcl(DATA_A);
    let set_block = format!(
        r#"
resource "omni_config_patch" "set" {{
  name    = "sysctl"
  cluster = "lab"
  selector {{
    machine_set = "{set}"
  }}
  data = {data}
}}
"#
    );
    let cm_block = format!(
        r#"
resource "omni_config_patch" "cm" {{
  name    = "hostname"
  weight  = 410
  cluster = "lab"
  selector {{
    cluster_machine = "{uuid}"
  }}
  data = {data}
}}
"#
    );
    let machine_block = format!(
        r#"
resource "omni_config_patch" "machine" {{
  name = "disk"
  selector {{
    machine = "{uuid}"
  }}
  data = {data}
}}
"#
    );
    let config = format!("{set_block}{cm_block}{machine_block}");
    ws.write_config(&config)?;
    ws.apply()?;
    let state = ws.state()?;
    assert_eq!(
        resource_values(&state, "omni_config_patch.set")?["id"],
        "400-lab-workers-sysctl"
    );
    assert_eq!(
        resource_values(&state, "omni_config_patch.cm")?["id"],
        format!("410-cm-{uuid}-hostname")
    );
    assert_eq!(
        resource_values(&state, "omni_config_patch.machine")?["id"],
        format!("400-machine-{uuid}-disk")
    );
    let labels_of = |id: &str| -> Result<Vec<(String, String)>> {
        let o = oob.run(oob.api::<ConfigPatch>().get(id))?;
        Ok(o.metadata
            .labels
            .into_iter()
            .filter(|(k, _)| k.starts_with(labels::PREFIX))
            .collect())
    };
    assert_eq!(
        labels_of("400-lab-workers-sysctl")?,
        [
            (labels::CLUSTER.to_string(), "lab".to_string()),
            (labels::MACHINE_SET.to_string(), set.clone())
        ]
    );
    assert_eq!(
        labels_of(&format!("410-cm-{uuid}-hostname"))?,
        [
            (labels::CLUSTER.to_string(), "lab".to_string()),
            (labels::CLUSTER_MACHINE.to_string(), uuid.to_string())
        ]
    );
    assert_eq!(
        labels_of(&format!("400-machine-{uuid}-disk"))?,
        [(labels::MACHINE.to_string(), uuid.to_string())]
    );
    assert!(!ws.plan_has_changes()?);

    // Import-verify each scope, each in a workspace holding only that patch.
    for (addr, id, block) in [
        (
            "omni_config_patch.set",
            "400-lab-workers-sysctl".to_string(),
            &set_block,
        ),
        (
            "omni_config_patch.cm",
            format!("410-cm-{uuid}-hostname"),
            &cm_block,
        ),
        (
            "omni_config_patch.machine",
            format!("400-machine-{uuid}-disk"),
            &machine_block,
        ),
    ] {
        import_verify(
            &omni,
            block,
            addr,
            &id,
            &resource_values(&state, addr)?,
            &["timeouts"],
        )?;
    }

    // Omni's cascade removes the machine-set patch with its set: planned for creation, no error.
    oob.delete::<MachineSet>(&set)?;
    assert!(
        !oob.exists::<ConfigPatch>("400-lab-workers-sysctl")?,
        "the emulator cascades"
    );
    let plan = ws.plan_json()?;
    assert_eq!(planned_actions(&plan, "omni_config_patch.set"), ["create"]);
    assert_eq!(planned_actions(&plan, "omni_config_patch.cm"), ["no-op"]);

    ws.destroy()?;
    assert!(patches_of(&oob, "lab")?.is_empty());
    assert!(!oob.exists::<ConfigPatch>(&format!("400-machine-{uuid}-disk"))?);
    Ok(())
}

#[test]
fn bad_inputs_fail_at_plan_with_the_attribute() -> Result<()> {
    let omni = Omni::start(0)?;
    let ws = Workspace::new(&omni)?;
    let cases: Vec<PlanErrorCase> = vec![
        (
            "bad YAML",
            patch_config("lab", "", "machine: [unclosed\n"),
            "Invalid config patch",
            Some("data"),
        ),
        (
            "machine.token",
            patch_config("lab", "", "machine:\n  token: abc\n"),
            r#"overriding \\?"machine.token\\?" is not allowed"#,
            Some("data"),
        ),
        (
            "secretbox secret",
            patch_config("lab", "", "cluster:\n  secretboxEncryptionSecret: abc\n"),
            r#"overriding \\?"cluster.secretboxEncryptionSecret\\?" is not allowed"#,
            Some("data"),
        ),
        (
            "install disk",
            patch_config("lab", "", "machine:\n  install:\n    disk: /dev/sda\n"),
            r#"machine.install.disk"#,
            Some("data"),
        ),
        (
            "forbidden document",
            patch_config("lab", "", "apiVersion: v1alpha1\nkind: KubeClusterConfig\n"),
            r#"KubeClusterConfig\\?" document is not allowed"#,
            Some("data"),
        ),
        (
            "os:admin role",
            patch_config(
                "lab",
                "",
                "machine:\n  features:\n    kubernetesTalosAPIAccess:\n      allowedRoles: [\"os:admin\"]\n",
            ),
            r#"os:admin"#,
            Some("data"),
        ),
        (
            "two selectors",
            patch_config(
                "lab",
                "  selector {\n    machine_set = \"lab-workers\"\n    machine     = \"u\"\n  }\n",
                DATA_A,
            ),
            "at most one",
            Some("machine     = "),
        ),
        (
            "machine set of another cluster",
            patch_config(
                "lab",
                "  selector {\n    machine_set = \"other-workers\"\n  }\n",
                DATA_A,
            ),
            "start with",
            Some("machine_set"),
        ),
        (
            "empty selector block",
            patch_config("lab", "  selector {\n  }\n", DATA_A),
            "needs one of machine_set",
            // A diagnostic on a whole block lands on the resource header.
            Some("omni_config_patch"),
        ),
        (
            "weight out of range",
            patch_config("lab", "  weight  = 1000\n", DATA_A),
            "between 0 and 999",
            Some("weight"),
        ),
        (
            "no cluster",
            "resource \"omni_config_patch\" \"p\" {\n  name = \"x\"\n  data = \"machine: {}\"\n}\n"
                .to_string(),
            "`cluster` is required",
            // The attribute is absent, so Terraform points at the resource block.
            None,
        ),
    ];
    assert_plan_errors(&ws, cases)
}

#[test]
fn patches_and_extensions_alongside_a_terraform_cluster() -> Result<()> {
    // The whole chain in one configuration: IDs that depend on other resources' outputs are
    // unknown at plan time, and destroy removes everything in dependency order.
    let omni = Omni::start(0)?;
    let oob = OutOfBand::new(&omni)?;
    let (talos, k8s) = oob.latest_versions()?;
    let ext = {
        let cat = oob.run(
            oob.api::<omni_client::resources::TalosExtensions>()
                .get(&talos),
        )?;
        cat.spec
            .items
            .first()
            .map(|i| i.name.clone())
            .unwrap_or_default()
    };
    let ws = Workspace::new(&omni)?;
    ws.write_config(&format!(
        r#"
resource "omni_cluster" "lab" {{
  name               = "lab"
  talos_version      = "{talos}"
  kubernetes_version = "{k8s}"
}}

resource "omni_machine_set" "workers" {{
  cluster = omni_cluster.lab.name
  role    = "workers"
  wait    = false
}}

resource "omni_config_patch" "cluster" {{
  name    = "ntp"
  cluster = omni_cluster.lab.name
  data    = {a}
}}

resource "omni_config_patch" "workers" {{
  name    = "sysctls"
  cluster = omni_cluster.lab.name
  selector {{
    machine_set = omni_machine_set.workers.id
  }}
  data = {b}
}}

resource "omni_machine_extensions" "workers" {{
  cluster = omni_cluster.lab.name
  selector {{
    machine_set = omni_machine_set.workers.id
  }}
  extensions = ["{ext}"]
}}
"#,
        a = hcl(DATA_A),
        b = hcl(DATA_B),
    ))?;
    ws.apply()?;
    let state = ws.state()?;
    assert_eq!(
        resource_values(&state, "omni_config_patch.cluster")?["id"],
        "200-cluster-lab-ntp"
    );
    assert_eq!(
        resource_values(&state, "omni_config_patch.workers")?["id"],
        "400-lab-workers-sysctls"
    );
    assert_eq!(
        resource_values(&state, "omni_machine_extensions.workers")?["id"],
        "schematic-lab-workers"
    );
    assert!(!ws.plan_has_changes()?, "re-plan must be empty");
    ws.destroy()?;
    assert!(patches_of(&oob, "lab")?.is_empty());
    assert!(!oob.exists::<omni_client::resources::Cluster>("lab")?);
    Ok(())
}

#[test]
fn eventually_consistent_reads_do_not_break_the_lifecycle() -> Result<()> {
    // Omni serves Get from a cache that lags behind writes (omni-api.md §1.9); the emulator
    // imitates it. Create, update, replace and destroy must still converge without errors.
    let omni = Omni::start_with(&[
        "--machines".into(),
        "0".into(),
        "--read-lag-ms".into(),
        "300".into(),
    ])?;
    if !omni.is_emulator() {
        return Ok(());
    }
    // The emulator's lagging read cache fills from its own start-up writes: let it catch up.
    std::thread::sleep(std::time::Duration::from_millis(600));
    let oob = OutOfBand::new(&omni)?;
    oob.create_cluster("lab")?;
    let ws = Workspace::new(&omni)?;
    ws.write_config(&patch_config("lab", "", DATA_A))?;
    ws.apply()?;
    ws.write_config(&patch_config("lab", "", DATA_B))?;
    ws.apply()?;
    ws.write_config(&patch_config("lab", "  weight  = 150\n", DATA_B))?;
    ws.apply()?;
    assert!(!ws.plan_has_changes()?);
    ws.destroy()?;
    // Our own List goes through the same lagging cache: look after the configured lag.
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(patches_of(&oob, "lab")?, Vec::<String>::new());
    Ok(())
}

/// A refresh of many patches reads them through one List (after the first few Gets), and still
/// sees every out-of-band change: an edited patch is updated, a deleted one re-created.
#[test]
fn large_refresh_reads_through_one_list_and_sees_changes() -> Result<()> {
    let omni = Omni::start(0)?;
    let oob = OutOfBand::new(&omni)?;
    oob.create_cluster("bulk")?;
    let mut ws = Workspace::new(&omni)?;
    ws.write_config(
        "resource \"omni_config_patch\" \"p\" {\n  count   = 40\n  cluster = \"bulk\"\n  \
         name    = \"p${count.index}\"\n  \
         data    = \"machine:\\n  sysctls:\\n    net.core.somaxconn: \\\"${1000 + count.index}\\\"\\n\"\n}\n",
    )?;
    ws.apply()?;
    assert_eq!(patches_of(&oob, "bulk")?.len(), 40);

    set_server_data(
        &oob,
        "200-cluster-bulk-p30",
        "machine:\n  sysctls:\n    net.core.somaxconn: \"1\"\n",
    )?;
    oob.delete::<ConfigPatch>("200-cluster-bulk-p35")?;
    ws.set_env("TF_LOG", "debug");
    let plan = ws.plan_json()?;
    assert!(
        ws.log_text().contains("refresh reads served from one List"),
        "40 reads of one kind should have switched to a List"
    );
    assert_eq!(
        planned_actions(&plan, "omni_config_patch.p[30]"),
        ["update"]
    );
    assert_eq!(
        planned_actions(&plan, "omni_config_patch.p[35]"),
        ["create"]
    );
    for i in [0, 15, 16, 29, 31, 39] {
        assert_eq!(
            planned_actions(&plan, &format!("omni_config_patch.p[{i}]")),
            ["no-op"],
            "p[{i}]"
        );
    }
    ws.apply()?;
    assert!(!ws.plan_has_changes()?, "converged after the apply");
    assert_eq!(
        oob.run(oob.api::<ConfigPatch>().get("200-cluster-bulk-p30"))?
            .spec
            .data,
        "machine:\n  sysctls:\n    net.core.somaxconn: \"1030\"\n"
    );
    ws.destroy()?;
    assert!(patches_of(&oob, "bulk")?.is_empty());
    Ok(())
}
