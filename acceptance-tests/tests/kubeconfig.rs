//! `omni_kubeconfig` / `omni_talosconfig`: the ephemeral resources feed a real consumer (a
//! `local-exec` provisioner, which Terraform lets read ephemeral values) and nothing of them
//! reaches the state; the sensitive data sources are the stored, less safe path.

mod oob;

use acceptance_tests::{has_diagnostic, resource_values, Omni, Workspace};
use anyhow::Result;

const EPHEMERAL_CONFIG: &str = r#"
ephemeral "omni_kubeconfig" "lab" {
  cluster         = "lab"
  service_account = true
  user            = "ci"
  groups          = ["system:masters"]
  ttl             = "1h"
}

ephemeral "omni_talosconfig" "lab" {
  cluster = "lab"
}

# A consumer Terraform accepts for ephemeral values: a provisioner's environment. It writes
# what it received to files next to the configuration, as a `kubectl` wrapper would use it.
resource "terraform_data" "kubectl" {
  provisioner "local-exec" {
    command = "printf '%s' \"$KUBECONFIG_DATA\" > kubeconfig.out; printf '%s' \"$K8S_HOST\" > host.out; printf '%s' \"$K8S_TOKEN\" > token.out; printf '%s' \"$TALOSCONFIG_DATA\" > talosconfig.out"
    environment = {
      KUBECONFIG_DATA  = ephemeral.omni_kubeconfig.lab.kubeconfig_raw
      K8S_HOST         = ephemeral.omni_kubeconfig.lab.host
      K8S_TOKEN        = ephemeral.omni_kubeconfig.lab.token
      TALOSCONFIG_DATA = ephemeral.omni_talosconfig.lab.talosconfig_raw
    }
  }
}
"#;

#[test]
fn ephemeral_kubeconfig_reaches_its_consumer_and_never_the_state() -> Result<()> {
    let omni = Omni::start(1)?;
    let ids = oob::machine_ids(&omni)?;
    oob::create_cluster(&omni, "lab", &ids)?;

    let ws = Workspace::new(&omni)?;
    ws.write_config(EPHEMERAL_CONFIG)?;
    // A saved plan must not hold the secrets either.
    let plan = ws.run(&["plan", "-input=false", "-out=eph.tfplan"])?;
    assert_eq!(plan.status, 0, "{}{}", plan.stdout, plan.stderr);
    ws.apply()?;

    let read = |f: &str| std::fs::read_to_string(ws.path().join(f)).unwrap_or_default();
    let token = read("token.out");
    let kubeconfig = read("kubeconfig.out");
    let host = read("host.out");
    let talosconfig = read("talosconfig.out");
    assert!(
        token.len() > 20,
        "the consumer got a token: {:?}",
        token.len()
    );
    assert_eq!(token.split('.').count(), 3, "a JWT");
    assert!(
        kubeconfig.contains(&token),
        "structured token matches the kubeconfig"
    );
    assert!(kubeconfig.contains("current-context"));
    assert!(host.starts_with("http"), "{host}");
    assert!(kubeconfig.contains(&host));
    assert!(talosconfig.contains("contexts"), "{talosconfig}");

    let state = ws.state_file_text();
    assert!(state.contains("terraform_data"), "the state exists");
    assert!(!state.contains(&token), "token leaked into the state");
    assert!(
        !state.contains("current-context"),
        "kubeconfig leaked into the state"
    );
    // Only the dependency edge may name the ephemeral resources, never their attributes.
    assert!(!state.contains("kubeconfig_raw") && !state.contains("talosconfig_raw"));
    assert!(!state.contains("\"token\""), "{state}");
    let plan_bytes = std::fs::read(ws.path().join("eph.tfplan"))?;
    let plan_text = String::from_utf8_lossy(&plan_bytes);
    assert!(!plan_text.contains(&token));

    // A second run opens a fresh token; still nothing stored, nothing to change.
    assert!(!ws.plan_has_changes()?);
    let state = ws.state_file_text();
    assert!(!state.contains(&token));
    Ok(())
}

#[test]
fn sensitive_data_sources_are_the_stored_path() -> Result<()> {
    let omni = Omni::start(1)?;
    let ids = oob::machine_ids(&omni)?;
    oob::create_cluster(&omni, "lab", &ids)?;
    let ws = Workspace::new(&omni)?;
    ws.write_config(
        r#"
data "omni_kubeconfig" "lab" {
  cluster         = "lab"
  service_account = true
  user            = "ci"
}
data "omni_kubeconfig" "oidc" {
  cluster = "lab"
}
data "omni_talosconfig" "all" {}
"#,
    )?;
    ws.apply()?;
    let state = ws.state()?;
    let sa = resource_values(&state, "data.omni_kubeconfig.lab")?;
    let token = sa["token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3);
    assert!(sa["kubeconfig_raw"].as_str().unwrap().contains(token));
    assert!(sa["expires_at"].as_str().unwrap().ends_with('Z'));
    let oidc = resource_values(&state, "data.omni_kubeconfig.oidc")?;
    assert_eq!(
        oidc["token"],
        serde_json::Value::Null,
        "OIDC kubeconfigs have no token"
    );
    assert!(oidc["kubeconfig_raw"]
        .as_str()
        .unwrap()
        .contains("oidc-login"));
    let talos = resource_values(&state, "data.omni_talosconfig.all")?;
    assert!(!talos["endpoints"].as_array().unwrap().is_empty());

    // Marked sensitive in the state, as the description promises.
    let show = ws.run(&["show", "-no-color"])?;
    assert!(
        !show.stdout.contains(token),
        "terraform show must redact the token"
    );
    Ok(())
}

#[test]
fn service_account_settings_fail_at_plan_time() -> Result<()> {
    let omni = Omni::start(1)?;
    let ws = Workspace::new(&omni)?;
    let cases = [
        ("user = \"ci\"", "Needs service_account", "user"),
        // `user` is absent, so Terraform can only show the block: no attribute to match.
        ("service_account = true", "Missing user", ""),
        (
            "service_account = true\n  user = \"ci\"\n  ttl = \"90000h\"",
            "TTL too long",
            "ttl",
        ),
        (
            "service_account = true\n  user = \"ci\"\n  ttl = \"soon\"",
            "Invalid ttl",
            "ttl",
        ),
    ];
    for (body, summary, attr) in cases {
        ws.write_config(&format!(
            "ephemeral \"omni_kubeconfig\" \"x\" {{\n  cluster = \"lab\"\n  {body}\n}}\n"
        ))?;
        let diags = ws.plan_expect_error()?;
        let attr = Some(attr).filter(|a| !a.is_empty());
        assert!(has_diagnostic(&diags, summary, attr), "{body}: {diags:#?}");
    }
    // Omni's own refusal (no such cluster) comes back at `cluster`.
    ws.write_config("ephemeral \"omni_kubeconfig\" \"x\" {\n  cluster = \"nope\"\n}\n")?;
    let diags = ws.plan_expect_error()?;
    assert!(
        has_diagnostic(&diags, "not found", Some("cluster")),
        "{diags:#?}"
    );
    Ok(())
}
