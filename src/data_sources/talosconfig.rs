//! `omni_talosconfig` data source: the same talosconfig as the ephemeral resource, for Terraform
//! older than 1.10. Every output is sensitive, but the value is stored in the state.

use tfplugin::{async_trait, Ctx, DataSource, Result, Schema};

use crate::ephemeral::talosconfig::{self, TalosconfigState};

const DESCRIPTION: &str = "\
Fetches a talosconfig from Omni as a data source.

~> **Less safe than the `omni_talosconfig` ephemeral resource.** A data source's result is \
written to the Terraform state in plain text. Use this only with Terraform older than 1.10; on \
1.10 or newer (OpenTofu 1.11 or newer) use `ephemeral \"omni_talosconfig\"`, which never stores \
the value.

The attributes are the same as the ephemeral resource's, all outputs marked sensitive.";

/// The `omni_talosconfig` data source.
pub struct TalosconfigDataSource;

#[async_trait]
impl DataSource for TalosconfigDataSource {
    const TYPE_NAME: &'static str = "omni_talosconfig";
    type State = TalosconfigState;

    fn schema(&self) -> Schema {
        talosconfig::schema(DESCRIPTION, true)
    }

    async fn read(&self, ctx: &Ctx, config: TalosconfigState) -> Result<TalosconfigState> {
        talosconfig::fetch(ctx, config).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_output_is_sensitive_and_the_description_warns() {
        let s = TalosconfigDataSource.schema();
        for name in ["talosconfig_raw", "context", "endpoints"] {
            assert!(s.attr(name).unwrap().sensitive, "{name} must be sensitive");
        }
        assert!(s.block.description.contains("Less safe"));
    }
}
