//! The provider's write-only `service_account_key_wo`: it can take an ephemeral variable, it
//! wins over the environment, and nothing of it is stored.

use acceptance_tests::{has_diagnostic, Omni, Workspace};
use anyhow::Result;

const CONFIG: &str = r#"
variable "omni_key" {
  type      = string
  sensitive = true
  ephemeral = true
}

provider "omni" {
  service_account_key_wo = var.omni_key
}

data "omni_kubernetes_versions" "probe" {}
"#;

#[test]
fn write_only_key_wins_over_the_environment_and_is_not_stored() -> Result<()> {
    let omni = Omni::start(1)?;
    let mut ws = Workspace::new(&omni)?;
    // A broken key in the environment: only the write-only attribute can make this work.
    ws.set_env("OMNI_SERVICE_ACCOUNT_KEY", "bm90LWEta2V5");
    ws.set_env("TF_VAR_omni_key", &omni.service_account_key);
    ws.write_config(CONFIG)?;
    ws.apply()?;
    let state = ws.state_file_text();
    assert!(state.contains("omni_kubernetes_versions"));
    assert!(
        !state.contains(omni.service_account_key.trim()),
        "key leaked into state"
    );

    // Control: without the write-only value the broken environment key is used and refused.
    ws.write_config("provider \"omni\" {}\n\ndata \"omni_kubernetes_versions\" \"probe\" {}\n")?;
    let diags = ws.plan_expect_error()?;
    assert!(
        has_diagnostic(&diags, "Invalid service-account key", None),
        "{diags:#?}"
    );
    Ok(())
}
