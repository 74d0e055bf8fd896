//! `omni_kubeconfig` data source: the same kubeconfig as the ephemeral resource, for Terraform
//! older than 1.10. Every output is sensitive, but the value is stored in the state.

use tfplugin::{async_trait, Ctx, DataSource, Result, Schema};

use crate::ephemeral::kubeconfig::{self, KubeconfigState};

const DESCRIPTION: &str = "\
Fetches the kubeconfig of an Omni cluster as a data source.

~> **Less safe than the `omni_kubeconfig` ephemeral resource.** A data source's result is \
written to the Terraform state in plain text, token included: anyone who can read the state \
can reach the cluster until the token expires. Use this only with Terraform older than 1.10; \
on 1.10 or newer (OpenTofu 1.11 or newer) use `ephemeral \"omni_kubeconfig\"`, which never \
stores the value. If you must use it, keep `ttl` short and the state encrypted.

The attributes are the same as the ephemeral resource's, all outputs marked sensitive. By \
default Omni returns the OIDC login kubeconfig (no `token`); `service_account = true` with a \
`user` gives a static token (Operator role needed). A new token is issued at every read.";

/// The `omni_kubeconfig` data source.
pub struct KubeconfigDataSource;

#[async_trait]
impl DataSource for KubeconfigDataSource {
    const TYPE_NAME: &'static str = "omni_kubeconfig";
    type State = KubeconfigState;

    fn schema(&self) -> Schema {
        kubeconfig::schema(DESCRIPTION, true)
    }

    async fn validate(&self, _ctx: &Ctx, config: &KubeconfigState) -> Result<()> {
        kubeconfig::validate(config)
    }

    async fn read(&self, ctx: &Ctx, config: KubeconfigState) -> Result<KubeconfigState> {
        kubeconfig::fetch(ctx, config).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_output_is_sensitive_and_the_description_warns() {
        let s = KubeconfigDataSource.schema();
        for name in [
            "kubeconfig_raw",
            "host",
            "cluster_ca_certificate",
            "token",
            "expires_at",
        ] {
            assert!(s.attr(name).unwrap().sensitive, "{name} must be sensitive");
        }
        assert!(s.block.description.contains("Less safe"));
    }
}
