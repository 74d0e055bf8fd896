//! `omni_machines`: the machine inventory (`MachineStatuses`), filtered by a MachineClass-style
//! label selector and a few convenience filters.
//!
//! The machine shape and its conversion from `MachineStatus` live here and are shared with the
//! single-machine data source `omni_machine`.

use std::collections::BTreeMap;

use omni_client::omni_api::specs;
use omni_client::resources::{labels as omni_labels, MachineStatus};
use omni_client::{ListParams, Object};
use serde::{Deserialize, Serialize};
use talos_machinery::selector::{parse_selector, LabelQuery};
use tfplugin::{
    async_trait, Attribute, AttributePath, Ctx, DataSource, Diagnostic, Nesting, Result, Schema,
    Type, Value,
};

use crate::common;

const DESCRIPTION: &str = "\
Lists Omni machines, so configurations can pick machines by what they are instead of \
hard-coding UUIDs.

Filters combine with AND:

* `selector` uses Omni's MachineClass selector syntax (the same as `match_labels` of a machine \
  class): comma-separated terms that must all hold, e.g. \
  `omni.sidero.dev/arch = amd64, omni.sidero.dev/cores >= 4, !omni.sidero.dev/cluster`. Terms are \
  `key`, `!key`, `key = v`, `key != v`, `key in (a, b)`, `key notin (a, b)` and the numeric \
  `<`, `<=`, `>`, `>=` (units such as `16GiB` allowed). It is checked at plan time.
* `connected`, `available` and `cluster` are shortcuts for the common cases.

The selector matches the machine's status labels: Omni's own `omni.sidero.dev/*` labels \
(`arch`, `cores`, `mem`, `platform`, `region`, `zone`, `talos-version`, `available`, \
`connected`, ...) plus the user labels set with `omni_machine_labels`.

An empty result is not an error: `machines` is then an empty list.";

/// One machine as exposed by `omni_machines` and `omni_machine`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MachineModel {
    /// Machine UUID.
    pub id: Value<String>,
    /// Status labels (Omni's and the user's).
    pub labels: Value<BTreeMap<String, String>>,
    /// Hostname reported by Talos.
    pub hostname: Value<String>,
    /// Network addresses (CIDR notation).
    pub addresses: Value<Vec<String>>,
    /// CPU architecture.
    pub arch: Value<String>,
    /// CPU model.
    pub cpu: Value<String>,
    /// Total CPU cores.
    pub cores: Value<i64>,
    /// Total memory in MiB.
    pub memory: Value<i64>,
    /// Block devices.
    pub disks: Value<Vec<DiskModel>>,
    /// Running Talos version, without `v`.
    pub talos_version: Value<String>,
    /// Cluster the machine belongs to (null when free).
    pub cluster: Value<String>,
    /// `controlplane`, `worker`, or null.
    pub role: Value<String>,
    /// Platform (`metal`, `aws`, ...).
    pub platform: Value<String>,
    /// Cloud region.
    pub region: Value<String>,
    /// Cloud zone.
    pub zone: Value<String>,
    /// Connected to Omni right now.
    pub connected: Value<bool>,
    /// Free to be added to a cluster.
    pub available: Value<bool>,
    /// Running from ISO/PXE (Talos not installed).
    pub maintenance: Value<bool>,
    /// Omni's management address of the machine.
    pub management_address: Value<String>,
}

/// One block device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiskModel {
    /// Device path, e.g. `/dev/sda`.
    pub dev_path: Value<String>,
    /// Size in bytes.
    pub size: Value<i64>,
    /// Model.
    pub model: Value<String>,
    /// Serial number.
    pub serial: Value<String>,
    /// Type (`HDD`, `SSD`, `NVME`, ...).
    pub r#type: Value<String>,
    /// Whether Talos is installed on it.
    pub system_disk: Value<bool>,
}

/// The schema attributes of one machine (shared with `omni_machine`). `id_attr` builds the
/// `id` attribute, which is an input for `omni_machine` and an output here.
pub fn machine_attributes(id_attr: Attribute) -> Vec<Attribute> {
    let disk = vec![
        Attribute::string("dev_path")
            .computed()
            .description("Device path, e.g. `/dev/sda`."),
        Attribute::number("size")
            .computed()
            .description("Size in bytes."),
        Attribute::string("model").computed().description("Model."),
        Attribute::string("serial")
            .computed()
            .description("Serial number."),
        Attribute::string("type")
            .computed()
            .description("Disk type as Talos reports it (`HDD`, `SSD`, `NVME`, ...)."),
        Attribute::bool("system_disk")
            .computed()
            .description("Whether Talos is installed on this disk."),
    ];
    vec![
        id_attr,
        Attribute::map("labels", Type::String)
            .computed()
            .description(
            "Status labels: Omni's `omni.sidero.dev/*` labels plus the user labels of the machine.",
        ),
        Attribute::string("hostname")
            .computed()
            .description("Hostname reported by Talos."),
        Attribute::list("addresses", Type::String)
            .computed()
            .description("Network addresses in CIDR notation."),
        Attribute::string("arch")
            .computed()
            .description("CPU architecture (`amd64`, `arm64`)."),
        Attribute::string("cpu")
            .computed()
            .description("CPU model of the first processor."),
        Attribute::number("cores")
            .computed()
            .description("Total number of CPU cores."),
        Attribute::number("memory")
            .computed()
            .description("Total memory in MiB."),
        Attribute::nested("disks", Nesting::List, disk)
            .computed()
            .description("Block devices."),
        Attribute::string("talos_version")
            .computed()
            .description("Running Talos version, without the `v` prefix."),
        Attribute::string("cluster")
            .computed()
            .description("Name of the cluster the machine belongs to; null when it is free."),
        Attribute::string("role")
            .computed()
            .description("`controlplane` or `worker` inside its cluster; null when it is free."),
        Attribute::string("platform")
            .computed()
            .description("Platform Talos runs on (`metal`, `aws`, ...)."),
        Attribute::string("region")
            .computed()
            .description("Cloud region, when the platform reports one."),
        Attribute::string("zone")
            .computed()
            .description("Cloud zone, when the platform reports one."),
        Attribute::bool("connected")
            .computed()
            .description("Whether the machine is connected to Omni."),
        Attribute::bool("available")
            .computed()
            .description("Whether the machine is free to be added to a cluster."),
        Attribute::bool("maintenance")
            .computed()
            .description("Whether the machine runs from ISO/PXE (Talos not installed yet)."),
        Attribute::string("management_address")
            .computed()
            .description("Omni's SideroLink address of the machine."),
    ]
}

fn non_empty(s: &str) -> Value<String> {
    if s.is_empty() {
        Value::Null
    } else {
        Value::Known(s.to_string())
    }
}

/// Converts a `MachineStatus` (omni-api.md §3.4 MachineStatusSpec) into the Terraform shape.
pub fn machine_from_status(obj: &Object<MachineStatus>) -> MachineModel {
    use specs::machine_status_spec::Role;
    let s = &obj.spec;
    let hw = s.hardware.clone().unwrap_or_default();
    let net = s.network.clone().unwrap_or_default();
    let platform = s.platform_metadata.clone().unwrap_or_default();
    let labels = &obj.metadata.labels;
    let role = match Role::try_from(s.role) {
        Ok(Role::ControlPlane) => Value::Known("controlplane".to_string()),
        Ok(Role::Worker) => Value::Known("worker".to_string()),
        _ => Value::Null,
    };
    let cores: i64 = hw.processors.iter().map(|p| i64::from(p.core_count)).sum();
    let memory: i64 = hw.memory_modules.iter().map(|m| i64::from(m.size_mb)).sum();
    let disks = hw
        .blockdevices
        .iter()
        .map(|d| DiskModel {
            dev_path: non_empty(if d.dev_path.is_empty() {
                &d.linux_name
            } else {
                &d.dev_path
            }),
            size: Value::Known(i64::try_from(d.size).unwrap_or(i64::MAX)),
            model: non_empty(&d.model),
            serial: non_empty(&d.serial),
            r#type: non_empty(&d.r#type),
            system_disk: Value::Known(d.system_disk),
        })
        .collect();
    MachineModel {
        id: Value::Known(obj.id().to_string()),
        labels: Value::Known(labels.clone()),
        hostname: non_empty(&net.hostname),
        addresses: Value::Known(net.addresses.clone()),
        arch: non_empty(&hw.arch),
        cpu: non_empty(
            hw.processors
                .first()
                .map(|p| p.description.as_str())
                .unwrap_or(""),
        ),
        cores: Value::Known(cores),
        memory: Value::Known(memory),
        disks: Value::Known(disks),
        talos_version: non_empty(s.talos_version.trim_start_matches('v')),
        cluster: non_empty(&s.cluster),
        role,
        platform: non_empty(&platform.platform),
        region: non_empty(&platform.region),
        zone: non_empty(&platform.zone),
        connected: Value::Known(s.connected),
        available: Value::Known(labels.contains_key(omni_labels::AVAILABLE)),
        maintenance: Value::Known(s.maintenance),
        management_address: non_empty(&s.management_address),
    }
}

/// `omni_machines` configuration and result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MachinesState {
    /// Selector in MachineClass syntax.
    pub selector: Value<String>,
    /// Only (dis)connected machines.
    pub connected: Value<bool>,
    /// Only machines that are (not) free.
    pub available: Value<bool>,
    /// Only machines of this cluster.
    pub cluster: Value<String>,
    /// IDs of the matching machines.
    pub ids: Value<Vec<String>>,
    /// The matching machines.
    pub machines: Value<Vec<MachineModel>>,
}

/// The filters of `omni_machines`, resolved from configuration.
#[derive(Debug, Default)]
pub struct MachineFilter {
    selector: Option<LabelQuery>,
    connected: Option<bool>,
    available: Option<bool>,
    cluster: Option<String>,
}

/// Parses `selector`, blaming the attribute on failure.
fn parse_selector_at(selector: &str) -> Result<LabelQuery> {
    parse_selector(selector).map_err(|e| {
        Diagnostic::error(
            "Invalid machine selector",
            format!(
                "{selector:?} is not a valid selector: {e}. Use MachineClass syntax, e.g. \
                 `omni.sidero.dev/arch = amd64, omni.sidero.dev/cores >= 4`."
            ),
        )
        .at(AttributePath::new("selector"))
        .into()
    })
}

impl MachineFilter {
    /// Builds the filter from configuration.
    pub fn from_config(c: &MachinesState) -> Result<Self> {
        Ok(MachineFilter {
            selector: match c.selector.as_str() {
                Some(s) if !s.trim().is_empty() => Some(parse_selector_at(s)?),
                _ => None,
            },
            connected: c.connected.as_option().copied(),
            available: c.available.as_option().copied(),
            cluster: c.cluster.clone().known(),
        })
    }

    /// Whether one machine passes every configured filter.
    pub fn matches(&self, m: &Object<MachineStatus>) -> bool {
        let labels = &m.metadata.labels;
        if let Some(q) = &self.selector {
            if !q.matches(labels) {
                return false;
            }
        }
        if let Some(c) = self.connected {
            if m.spec.connected != c {
                return false;
            }
        }
        if let Some(a) = self.available {
            if labels.contains_key(omni_labels::AVAILABLE) != a {
                return false;
            }
        }
        if let Some(cluster) = &self.cluster {
            if &m.spec.cluster != cluster {
                return false;
            }
        }
        true
    }
}

/// The `omni_machines` data source.
pub struct MachinesDataSource;

#[async_trait]
impl DataSource for MachinesDataSource {
    const TYPE_NAME: &'static str = "omni_machines";
    type State = MachinesState;

    fn schema(&self) -> Schema {
        let machine = machine_attributes(
            Attribute::string("id")
                .computed()
                .description("Machine UUID."),
        );
        Schema::new(DESCRIPTION)
            .attribute(Attribute::string("selector").optional().description(
                "Label selector in Omni's MachineClass syntax, e.g. \
                 `omni.sidero.dev/arch = amd64, omni.sidero.dev/cores >= 4`. Terms are ANDed.",
            ))
            .attribute(
                Attribute::bool("connected")
                    .optional()
                    .description("Only machines that are (`true`) or are not (`false`) connected."),
            )
            .attribute(Attribute::bool("available").optional().description(
                "Only machines that are (`true`) or are not (`false`) free to join a cluster.",
            ))
            .attribute(
                Attribute::string("cluster")
                    .optional()
                    .description("Only machines of this cluster."),
            )
            .attribute(
                Attribute::list("ids", Type::String)
                    .computed()
                    .description("IDs of the matching machines, sorted."),
            )
            .attribute(
                Attribute::nested("machines", Nesting::List, machine)
                    .computed()
                    .description("The matching machines, sorted by ID."),
            )
    }

    async fn validate(&self, _ctx: &Ctx, config: &MachinesState) -> Result<()> {
        if let Some(s) = config.selector.as_str() {
            parse_selector_at(s)?;
        }
        Ok(())
    }

    async fn read(&self, ctx: &Ctx, mut config: MachinesState) -> Result<MachinesState> {
        let filter = MachineFilter::from_config(&config)?;
        let api = common::api::<MachineStatus>(ctx)?;
        let all = api
            .list(&ListParams::default())
            .await
            .map_err(|e| common::omni_error("listing machines", e))?;
        let machines: Vec<MachineModel> = all
            .iter()
            .filter(|m| filter.matches(m))
            .map(machine_from_status)
            .collect();
        config.ids = Value::Known(
            machines
                .iter()
                .filter_map(|m| m.id.as_str().map(str::to_string))
                .collect(),
        );
        config.machines = Value::Known(machines);
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use specs::machine_status_spec as ms;

    fn machine(
        id: &str,
        labels: &[(&str, &str)],
        cluster: &str,
        connected: bool,
    ) -> Object<MachineStatus> {
        let spec = specs::MachineStatusSpec {
            talos_version: "v1.13.8".into(),
            connected,
            cluster: cluster.into(),
            role: if cluster.is_empty() {
                ms::Role::None as i32
            } else {
                ms::Role::Worker as i32
            },
            hardware: Some(ms::HardwareStatus {
                processors: vec![
                    ms::hardware_status::Processor {
                        core_count: 4,
                        description: "EPYC".into(),
                        ..Default::default()
                    },
                    ms::hardware_status::Processor {
                        core_count: 4,
                        ..Default::default()
                    },
                ],
                memory_modules: vec![
                    ms::hardware_status::MemoryModule {
                        size_mb: 8192,
                        ..Default::default()
                    },
                    ms::hardware_status::MemoryModule {
                        size_mb: 8192,
                        ..Default::default()
                    },
                ],
                blockdevices: vec![ms::hardware_status::BlockDevice {
                    size: 500_000_000_000,
                    linux_name: "/dev/sda".into(),
                    system_disk: true,
                    ..Default::default()
                }],
                arch: "amd64".into(),
            }),
            platform_metadata: Some(ms::PlatformMetadata {
                platform: "aws".into(),
                region: "eu-west-1".into(),
                zone: "eu-west-1a".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut o = Object::<MachineStatus>::new(id, spec);
        for (k, v) in labels {
            o = o.with_label(*k, *v);
        }
        o
    }

    fn state(selector: Option<&str>) -> MachinesState {
        MachinesState {
            selector: selector.map(str::to_string).into(),
            connected: Value::Null,
            available: Value::Null,
            cluster: Value::Null,
            ids: Value::Unknown,
            machines: Value::Unknown,
        }
    }

    #[test]
    fn conversion_sums_hardware_and_strips_the_v() {
        let m = machine_from_status(&machine("m1", &[(omni_labels::AVAILABLE, "")], "", true));
        assert_eq!(m.cores, Value::Known(8));
        assert_eq!(m.memory, Value::Known(16384));
        assert_eq!(m.cpu.as_str(), Some("EPYC"));
        assert_eq!(m.talos_version.as_str(), Some("1.13.8"));
        assert_eq!(m.cluster, Value::Null);
        assert_eq!(m.role, Value::Null);
        assert_eq!(m.available, Value::Known(true));
        assert_eq!(m.region.as_str(), Some("eu-west-1"));
        let disks = m.disks.as_option().unwrap();
        assert_eq!(disks[0].dev_path.as_str(), Some("/dev/sda"));
        assert_eq!(disks[0].system_disk, Value::Known(true));

        let m = machine_from_status(&machine("m2", &[], "lab", false));
        assert_eq!(m.cluster.as_str(), Some("lab"));
        assert_eq!(m.role.as_str(), Some("worker"));
        assert_eq!(m.available, Value::Known(false));
    }

    #[test]
    fn filters_combine_with_and() {
        let free = machine(
            "a",
            &[
                (omni_labels::AVAILABLE, ""),
                (omni_labels::CORES, "8"),
                ("team", "db"),
            ],
            "",
            true,
        );
        let used = machine("b", &[(omni_labels::CORES, "2")], "lab", true);
        let gone = machine("c", &[(omni_labels::AVAILABLE, "")], "", false);

        let f = MachineFilter::from_config(&state(Some("omni.sidero.dev/cores >= 4"))).unwrap();
        assert!(f.matches(&free) && !f.matches(&used) && !f.matches(&gone));

        let mut c = state(Some("team = db"));
        c.available = Value::Known(true);
        let f = MachineFilter::from_config(&c).unwrap();
        assert!(f.matches(&free) && !f.matches(&used));

        let mut c = state(None);
        c.connected = Value::Known(false);
        let f = MachineFilter::from_config(&c).unwrap();
        assert!(!f.matches(&free) && f.matches(&gone));

        let mut c = state(None);
        c.cluster = Value::Known("lab".into());
        let f = MachineFilter::from_config(&c).unwrap();
        assert!(f.matches(&used) && !f.matches(&free));

        let f = MachineFilter::from_config(&state(None)).unwrap();
        assert!(f.matches(&free) && f.matches(&used) && f.matches(&gone));
    }

    #[test]
    fn bad_selector_is_an_error_at_the_attribute() {
        let err = MachineFilter::from_config(&state(Some("a in (b"))).unwrap_err();
        assert_eq!(err.0[0].path, Some(AttributePath::new("selector")));
        assert_eq!(err.0[0].summary, "Invalid machine selector");
    }
}
