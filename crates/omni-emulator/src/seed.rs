//! The seeded catalogue (omni-api.md §9): Talos/Kubernetes versions, extensions, features,
//! system version and a pool of simulated machines with stable IDs.

use std::collections::BTreeMap;
use std::sync::Arc;

use omni_api::specs;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::model::Res;
use crate::store::{Store, StoreError};
use crate::types::names as t;

/// Label keys of MachineStatus (omni-api.md §3.2).
pub mod labels {
    #![allow(missing_docs)]
    pub const AVAILABLE: &str = "omni.sidero.dev/available";
    pub const CONNECTED: &str = "omni.sidero.dev/connected";
    pub const READY_TO_USE: &str = "omni.sidero.dev/ready-to-use";
    pub const ARCH: &str = "omni.sidero.dev/arch";
    pub const CPU: &str = "omni.sidero.dev/cpu";
    pub const CORES: &str = "omni.sidero.dev/cores";
    pub const MEM: &str = "omni.sidero.dev/mem";
    pub const STORAGE: &str = "omni.sidero.dev/storage";
    pub const NET: &str = "omni.sidero.dev/net";
    pub const PLATFORM: &str = "omni.sidero.dev/platform";
    pub const REGION: &str = "omni.sidero.dev/region";
    pub const ZONE: &str = "omni.sidero.dev/zone";
    pub const INSTANCE: &str = "omni.sidero.dev/instance";
    pub const TALOS_VERSION: &str = "omni.sidero.dev/talos-version";
    pub const INSTALLED: &str = "omni.sidero.dev/installed";
    pub const CLUSTER: &str = "omni.sidero.dev/cluster";
    pub const MACHINE_SET: &str = "omni.sidero.dev/machine-set";
    pub const CLUSTER_MACHINE: &str = "omni.sidero.dev/cluster-machine";
    pub const MACHINE: &str = "omni.sidero.dev/machine";
    pub const ROLE_CONTROLPLANE: &str = "omni.sidero.dev/role-controlplane";
    pub const ROLE_WORKER: &str = "omni.sidero.dev/role-worker";
    pub const CLUSTER_UUID: &str = "omni.sidero.dev/cluster-uuid";
    pub const MANAGED_BY_MSN_CONTROLLER: &str =
        "omni.sidero.dev/managed-by-machine-set-node-controller";
    pub const NO_MANUAL_ALLOCATION: &str = "omni.sidero.dev/no-manual-allocation";
    pub const ROOT_CONFIGURATION: &str = "omni.sidero.dev/root-configuration";
    pub const DISABLED: &str = "omni.sidero.dev/disabled";
    pub const SYSTEM_MANIFEST: &str = "omni.sidero.dev/system-manifest";
    pub const NODE_NAME: &str = "omni.sidero.dev/node-name";
    pub const HOSTNAME: &str = "omni.sidero.dev/hostname";
    pub const CLUSTER_LOCKED: &str = "omni.sidero.dev/cluster-locked";
    pub const LOCKED: &str = "omni.sidero.dev/locked";
}

/// Owner names used for seeded, controller-owned resources.
pub const CATALOGUE_OWNER: &str = "VersionsController";
/// Owner of Machines/MachineStatuses.
pub const MACHINE_OWNER: &str = "MachineStatusController";

/// Creates the resource if missing, or updates spec and labels when they changed.
pub async fn upsert(store: &Store, mut r: Res, owner: &str) -> Result<Arc<Res>, StoreError> {
    loop {
        match store.get(&r.namespace, &r.typ, &r.id) {
            None => match store.create(r.clone(), owner).await {
                Err(StoreError::AlreadyExists(_)) => continue,
                other => return other,
            },
            Some(cur) => {
                if cur.spec == r.spec && cur.labels == r.labels && cur.annotations == r.annotations
                {
                    return Ok(cur);
                }
                r.version = cur.version;
                r.finalizers = cur.finalizers.clone();
                r.phase = cur.phase;
                match store.update(r.clone(), &cur.owner.clone(), None).await {
                    Err(StoreError::VersionConflict { .. }) => continue,
                    other => return other,
                }
            }
        }
    }
}

/// A stable UUID (v4 layout) derived from the seed and an index.
pub fn machine_uuid(seed: u64, index: usize) -> String {
    let h = Sha256::digest(format!("omni-emulator-machine/{seed}/{index}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// The version catalogue the emulator serves (Talos releases, Kubernetes releases, extensions).
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    /// Talos releases with their compatible Kubernetes versions.
    pub talos: Vec<talos_machinery::versions::TalosRelease>,
    /// Kubernetes releases.
    pub kubernetes: Vec<String>,
    /// Official extensions per Talos version.
    pub extensions: BTreeMap<String, Vec<talos_machinery::versions::Extension>>,
}

impl Catalogue {
    /// The catalogue of talos-machinery (the same facts the provider checks at plan time).
    pub fn official() -> Catalogue {
        let talos = talos_machinery::versions::talos_releases();
        let extensions = talos
            .iter()
            .map(|r| {
                (
                    r.version.clone(),
                    talos_machinery::versions::official_extensions(&r.version),
                )
            })
            .collect();
        Catalogue {
            talos,
            kubernetes: talos_machinery::versions::kubernetes_releases(),
            extensions,
        }
    }

    /// The Talos version seeded machines run: the newest stable release.
    pub fn machine_talos_version(&self) -> Option<String> {
        machine_talos_version(&self.talos)
    }
}

/// The newest stable release of a list.
pub fn machine_talos_version(talos: &[talos_machinery::versions::TalosRelease]) -> Option<String> {
    talos
        .iter()
        .filter(|r| {
            !r.version.contains('-')
                && !talos_machinery::versions::is_talos_unsupported(&r.version)
                && !talos_machinery::versions::is_talos_deprecated(&r.version)
        })
        .max_by(|a, b| {
            let pa = talos_machinery::versions::parse_version(&a.version).ok();
            let pb = talos_machinery::versions::parse_version(&b.version).ok();
            pa.cmp(&pb)
        })
        .map(|r| r.version.clone())
}

/// Seeds the version catalogue, features, system version and machines.
pub async fn seed(
    store: &Store,
    cat: &Catalogue,
    endpoint: &str,
    amd64: usize,
    arm64: usize,
    seed: u64,
) -> Result<(), StoreError> {
    for rel in &cat.talos {
        let spec = specs::TalosVersionSpec {
            version: rel.version.clone(),
            compatible_kubernetes_versions: rel.compatible_kubernetes.clone(),
            image_factory_url: endpoint.to_string(),
            deprecated: talos_machinery::versions::is_talos_deprecated(&rel.version),
            unsupported: talos_machinery::versions::is_talos_unsupported(&rel.version),
            ..Default::default()
        };
        upsert(
            store,
            Res::new(
                "default",
                t::TALOS_VERSION,
                &rel.version,
                spec.encode_to_vec(),
            ),
            CATALOGUE_OWNER,
        )
        .await?;
        let items = cat
            .extensions
            .get(&rel.version)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|e| specs::talos_extensions_spec::Info {
                version: e
                    .image
                    .rsplit_once(':')
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_default(),
                name: e.name,
                author: e.author,
                description: e.description,
                r#ref: e.image,
                digest: e.digest,
            })
            .collect();
        let spec = specs::TalosExtensionsSpec { items };
        upsert(
            store,
            Res::new(
                "default",
                t::TALOS_EXTENSIONS,
                &rel.version,
                spec.encode_to_vec(),
            ),
            CATALOGUE_OWNER,
        )
        .await?;
    }
    for k in &cat.kubernetes {
        let spec = specs::KubernetesVersionSpec { version: k.clone() };
        upsert(
            store,
            Res::new("default", t::KUBERNETES_VERSION, k, spec.encode_to_vec()),
            CATALOGUE_OWNER,
        )
        .await?;
    }
    let hour = |h: i64| prost_types::Duration {
        seconds: h * 3600,
        nanos: 0,
    };
    let features = specs::FeaturesConfigSpec {
        enable_workload_proxying: true,
        etcd_backup_settings: Some(specs::EtcdBackupSettings {
            tick_interval: Some(prost_types::Duration {
                seconds: 60,
                nanos: 0,
            }),
            min_interval: Some(hour(1)),
            max_interval: Some(hour(24)),
        }),
        embedded_discovery_service: true,
        image_factory_base_url: endpoint.to_string(),
        image_factory_pxe_base_url: endpoint.to_string(),
        ..Default::default()
    };
    upsert(
        store,
        Res::new(
            "default",
            t::FEATURES_CONFIG,
            "features-config",
            features.encode_to_vec(),
        ),
        "FeaturesConfigController",
    )
    .await?;
    let sys = specs::SysVersionSpec {
        backend_version: format!("v{}-emulator", env!("CARGO_PKG_VERSION")),
        instance_name: "omni-emulator".into(),
        backend_api_version: 1,
    };
    upsert(
        store,
        Res::new("ephemeral", t::SYS_VERSION, "current", sys.encode_to_vec()),
        "SysVersionController",
    )
    .await?;

    let talos = cat.machine_talos_version().unwrap_or_default();
    for i in 0..amd64 + arm64 {
        let id = machine_uuid(seed, i);
        if store.get("default", t::MACHINE_STATUS, &id).is_some() {
            continue; // keep the state a previous run left (allocation labels etc.)
        }
        let arch = if i < amd64 { "amd64" } else { "arm64" };
        let (spec, labels) = machine_status(&id, i, arch, &talos, seed);
        let m = specs::MachineSpec {
            management_address: format!("fdae:41e4:649b:9303::{:x}", i + 1),
            connected: true,
            use_grpc_tunnel: false,
        };
        upsert(
            store,
            Res::new("default", t::MACHINE, &id, m.encode_to_vec()),
            MACHINE_OWNER,
        )
        .await?;
        let mut r = Res::new("default", t::MACHINE_STATUS, &id, spec.encode_to_vec());
        r.labels = labels;
        upsert(store, r, MACHINE_OWNER).await?;
    }
    Ok(())
}

/// Hardware, network and labels of simulated machine number `i`.
pub fn machine_status(
    id: &str,
    i: usize,
    arch: &str,
    talos: &str,
    seed: u64,
) -> (specs::MachineStatusSpec, BTreeMap<String, String>) {
    use specs::machine_status_spec as ms;
    let h = Sha256::digest(format!("{seed}/{i}/hw").as_bytes());
    let cores = [2u32, 4, 8, 16][h[0] as usize % 4];
    let mem_gib = [4u32, 8, 16, 32][h[1] as usize % 4];
    let disk_gb = [100u64, 250, 500, 1000][h[2] as usize % 4];
    let disks = 1 + h[3] as usize % 2;
    let (cpu, manufacturer) = if arch == "arm64" {
        ("Ampere Altra", "Ampere")
    } else if h[4] % 2 == 0 {
        ("AMD EPYC 7543", "AMD")
    } else {
        ("Intel(R) Xeon(R) Gold 6338", "Intel")
    };
    let regions = [
        ("us-east-1", ["us-east-1a", "us-east-1b"]),
        ("eu-west-1", ["eu-west-1a", "eu-west-1b"]),
    ];
    let (region, zones) = regions[h[5] as usize % 2];
    let zone = zones[h[6] as usize % 2];
    let hostname = format!("talos-{}", &id[..8]);
    let blockdevices = (0..disks)
        .map(|d| ms::hardware_status::BlockDevice {
            size: disk_gb * 1_000_000_000,
            model: "QEMU HARDDISK".into(),
            linux_name: format!("/dev/{}", ["sda", "sdb"][d]),
            name: ["sda", "sdb"][d].into(),
            serial: format!("{}-{d}", &id[..8]),
            r#type: "HDD".into(),
            bus_path: format!("/pci0000:00/0000:00:0{}.0", d + 5),
            transport: "virtio".into(),
            dev_path: format!("/dev/{}", ["sda", "sdb"][d]),
            sub_system: "/sys/class/block".into(),
            pretty_size: format!("{disk_gb} GB"),
            ..Default::default()
        })
        .collect();
    let mac = format!("52:54:00:{:02x}:{:02x}:{:02x}", h[7], h[8], h[9]);
    let addr = format!("10.5.{}.{}/24", i / 250, i % 250 + 2);
    let spec = specs::MachineStatusSpec {
        talos_version: format!("v{talos}"),
        hardware: Some(ms::HardwareStatus {
            processors: vec![ms::hardware_status::Processor {
                core_count: cores,
                thread_count: cores * 2,
                frequency: 2800,
                description: cpu.into(),
                manufacturer: manufacturer.into(),
            }],
            memory_modules: vec![ms::hardware_status::MemoryModule {
                size_mb: mem_gib * 1024,
                description: "DRAM".into(),
            }],
            blockdevices,
            arch: arch.into(),
        }),
        network: Some(ms::NetworkStatus {
            hostname: hostname.clone(),
            domainname: String::new(),
            addresses: vec![addr],
            default_gateways: vec![format!("10.5.{}.1", i / 250)],
            network_links: vec![ms::network_status::NetworkLinkStatus {
                linux_name: "eth0".into(),
                hardware_address: mac,
                speed_mbps: 10_000,
                link_up: true,
                description: "Virtio network device".into(),
            }],
        }),
        management_address: format!("fdae:41e4:649b:9303::{:x}", i + 1),
        connected: true,
        maintenance: true,
        platform_metadata: Some(ms::PlatformMetadata {
            platform: "metal".into(),
            hostname: hostname.clone(),
            region: region.into(),
            zone: zone.into(),
            instance_type: format!("c{cores}.m{mem_gib}"),
            instance_id: id.to_string(),
            ..Default::default()
        }),
        schematic: Some(ms::Schematic {
            full_id: crate::controllers::DEFAULT_SCHEMATIC.into(),
            ..Default::default()
        }),
        initial_talos_version: format!("v{talos}"),
        power_state: ms::PowerState::On as i32,
        security_state: Some(specs::SecurityState::default()),
        kernel_cmdline: "talos.platform=metal console=ttyS0".into(),
        ..Default::default()
    };
    let mut l = BTreeMap::new();
    for (k, v) in [
        (labels::AVAILABLE, ""),
        (labels::CONNECTED, ""),
        (labels::READY_TO_USE, ""),
        (labels::ARCH, arch),
        (labels::CPU, manufacturer.to_lowercase().as_str()),
        (labels::PLATFORM, "metal"),
        (labels::REGION, region),
        (labels::ZONE, zone),
    ] {
        l.insert(k.to_string(), v.to_string());
    }
    l.insert(labels::CORES.into(), cores.to_string());
    l.insert(labels::MEM.into(), format!("{mem_gib}GiB"));
    l.insert(
        labels::STORAGE.into(),
        format!("{}GB", disk_gb * disks as u64),
    );
    l.insert(labels::NET.into(), "10Gbps".into());
    l.insert(labels::INSTANCE.into(), format!("c{cores}.m{mem_gib}"));
    l.insert(labels::TALOS_VERSION.into(), format!("v{talos}"));
    (spec, l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_stable_and_distinct() {
        assert_eq!(machine_uuid(1, 0), machine_uuid(1, 0));
        assert_ne!(machine_uuid(1, 0), machine_uuid(1, 1));
        assert_ne!(machine_uuid(1, 0), machine_uuid(2, 0));
        assert_eq!(machine_uuid(7, 3).len(), 36);
        assert_eq!(&machine_uuid(7, 3)[14..15], "4");
    }
}
