//! `omni_machine_class`: a named selector over machines, or an auto-provision rule
//! (`MachineClasses.omni.sidero.dev`), used by `omni_machine_set.machine_class`.

use std::time::Duration;

use omni_client::omni_api::specs::{
    machine_class_spec::Provision, GrpcTunnelMode, MachineClassSpec, MetaValue,
};
use omni_client::resources::MachineClass;
use omni_client::Object;
use serde::{Deserialize, Serialize};
use talos_machinery::selector;
use tfplugin::{
    async_trait, Attribute, AttributePath, Block, BlockNesting, Ctx, Diagnostic, Diagnostics,
    NestedBlock, Nesting, PrivateState, Resource, Result, Schema, Type, Value,
};

use crate::common::{self, timeouts, Timeouts};

const DESCRIPTION: &str = "\
A machine class: either a set of label selectors over the machines Omni knows \
(`match_labels`), or a rule asking an infrastructure provider to create machines \
(`auto_provision`). Machine sets allocate machines from a class by name.

Each `match_labels` entry is one selector; entries are OR-ed, and the comma-separated terms \
inside one entry are AND-ed. The syntax is Kubernetes-like: `key`, `!key`, `key=value`, \
`key!=value`, `key in (a, b)`, `key notin (a, b)`, and numeric comparisons `<`, `<=`, `>`, \
`>=` that understand units (`omni.sidero.dev/mem>=16GiB`). Selectors are checked while \
planning.

Omni refuses to delete a class that machine sets still use; delete those first.";

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The `omni_machine_class` resource.
pub struct MachineClassResource;

/// State of `omni_machine_class`.
#[derive(Serialize, Deserialize, Clone, PartialEq, Default)]
pub struct MachineClassState {
    /// Same as `name`.
    pub id: Value<String>,
    /// Class name (= Omni ID).
    pub name: Value<String>,
    /// Selectors, OR-ed.
    pub match_labels: Value<Vec<String>>,
    /// Auto-provision rule.
    pub auto_provision: Value<AutoProvision>,
    /// Time limits.
    #[serde(default)]
    pub timeouts: Value<Timeouts>,
}

/// `auto_provision` of `omni_machine_class` (MachineClassSpec.Provision, omni-api.md §3.4).
#[derive(Serialize, Deserialize, Clone, PartialEq, Default)]
pub struct AutoProvision {
    /// Infrastructure provider ID.
    pub provider_id: Value<String>,
    /// Extra kernel arguments for provisioned machines.
    pub kernel_args: Value<Vec<String>>,
    /// Talos META values.
    pub meta_values: Value<Vec<MetaValueState>>,
    /// Provider-specific data (YAML/JSON text).
    pub provider_data: Value<String>,
    /// SideroLink gRPC tunnel mode.
    pub grpc_tunnel: Value<String>,
}

/// One element of `auto_provision.meta_values`.
#[derive(Serialize, Deserialize, Clone, PartialEq, Default)]
pub struct MetaValueState {
    /// META key.
    pub key: Value<i64>,
    /// Value.
    pub value: Value<String>,
}

const TUNNEL_MODES: [(&str, GrpcTunnelMode); 3] = [
    ("unset", GrpcTunnelMode::Unset),
    ("enabled", GrpcTunnelMode::Enabled),
    ("disabled", GrpcTunnelMode::Disabled),
];

#[async_trait]
impl Resource for MachineClassResource {
    const TYPE_NAME: &'static str = "omni_machine_class";
    type State = MachineClassState;

    fn schema(&self) -> Schema {
        let meta = vec![
            Attribute::number("key")
                .required()
                .description("META key (a number, e.g. `12`)."),
            Attribute::string("value").required().description("Value."),
        ];
        let provision = vec![
            Attribute::string("provider_id")
                .required()
                .description("ID of the infrastructure provider that creates the machines."),
            Attribute::list("kernel_args", Type::String)
                .optional()
                .description("Extra kernel arguments (at most 64, each at most 256 bytes)."),
            Attribute::nested("meta_values", Nesting::List, meta)
                .optional()
                .description("Talos META key/value pairs written to provisioned machines."),
            Attribute::string("provider_data").optional().description(
                "Provider-specific settings (YAML or JSON text), checked by Omni against the \
                 provider's schema.",
            ),
            Attribute::string("grpc_tunnel")
                .optional_computed()
                .description(
                    "SideroLink gRPC tunnel for provisioned machines: `unset` (the instance \
                 default, the default here), `enabled` or `disabled`.",
                ),
        ];
        Schema::new(DESCRIPTION)
            .attribute(
                Attribute::string("id")
                    .computed()
                    .description("Same as `name`."),
            )
            .attribute(
                Attribute::string("name")
                    .required()
                    .requires_replace()
                    .description("Class name (the Omni ID). Changing it replaces the class."),
            )
            .attribute(
                Attribute::list("match_labels", Type::String)
                    .optional()
                    .description(
                    "Label selectors; a machine belongs to the class when it matches any of them. \
                 Set this or `auto_provision`, not both.",
                ),
            )
            .attribute(timeouts::attribute(
                DEFAULT_TIMEOUT,
                DEFAULT_TIMEOUT,
                DEFAULT_TIMEOUT,
            ))
            .block(NestedBlock::new(
                "auto_provision",
                BlockNesting::Single,
                provision.into_iter().fold(
                    Block::new(
                        "Provision machines through an infrastructure provider instead of \
                         selecting existing ones. Set this or `match_labels`, not both.",
                    ),
                    Block::attribute,
                ),
            ))
    }

    async fn validate(&self, _ctx: &Ctx, config: &MachineClassState) -> Result<()> {
        let mut diags = Diagnostics::new();
        Timeouts::validate(&config.timeouts).unwrap_or_else(|d| diags.extend(d));
        if let Some(name) = config.name.as_str() {
            if let Err(e) = talos_machinery::names::validate_resource_id(name) {
                diags.push(
                    Diagnostic::error("Invalid machine class name", e)
                        .at(AttributePath::new("name")),
                );
            }
        }
        check_selectors(&config.match_labels, &mut diags);
        check_provision(&config.auto_provision, &mut diags);
        // omni-api.md §4 "MachineClass": not both, and one of them.
        let has_labels = match &config.match_labels {
            Value::Known(l) => Some(!l.is_empty()),
            Value::Null => Some(false),
            Value::Unknown => None,
        };
        let has_provision = match &config.auto_provision {
            Value::Known(_) => Some(true),
            Value::Null => Some(false),
            Value::Unknown => None,
        };
        match (has_labels, has_provision) {
            (Some(true), Some(true)) => diags.push(
                Diagnostic::error(
                    "Conflicting machine class settings",
                    "Omni refuses a machine class with both `match_labels` and \
                     `auto_provision`: set one of them.",
                )
                .at(AttributePath::new("match_labels")),
            ),
            (Some(false), Some(false)) => diags.push(
                Diagnostic::error(
                    "Empty machine class",
                    "A machine class needs either `match_labels` (at least one selector) or \
                     `auto_provision`.",
                )
                .at(AttributePath::new("match_labels")),
            ),
            _ => {}
        }
        diags.into_result()
    }

    async fn read(
        &self,
        ctx: &Ctx,
        state: MachineClassState,
        _private: &mut PrivateState,
    ) -> Result<Option<MachineClassState>> {
        let Some(id) = state.id.as_str().or(state.name.as_str()) else {
            return Ok(None);
        };
        let api = common::api::<MachineClass>(ctx)?;
        let obj = common::get_for_read(ctx, &api, id)
            .await
            .map_err(|e| common::omni_error(&format!("reading machine class {id:?}"), e))?;
        Ok(match obj {
            None => None,
            Some(o) if o.is_tearing_down() => None,
            Some(o) => Some(state_from_object(&o, state)),
        })
    }

    async fn plan_create(
        &self,
        _ctx: &Ctx,
        mut plan: MachineClassState,
        _config: &MachineClassState,
        _private: &mut PrivateState,
    ) -> Result<MachineClassState> {
        plan.id = plan.name.clone();
        default_tunnel(&mut plan);
        Ok(plan)
    }

    async fn plan_update(
        &self,
        _ctx: &Ctx,
        _prior: &MachineClassState,
        mut plan: MachineClassState,
        _config: &MachineClassState,
        _private: &mut PrivateState,
        _requires_replace: &mut Vec<AttributePath>,
    ) -> Result<MachineClassState> {
        plan.id = plan.name.clone();
        default_tunnel(&mut plan);
        Ok(plan)
    }

    async fn create(
        &self,
        ctx: &Ctx,
        mut plan: MachineClassState,
        _config: &MachineClassState,
        _private: &mut PrivateState,
    ) -> Result<MachineClassState> {
        let name = plan.name.as_str().unwrap_or_default().to_string();
        let spec = spec_from_state(&plan)?;
        let api = common::api::<MachineClass>(ctx)?;
        let timeout = Timeouts::get(&plan.timeouts, "create", DEFAULT_TIMEOUT);
        common::create_replacing_dying(
            ctx,
            &api,
            Object::new(name.clone(), spec),
            timeout,
            "machine class",
        )
        .await
        .map_err(|e| error_diag(&format!("creating machine class {name:?}"), e))?;
        plan.id = Value::Known(name);
        default_tunnel(&mut plan);
        Ok(plan)
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _prior: MachineClassState,
        mut plan: MachineClassState,
        _config: &MachineClassState,
        _private: &mut PrivateState,
    ) -> Result<MachineClassState> {
        let name = plan.name.as_str().unwrap_or_default().to_string();
        let spec = spec_from_state(&plan)?;
        let api = common::api::<MachineClass>(ctx)?;
        api.update(&name, |o| o.spec = spec.clone())
            .await
            .map_err(|e| error_diag(&format!("updating machine class {name:?}"), e))?;
        plan.id = Value::Known(name);
        Ok(plan)
    }

    async fn delete(
        &self,
        ctx: &Ctx,
        prior: MachineClassState,
        _private: &PrivateState,
    ) -> Result<()> {
        let Some(id) = prior.id.as_str().or(prior.name.as_str()) else {
            return Ok(());
        };
        let api = common::api::<MachineClass>(ctx)?;
        let timeout = Timeouts::get(&prior.timeouts, "delete", DEFAULT_TIMEOUT);
        common::teardown_and_wait(ctx, &api, id, timeout, &format!("machine class {id:?}")).await
    }

    async fn import(&self, _ctx: &Ctx, id: &str) -> Result<MachineClassState> {
        Ok(MachineClassState {
            id: id.into(),
            name: id.into(),
            ..Default::default()
        })
    }
}

/// `grpc_tunnel` defaults to `unset` (what an absent value means to Omni).
fn default_tunnel(plan: &mut MachineClassState) {
    if let Some(p) = plan.auto_provision.as_option_mut() {
        if p.grpc_tunnel.is_null() {
            p.grpc_tunnel = Value::Known("unset".into());
        }
    }
}

fn check_selectors(labels: &Value<Vec<String>>, diags: &mut Diagnostics) {
    let Value::Known(list) = labels else { return };
    for (i, s) in list.iter().enumerate() {
        let problem = match selector::parse_selector(s) {
            Err(e) => Some(format!("{s:?} is not a valid label selector: {}", e.0)),
            Ok(_) => selector::parse_machine_class_selectors(std::slice::from_ref(s)).err(),
        };
        if let Some(text) = problem {
            diags.push(
                Diagnostic::error("Invalid label selector", text)
                    .at(AttributePath::new("match_labels").index(i as i64)),
            );
        }
    }
}

fn check_provision(provision: &Value<AutoProvision>, diags: &mut Diagnostics) {
    let Value::Known(p) = provision else { return };
    let path = |f: &str| AttributePath::new("auto_provision").attr(f);
    if p.provider_id.as_str() == Some("") {
        diags.push(
            Diagnostic::error("Empty provider ID", "`provider_id` must not be empty.")
                .at(path("provider_id")),
        );
    }
    if let Value::Known(args) = &p.kernel_args {
        if let Err(e) = talos_machinery::names::validate_kernel_args(args) {
            diags.push(Diagnostic::error("Invalid kernel arguments", e).at(path("kernel_args")));
        }
    }
    if let Some(mode) = p.grpc_tunnel.as_str() {
        if tunnel_mode(mode).is_none() {
            diags.push(
                Diagnostic::error(
                    "Invalid gRPC tunnel mode",
                    format!("{mode:?} is not one of `unset`, `enabled`, `disabled`."),
                )
                .at(path("grpc_tunnel")),
            );
        }
    }
    if let Value::Known(values) = &p.meta_values {
        for (i, m) in values.iter().enumerate() {
            if let Some(k) = m.key.as_option() {
                if u32::try_from(*k).is_err() {
                    diags.push(
                        Diagnostic::error(
                            "Invalid META key",
                            format!("META key {k} is out of range (0 to 4294967295)."),
                        )
                        .at(path("meta_values").index(i as i64).attr("key")),
                    );
                }
            }
        }
    }
}

fn tunnel_mode(text: &str) -> Option<GrpcTunnelMode> {
    TUNNEL_MODES
        .iter()
        .find(|(n, _)| *n == text)
        .map(|(_, m)| *m)
}

fn tunnel_name(mode: i32) -> String {
    TUNNEL_MODES
        .iter()
        .find(|(_, m)| *m as i32 == mode)
        .map(|(n, _)| n.to_string())
        .unwrap_or_else(|| format!("unknown ({mode})"))
}

fn spec_from_state(s: &MachineClassState) -> Result<MachineClassSpec> {
    let auto_provision = match &s.auto_provision {
        Value::Known(p) => Some(Provision {
            provider_id: p.provider_id.as_str().unwrap_or_default().to_string(),
            kernel_args: p.kernel_args.clone().unwrap_or_default(),
            meta_values: p
                .meta_values
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|m| MetaValue {
                    key: m
                        .key
                        .known()
                        .and_then(|k| u32::try_from(k).ok())
                        .unwrap_or(0),
                    value: m.value.unwrap_or_default(),
                })
                .collect(),
            provider_data: p.provider_data.as_str().unwrap_or_default().to_string(),
            grpc_tunnel: p
                .grpc_tunnel
                .as_str()
                .and_then(tunnel_mode)
                .unwrap_or(GrpcTunnelMode::Unset) as i32,
        }),
        _ => None,
    };
    Ok(MachineClassSpec {
        match_labels: s.match_labels.clone().unwrap_or_default(),
        auto_provision,
    })
}

/// Refreshes `prior` from the server. Empty lists stay as the user wrote them (`[]` or
/// absent), since the wire cannot tell the two apart.
fn state_from_object(o: &Object<MachineClass>, prior: MachineClassState) -> MachineClassState {
    let mut s = prior;
    s.id = Value::Known(o.id().to_string());
    s.name = Value::Known(o.id().to_string());
    s.match_labels = list_like(&s.match_labels, &o.spec.match_labels);
    s.auto_provision = match &o.spec.auto_provision {
        None => Value::Null,
        Some(p) => {
            let mine = s.auto_provision.clone().known().unwrap_or_default();
            let metas: Vec<MetaValueState> = p
                .meta_values
                .iter()
                .map(|m| MetaValueState {
                    key: Value::Known(i64::from(m.key)),
                    value: Value::Known(m.value.clone()),
                })
                .collect();
            Value::Known(AutoProvision {
                provider_id: Value::Known(p.provider_id.clone()),
                kernel_args: list_like(&mine.kernel_args, &p.kernel_args),
                meta_values: if metas.is_empty() && !matches!(mine.meta_values, Value::Known(_)) {
                    Value::Null
                } else {
                    Value::Known(metas)
                },
                provider_data: if p.provider_data.is_empty() && mine.provider_data.is_null() {
                    Value::Null
                } else {
                    Value::Known(p.provider_data.clone())
                },
                grpc_tunnel: Value::Known(tunnel_name(p.grpc_tunnel)),
            })
        }
    };
    s
}

fn list_like(mine: &Value<Vec<String>>, server: &[String]) -> Value<Vec<String>> {
    if server.is_empty() && !matches!(mine, Value::Known(_)) {
        Value::Null
    } else {
        Value::Known(server.to_vec())
    }
}

/// Which attribute an Omni refusal concerns (omni-api.md §4 "MachineClass" messages).
fn error_diag(action: &str, err: omni_client::Error) -> Diagnostics {
    let text = err.to_string();
    // `auto_provision` is a block: Terraform places diagnostics only on its attributes.
    let provision = |field: &str| AttributePath::new("auto_provision").attr(field);
    if text.contains("kernel") {
        common::omni_error_at(action, err, provision("kernel_args"))
    } else if text.contains("provider data") || text.contains("schema") {
        common::omni_error_at(action, err, provision("provider_data"))
    } else if text.contains("provider") {
        common::omni_error_at(action, err, provision("provider_id"))
    } else if text.contains("selector") || text.contains("match labels") {
        common::omni_error_at(action, err, AttributePath::new("match_labels"))
    } else {
        common::omni_error(action, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(s: &MachineClassState) -> Vec<String> {
        let mut diags = Diagnostics::new();
        check_selectors(&s.match_labels, &mut diags);
        check_provision(&s.auto_provision, &mut diags);
        diags
            .iter()
            .map(|d| d.path.as_ref().map(|p| p.to_string()).unwrap_or_default())
            .collect()
    }

    #[test]
    fn bad_selectors_point_at_their_index() {
        let s = MachineClassState {
            name: "c".into(),
            match_labels: Value::Known(vec![
                "omni.sidero.dev/arch=amd64".into(),
                "a in (b".into(),
                "omni.sidero.dev/no-manual-allocation".into(),
            ]),
            ..Default::default()
        };
        assert_eq!(paths(&s), vec!["match_labels[1]", "match_labels[2]"]);
    }

    #[test]
    fn provision_round_trips_through_the_spec() {
        let s = MachineClassState {
            id: "c".into(),
            name: "c".into(),
            auto_provision: Value::Known(AutoProvision {
                provider_id: "kubevirt".into(),
                kernel_args: Value::Known(vec!["console=ttyS0".into()]),
                meta_values: Value::Known(vec![MetaValueState {
                    key: Value::Known(12),
                    value: "x".into(),
                }]),
                provider_data: "cores: 2\n".into(),
                grpc_tunnel: "enabled".into(),
            }),
            ..Default::default()
        };
        let spec = spec_from_state(&s).unwrap();
        let o = Object::<MachineClass>::new("c", spec);
        let back = state_from_object(&o, MachineClassState::default());
        assert!(back == s, "round trip changed the state");
    }

    #[test]
    fn empty_lists_keep_the_users_form() {
        let o = Object::<MachineClass>::new(
            "c",
            MachineClassSpec {
                match_labels: vec![],
                auto_provision: Some(Provision {
                    provider_id: "p".into(),
                    ..Default::default()
                }),
            },
        );
        let prior = MachineClassState {
            match_labels: Value::Known(vec![]),
            ..Default::default()
        };
        let s = state_from_object(&o, prior);
        assert_eq!(s.match_labels, Value::Known(vec![]));
        let s = state_from_object(&o, MachineClassState::default());
        assert!(s.match_labels.is_null());
        let p = s.auto_provision.known().unwrap();
        assert_eq!(p.grpc_tunnel.as_str(), Some("unset"));
        assert!(p.kernel_args.is_null() && p.provider_data.is_null());
    }

    #[test]
    fn bad_provision_fields() {
        let s = MachineClassState {
            auto_provision: Value::Known(AutoProvision {
                provider_id: "".into(),
                grpc_tunnel: "sometimes".into(),
                kernel_args: Value::Known(vec!["x".repeat(300)]),
                meta_values: Value::Known(vec![MetaValueState {
                    key: Value::Known(-1),
                    value: "v".into(),
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            paths(&s),
            vec![
                "auto_provision.provider_id",
                "auto_provision.kernel_args",
                "auto_provision.grpc_tunnel",
                "auto_provision.meta_values[0].key"
            ]
        );
    }
}
