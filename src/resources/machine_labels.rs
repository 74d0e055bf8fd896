//! `omni_machine_labels`: user labels on a machine (`MachineLabels`, ID = machine UUID; the
//! labels are the resource's metadata labels, omni-api.md §3.3).
//!
//! Omni may create the MachineLabels object itself on first join (cloud tags), so this resource
//! adopts an existing object instead of failing, and only ever removes the keys it set itself:
//! those are tracked in private state.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use omni_client::resources::MachineLabels;
use omni_client::{Error, Object};
use serde::{Deserialize, Serialize};
use talos_machinery::names;
use tfplugin::{
    async_trait, Attribute, AttributePath, Ctx, Diagnostic, Diagnostics, PrivateState, Resource,
    Result, Schema, Type, Value,
};

use crate::common::{self, bounded, meta, timeouts, Adoption, Timeouts};

const DESCRIPTION: &str = "\
Sets user labels on an Omni machine. Machine classes and the `omni_machines` data source can \
then select the machine by them (Omni copies them onto the machine's status labels).

Omni may already hold labels for the machine, e.g. from cloud platform tags when it first \
joined. This resource **adopts** them: it adds and updates the labels in `labels`, leaves the \
others alone, and on destroy removes only the keys it set. Labels added outside Terraform to \
keys it does not manage never show up as a change; a managed label changed outside Terraform \
does.

Keys with Omni's reserved prefix `omni.sidero.dev/` are refused.";

/// Default create timeout (includes waiting for a deleted predecessor to go away).
const CREATE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default update timeout.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(120);
/// Default delete timeout.
const DELETE_TIMEOUT: Duration = Duration::from_secs(300);

/// Private-state key: the label keys this resource set.
const MANAGED_KEYS: &str = "managed_keys";
/// Private-state key: whether this resource created the object (so may delete it).
const CREATED: &str = "created";

/// `omni_machine_labels` state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MachineLabelsState {
    /// Same as `machine_id`.
    pub id: Value<String>,
    /// Machine UUID.
    pub machine_id: Value<String>,
    /// The managed labels.
    pub labels: Value<BTreeMap<String, String>>,
    /// Timeouts.
    pub timeouts: Value<Timeouts>,
}

// ------------------------------------------------------------------------------------------
// Plan-time checks
// ------------------------------------------------------------------------------------------

fn check_config(c: &MachineLabelsState) -> Result<()> {
    let mut diags = Diagnostics::new();
    if let Some(id) = c.machine_id.as_str() {
        if let Err(e) = names::validate_resource_id(id) {
            diags.push(
                Diagnostic::error("Invalid machine ID", e).at(AttributePath::new("machine_id")),
            );
        }
    }
    if let Some(labels) = c.labels.as_option() {
        if labels.len() > names::MAX_ENTRIES {
            diags.push(
                Diagnostic::error(
                    "Too many labels",
                    format!(
                        "{} labels; Omni allows at most {}.",
                        labels.len(),
                        names::MAX_ENTRIES
                    ),
                )
                .at(AttributePath::new("labels")),
            );
        }
        for (k, v) in labels {
            let problem = names::validate_user_descriptor_key(k)
                .and_then(|_| names::validate_label_key(k))
                .and_then(|_| names::validate_label_value(v));
            if let Err(e) = problem {
                diags.push(
                    Diagnostic::error("Invalid label", e)
                        .at(AttributePath::new("labels").key(k.clone())),
                );
            }
        }
    }
    Timeouts::validate(&c.timeouts)?;
    diags.into_result()
}

// ------------------------------------------------------------------------------------------
// Label arithmetic (pure, unit-tested)
// ------------------------------------------------------------------------------------------

/// The managed view of a server map: only `managed` keys, or every user key when unknown
/// (after an import).
pub fn managed_view(
    server: &BTreeMap<String, String>,
    managed: Option<&BTreeSet<String>>,
) -> BTreeMap<String, String> {
    meta::user_entries(server)
        .into_iter()
        .filter(|(k, _)| managed.is_none_or(|m| m.contains(k)))
        .collect()
}

/// Applies `desired` to `server`: sets every desired entry and removes previously managed keys
/// that are no longer desired. Keys never managed are untouched.
pub fn apply_labels(
    server: &mut BTreeMap<String, String>,
    previously_managed: &BTreeSet<String>,
    desired: &BTreeMap<String, String>,
) {
    for k in previously_managed {
        if !desired.contains_key(k) {
            server.remove(k);
        }
    }
    for (k, v) in desired {
        server.insert(k.clone(), v.clone());
    }
}

fn machine_id(s: &MachineLabelsState) -> String {
    s.machine_id
        .as_str()
        .or(s.id.as_str())
        .unwrap_or_default()
        .to_string()
}

fn managed_keys(private: &PrivateState) -> Option<BTreeSet<String>> {
    private.get(MANAGED_KEYS)
}

/// The `omni_machine_labels` resource.
pub struct MachineLabelsResource;

#[async_trait]
impl Resource for MachineLabelsResource {
    const TYPE_NAME: &'static str = "omni_machine_labels";
    type State = MachineLabelsState;

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
                    .description(
                        "UUID of the machine; changing it moves the labels to another machine.",
                    ),
            )
            .attribute(
                Attribute::map("labels", Type::String)
                    .required()
                    .description("Labels to set. Other labels on the machine are left alone."),
            )
            .attribute(timeouts::attribute(
                CREATE_TIMEOUT,
                UPDATE_TIMEOUT,
                DELETE_TIMEOUT,
            ))
    }

    async fn validate(&self, _ctx: &Ctx, config: &MachineLabelsState) -> Result<()> {
        check_config(config)
    }

    async fn read(
        &self,
        ctx: &Ctx,
        mut state: MachineLabelsState,
        private: &mut PrivateState,
    ) -> Result<Option<MachineLabelsState>> {
        let id = machine_id(&state);
        let api = common::api::<MachineLabels>(ctx)?;
        // Confirmed with a watch: Omni's Get can lag behind a write (omni-api.md §1.9).
        let Some(obj) = common::get_for_read(ctx, &api, &id)
            .await
            .map_err(|e| common::omni_error(&format!("reading labels of machine {id:?}"), e))?
        else {
            return Ok(None);
        };
        if obj.is_tearing_down() {
            return Ok(None);
        }
        let managed = match managed_keys(private) {
            Some(keys) => keys,
            None => {
                // First read after an import (or of a state without private data): what is
                // there now becomes ours, and is recorded so that labels added by others later
                // stay theirs.
                let view = managed_view(&obj.metadata.labels, None);
                let keys: BTreeSet<String> = match state.labels.as_option() {
                    Some(known) => known
                        .keys()
                        .filter(|k| view.contains_key(*k))
                        .cloned()
                        .collect(),
                    None => view.into_keys().collect(),
                };
                private.set(MANAGED_KEYS, &keys)?;
                keys
            }
        };
        state.id = Value::Known(id.clone());
        state.machine_id = Value::Known(id);
        state.labels = Value::Known(managed_view(&obj.metadata.labels, Some(&managed)));
        Ok(Some(state))
    }

    async fn plan_create(
        &self,
        _ctx: &Ctx,
        mut plan: MachineLabelsState,
        _config: &MachineLabelsState,
        _private: &mut PrivateState,
    ) -> Result<MachineLabelsState> {
        if let Some(id) = plan.machine_id.as_str() {
            plan.id = Value::Known(id.to_string());
        }
        Ok(plan)
    }

    async fn create(
        &self,
        ctx: &Ctx,
        mut plan: MachineLabelsState,
        _config: &MachineLabelsState,
        private: &mut PrivateState,
    ) -> Result<MachineLabelsState> {
        let id = machine_id(&plan);
        let desired = plan.labels.clone().unwrap_or_default();
        let api = common::api::<MachineLabels>(ctx)?;
        let action = format!("setting labels of machine {id:?}");
        let limit = Timeouts::get(&plan.timeouts, "create", CREATE_TIMEOUT);
        let work = async {
            let mut obj = Object::<MachineLabels>::new(id.clone(), Default::default());
            obj.metadata.labels = desired.clone();
            // Found, or created by Omni between our read and our create: adopt it below.
            let created = matches!(
                common::create_or_adopt(ctx, &api, obj, limit, "machine labels")
                    .await
                    .map_err(|e| common::omni_error(&action, e))?,
                Adoption::Created
            );
            if !created {
                tracing::info!(
                    machine = id.as_str(),
                    "adopting the MachineLabels Omni already has"
                );
                let none = BTreeSet::new();
                api.update(&id, |o| {
                    apply_labels(&mut o.metadata.labels, &none, &desired)
                })
                .await
                .map_err(|e| common::omni_error(&action, e))?;
            }
            Ok(created)
        };
        let created = bounded(limit, &action, work).await?;
        private.set(MANAGED_KEYS, &desired.keys().collect::<BTreeSet<_>>())?;
        private.set(CREATED, &created)?;
        plan.id = Value::Known(id.clone());
        plan.machine_id = Value::Known(id);
        plan.labels = Value::Known(desired);
        Ok(plan)
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: MachineLabelsState,
        mut plan: MachineLabelsState,
        _config: &MachineLabelsState,
        private: &mut PrivateState,
    ) -> Result<MachineLabelsState> {
        let id = machine_id(&plan);
        let desired = plan.labels.clone().unwrap_or_default();
        // After an import nothing is recorded yet: what was imported is what we manage.
        let previous = managed_keys(private).unwrap_or_else(|| {
            prior
                .labels
                .clone()
                .unwrap_or_default()
                .into_keys()
                .collect()
        });
        let api = common::api::<MachineLabels>(ctx)?;
        let action = format!("updating labels of machine {id:?}");
        let limit = Timeouts::get(&plan.timeouts, "update", UPDATE_TIMEOUT);
        let work = async {
            api.update(&id, |o| {
                apply_labels(&mut o.metadata.labels, &previous, &desired)
            })
            .await
            .map_err(|e| common::omni_error(&action, e))
        };
        bounded(limit, &action, work).await?;
        private.set(MANAGED_KEYS, &desired.keys().collect::<BTreeSet<_>>())?;
        plan.id = Value::Known(id);
        Ok(plan)
    }

    async fn delete(
        &self,
        ctx: &Ctx,
        prior: MachineLabelsState,
        private: &PrivateState,
    ) -> Result<()> {
        let id = machine_id(&prior);
        let ours = managed_keys(private).unwrap_or_else(|| {
            prior
                .labels
                .clone()
                .unwrap_or_default()
                .into_keys()
                .collect()
        });
        let created: bool = private.get(CREATED).unwrap_or(false);
        let api = common::api::<MachineLabels>(ctx)?;
        let action = format!("removing labels of machine {id:?}");
        let Some(obj) = api
            .get_opt(&id)
            .await
            .map_err(|e| common::omni_error(&action, e))?
        else {
            return Ok(());
        };
        let others = obj.metadata.labels.keys().any(|k| !ours.contains(k));
        if created && !others {
            let limit = Timeouts::get(&prior.timeouts, "delete", DELETE_TIMEOUT);
            return common::teardown_and_wait(
                ctx,
                &api,
                &id,
                limit,
                &format!("labels of machine {id:?}"),
            )
            .await;
        }
        // Adopted, or somebody else added labels since: remove only our keys, keep the object.
        let desired = BTreeMap::new();
        match api
            .update(&id, |o| {
                apply_labels(&mut o.metadata.labels, &ours, &desired)
            })
            .await
        {
            Ok(_) | Err(Error::NotFound(_)) => Ok(()),
            Err(e) => Err(common::omni_error(&action, e)),
        }
    }

    async fn import(&self, _ctx: &Ctx, id: &str) -> Result<MachineLabelsState> {
        Ok(MachineLabelsState {
            id: id.into(),
            machine_id: id.into(),
            labels: Value::Null,
            timeouts: Value::Null,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn keys(k: &[&str]) -> BTreeSet<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn foreign_labels_survive_and_dropped_managed_keys_go() {
        let mut server = map(&[("cloud", "aws"), ("team", "old"), ("tier", "db")]);
        apply_labels(
            &mut server,
            &keys(&["team", "tier"]),
            &map(&[("team", "new"), ("env", "prod")]),
        );
        assert_eq!(
            server,
            map(&[("cloud", "aws"), ("env", "prod"), ("team", "new")])
        );
    }

    #[test]
    fn adoption_never_removes_what_was_there() {
        let mut server = map(&[("cloud", "aws"), ("team", "x")]);
        apply_labels(&mut server, &BTreeSet::new(), &map(&[("team", "y")]));
        assert_eq!(server, map(&[("cloud", "aws"), ("team", "y")]));
    }

    #[test]
    fn managed_view_shows_only_managed_user_keys() {
        let server = map(&[("cloud", "aws"), ("team", "x"), ("omni.sidero.dev/x", "1")]);
        assert_eq!(
            managed_view(&server, Some(&keys(&["team", "gone"]))),
            map(&[("team", "x")])
        );
        assert_eq!(
            managed_view(&server, None),
            map(&[("cloud", "aws"), ("team", "x")])
        );
    }

    fn config(labels: BTreeMap<String, String>) -> MachineLabelsState {
        MachineLabelsState {
            id: Value::Unknown,
            machine_id: "m-1".into(),
            labels: Value::Known(labels),
            timeouts: Value::Null,
        }
    }

    #[test]
    fn bad_labels_are_plan_errors_at_their_key() {
        let e = check_config(&config(map(&[("omni.sidero.dev/role", "x")]))).unwrap_err();
        assert_eq!(
            e.0[0].path,
            Some(AttributePath::new("labels").key("omni.sidero.dev/role"))
        );
        let e = check_config(&config(map(&[("", "x")]))).unwrap_err();
        assert_eq!(e.0[0].path, Some(AttributePath::new("labels").key("")));
        let e = check_config(&config(map(&[("k", "a\u{7}b")]))).unwrap_err();
        assert_eq!(e.0[0].path, Some(AttributePath::new("labels").key("k")));
        let many: BTreeMap<String, String> = (0..300)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        let e = check_config(&config(many)).unwrap_err();
        assert_eq!(e.0[0].path, Some(AttributePath::new("labels")));
        let mut c = config(map(&[("ok", "fine")]));
        assert!(check_config(&c).is_ok());
        c.machine_id = "".into();
        let e = check_config(&c).unwrap_err();
        assert_eq!(e.0[0].path, Some(AttributePath::new("machine_id")));
    }
}
