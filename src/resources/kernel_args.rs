//! `omni_kernel_args`: extra kernel arguments of a machine (`KernelArgs`, ID = machine UUID,
//! omni-api.md §3.3, limits in §4).
//!
//! Omni may create the KernelArgs object itself on first connect when the machine booted with
//! extra arguments. Creating then adopts it (recording what Omni had in private state), and
//! destroying restores those arguments instead of deleting Omni's object.

use std::time::Duration;

use omni_client::omni_api::specs;
use omni_client::resources::KernelArgs;
use omni_client::{Error, Object};
use serde::{Deserialize, Serialize};
use talos_machinery::names;
use tfplugin::{
    async_trait, Attribute, AttributePath, Ctx, Diagnostic, Diagnostics, PrivateState, Resource,
    Result, Schema, Type, Value,
};

use crate::common::{self, bounded, timeouts, Adoption, Timeouts};

const DESCRIPTION: &str = "\
Sets extra kernel arguments for an Omni machine, e.g. `console=ttyS0` or `net.ifnames=0`. Omni \
bakes them into the machine's schematic, so changing them upgrades the machine to a new image.

Omni allows at most 64 arguments of at most 256 bytes each, without control characters; \
these limits are checked at plan time.

If Omni already holds kernel arguments for the machine (it records the ones a machine booted \
with), this resource adopts them; destroying it then restores what Omni had rather than \
deleting them.";

/// Default create timeout (includes waiting for a deleted predecessor to go away).
const CREATE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default update timeout.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(120);
/// Default delete timeout.
const DELETE_TIMEOUT: Duration = Duration::from_secs(300);

/// Private-state key: the arguments Omni had when this resource adopted the object.
const ADOPTED_FROM: &str = "adopted_from";

/// `omni_kernel_args` state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelArgsState {
    /// Same as `machine_id`.
    pub id: Value<String>,
    /// Machine UUID.
    pub machine_id: Value<String>,
    /// The arguments, in order.
    pub args: Value<Vec<String>>,
    /// Timeouts.
    pub timeouts: Value<Timeouts>,
}

/// Plan-time checks of omni-api.md §4 "KernelArgs", each at the offending attribute/element.
fn check_config(c: &KernelArgsState) -> Result<()> {
    let mut diags = Diagnostics::new();
    if let Some(id) = c.machine_id.as_str() {
        if let Err(e) = names::validate_resource_id(id) {
            diags.push(
                Diagnostic::error("Invalid machine ID", e).at(AttributePath::new("machine_id")),
            );
        }
    }
    if let Some(args) = c.args.as_option() {
        if args.len() > names::MAX_KERNEL_ARGS {
            diags.push(
                Diagnostic::error(
                    "Too many kernel arguments",
                    format!(
                        "{} arguments; Omni allows at most {}.",
                        args.len(),
                        names::MAX_KERNEL_ARGS
                    ),
                )
                .at(AttributePath::new("args")),
            );
        }
        for (i, a) in args.iter().enumerate() {
            let at = AttributePath::new("args").index(i as i64);
            if a.len() > names::MAX_KERNEL_ARG_BYTES {
                diags.push(
                    Diagnostic::error(
                        "Kernel argument too long",
                        format!(
                            "{} bytes; Omni allows at most {}.",
                            a.len(),
                            names::MAX_KERNEL_ARG_BYTES
                        ),
                    )
                    .at(at.clone()),
                );
            }
            if a.chars().any(char::is_control) {
                diags.push(
                    Diagnostic::error(
                        "Invalid kernel argument",
                        "Kernel arguments must not contain control characters.",
                    )
                    .at(at.clone()),
                );
            }
            if a.trim().is_empty() {
                diags.push(
                    Diagnostic::error("Empty kernel argument", "Remove the empty entry.").at(at),
                );
            }
        }
    }
    Timeouts::validate(&c.timeouts)?;
    diags.into_result()
}

fn machine_id(s: &KernelArgsState) -> String {
    s.machine_id
        .as_str()
        .or(s.id.as_str())
        .unwrap_or_default()
        .to_string()
}

/// The `omni_kernel_args` resource.
pub struct KernelArgsResource;

#[async_trait]
impl Resource for KernelArgsResource {
    const TYPE_NAME: &'static str = "omni_kernel_args";
    type State = KernelArgsState;

    fn schema(&self) -> Schema {
        Schema::new(DESCRIPTION)
            .attribute(
                Attribute::string("id")
                    .computed()
                    .description("Same as `machine_id`."),
            )
            .attribute(
                Attribute::string("machine_id")
                    .required()
                    .requires_replace()
                    .description("UUID of the machine."),
            )
            .attribute(
                Attribute::list("args", Type::String)
                    .required()
                    .description(
                        "Kernel arguments, in order (at most 64, each at most 256 bytes).",
                    ),
            )
            .attribute(timeouts::attribute(
                CREATE_TIMEOUT,
                UPDATE_TIMEOUT,
                DELETE_TIMEOUT,
            ))
    }

    async fn validate(&self, _ctx: &Ctx, config: &KernelArgsState) -> Result<()> {
        check_config(config)
    }

    async fn read(
        &self,
        ctx: &Ctx,
        mut state: KernelArgsState,
        _private: &mut PrivateState,
    ) -> Result<Option<KernelArgsState>> {
        let id = machine_id(&state);
        let api = common::api::<KernelArgs>(ctx)?;
        // Confirmed with a watch: Omni's Get can lag behind a write (omni-api.md §1.9).
        let found = common::get_for_read(ctx, &api, &id).await.map_err(|e| {
            common::omni_error(&format!("reading kernel args of machine {id:?}"), e)
        })?;
        match found {
            Some(obj) if !obj.is_tearing_down() => {
                state.id = Value::Known(id.clone());
                state.machine_id = Value::Known(id);
                state.args = Value::Known(obj.spec.args);
                Ok(Some(state))
            }
            _ => Ok(None),
        }
    }

    async fn plan_create(
        &self,
        _ctx: &Ctx,
        mut plan: KernelArgsState,
        _config: &KernelArgsState,
        _private: &mut PrivateState,
    ) -> Result<KernelArgsState> {
        if let Some(id) = plan.machine_id.as_str() {
            plan.id = Value::Known(id.to_string());
        }
        Ok(plan)
    }

    async fn create(
        &self,
        ctx: &Ctx,
        mut plan: KernelArgsState,
        _config: &KernelArgsState,
        private: &mut PrivateState,
    ) -> Result<KernelArgsState> {
        let id = machine_id(&plan);
        let args = plan.args.clone().unwrap_or_default();
        let api = common::api::<KernelArgs>(ctx)?;
        let action = format!("setting kernel args of machine {id:?}");
        let at_args = |e| common::omni_error_at(&action, e, AttributePath::new("args"));
        let spec = specs::KernelArgsSpec { args: args.clone() };
        let limit = Timeouts::get(&plan.timeouts, "create", CREATE_TIMEOUT);
        let work = async {
            let obj = Object::new(id.clone(), spec);
            let adopt = match common::create_or_adopt(ctx, &api, obj, limit, "kernel args")
                .await
                .map_err(at_args)?
            {
                Adoption::Created => None,
                Adoption::Found(existing) => Some(existing.spec.args),
                // Omni made it between our read and create: adopt what it holds now.
                Adoption::Raced => Some(api.get(&id).await.map_err(at_args)?.spec.args),
            };
            if let Some(original) = adopt {
                tracing::info!(
                    machine = id.as_str(),
                    "adopting the KernelArgs Omni already has"
                );
                private.set(ADOPTED_FROM, &original)?;
                api.update(&id, |o| o.spec.args.clone_from(&args))
                    .await
                    .map_err(at_args)?;
            }
            Ok(())
        };
        bounded(limit, &action, work).await?;
        plan.id = Value::Known(id.clone());
        plan.machine_id = Value::Known(id);
        Ok(plan)
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _prior: KernelArgsState,
        mut plan: KernelArgsState,
        _config: &KernelArgsState,
        _private: &mut PrivateState,
    ) -> Result<KernelArgsState> {
        let id = machine_id(&plan);
        let args = plan.args.clone().unwrap_or_default();
        let action = format!("updating kernel args of machine {id:?}");
        let api = common::api::<KernelArgs>(ctx)?;
        let limit = Timeouts::get(&plan.timeouts, "update", UPDATE_TIMEOUT);
        let work = async {
            api.update(&id, |o| o.spec.args.clone_from(&args))
                .await
                .map_err(|e| common::omni_error_at(&action, e, AttributePath::new("args")))
        };
        bounded(limit, &action, work).await?;
        plan.id = Value::Known(id);
        Ok(plan)
    }

    async fn delete(
        &self,
        ctx: &Ctx,
        prior: KernelArgsState,
        private: &PrivateState,
    ) -> Result<()> {
        let id = machine_id(&prior);
        let api = common::api::<KernelArgs>(ctx)?;
        let action = format!("removing kernel args of machine {id:?}");
        if let Some(original) = private.get::<Vec<String>>(ADOPTED_FROM) {
            // Omni's own object: give it back what it had.
            return match api.update(&id, |o| o.spec.args.clone_from(&original)).await {
                Ok(_) | Err(Error::NotFound(_)) => Ok(()),
                Err(e) => Err(common::omni_error(&action, e)),
            };
        }
        let limit = Timeouts::get(&prior.timeouts, "delete", DELETE_TIMEOUT);
        common::teardown_and_wait(
            ctx,
            &api,
            &id,
            limit,
            &format!("kernel args of machine {id:?}"),
        )
        .await
    }

    async fn import(&self, _ctx: &Ctx, id: &str) -> Result<KernelArgsState> {
        Ok(KernelArgsState {
            id: id.into(),
            machine_id: id.into(),
            args: Value::Null,
            timeouts: Value::Null,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: Vec<String>) -> KernelArgsState {
        KernelArgsState {
            id: Value::Unknown,
            machine_id: "m-1".into(),
            args: Value::Known(args),
            timeouts: Value::Null,
        }
    }

    #[test]
    fn limits_of_omni_are_plan_errors_at_the_element() {
        assert!(check_config(&config(vec!["console=ttyS0".into()])).is_ok());
        let e = check_config(&config((0..65).map(|i| format!("a{i}")).collect())).unwrap_err();
        assert_eq!(e.0[0].path, Some(AttributePath::new("args")));
        let e = check_config(&config(vec!["ok".into(), "x".repeat(257)])).unwrap_err();
        assert_eq!(e.0[0].path, Some(AttributePath::new("args").index(1)));
        assert!(check_config(&config(vec!["x".repeat(256)])).is_ok());
        let e = check_config(&config(vec!["a\nb".into()])).unwrap_err();
        assert_eq!(e.0[0].summary, "Invalid kernel argument");
        let e = check_config(&config(vec![" ".into()])).unwrap_err();
        assert_eq!(e.0[0].path, Some(AttributePath::new("args").index(0)));
    }

    #[test]
    fn unknown_values_are_not_checked() {
        let mut c = config(vec![]);
        c.args = Value::Unknown;
        c.machine_id = Value::Unknown;
        assert!(check_config(&c).is_ok());
    }
}
