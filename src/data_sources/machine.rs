//! `omni_machine`: one machine of the inventory by UUID (shape shared with `omni_machines`).

use tfplugin::{
    async_trait, Attribute, AttributePath, Ctx, DataSource, Diagnostic, Result, Schema, Value,
};

use super::machines::{machine_attributes, machine_from_status, MachineModel};
use crate::common;
use omni_client::resources::MachineStatus;

const DESCRIPTION: &str = "\
Reads one Omni machine by its UUID: hardware, addresses, Talos version, platform and where it \
is allocated. To find machines by their properties use `omni_machines`.

A machine Omni does not know is an error.";

/// `omni_machine` configuration and result: the machine shape itself.
pub type MachineState = MachineModel;

/// The `omni_machine` data source.
pub struct MachineDataSource;

#[async_trait]
impl DataSource for MachineDataSource {
    const TYPE_NAME: &'static str = "omni_machine";
    type State = MachineState;

    fn schema(&self) -> Schema {
        let mut s = Schema::new(DESCRIPTION);
        for a in machine_attributes(
            Attribute::string("id")
                .required()
                .description("Machine UUID."),
        ) {
            s = s.attribute(a);
        }
        s
    }

    async fn validate(&self, _ctx: &Ctx, config: &MachineState) -> Result<()> {
        if config.id.as_str().is_some_and(|id| id.trim().is_empty()) {
            return Err(
                Diagnostic::error("Empty machine ID", "`id` must be a machine UUID.")
                    .at(AttributePath::new("id"))
                    .into(),
            );
        }
        Ok(())
    }

    async fn read(&self, ctx: &Ctx, config: MachineState) -> Result<MachineState> {
        let id = config.id.as_str().unwrap_or_default().to_string();
        let api = common::api::<MachineStatus>(ctx)?;
        let found = api
            .get_opt(&id)
            .await
            .map_err(|e| common::omni_error(&format!("reading machine {id:?}"), e))?;
        match found {
            Some(obj) => {
                let mut m = machine_from_status(&obj);
                m.id = Value::Known(id);
                Ok(m)
            }
            None => Err(Diagnostic::error(
                "Machine not found",
                format!("Omni has no machine {id:?}. `omni_machines` lists the machines it knows."),
            )
            .at(AttributePath::new("id"))
            .into()),
        }
    }
}
