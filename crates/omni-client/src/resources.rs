//! Static facts about Omni resource types (omni-api.md §3): type strings, namespaces, label and
//! annotation keys, and one [`ResourceKind`] per type tying its type string and namespace to its
//! spec message.

use omni_api::specs;

/// Namespaces (omni-api.md §3.1).
pub mod namespaces {
    /// Persistent user and controller resources.
    pub const DEFAULT: &str = "default";
    /// In-memory resources.
    pub const EPHEMERAL: &str = "ephemeral";
    /// sqlite-backed metrics/status resources.
    pub const METRICS: &str = "metrics";
    /// Computed per caller.
    pub const VIRTUAL: &str = "virtual";
    /// Backed by outside storage (etcd backups).
    pub const EXTERNAL: &str = "external";
    /// Infra provider resources.
    pub const INFRA_PROVIDER: &str = "infra-provider";
    /// Ephemeral infra provider resources.
    pub const INFRA_PROVIDER_EPHEMERAL: &str = "infra-provider-ephemeral";
    /// COSI meta resources (Namespaces, ResourceDefinitions).
    pub const META: &str = "meta";
}

/// Resource type strings (omni-api.md §3.3).
pub mod types {
    #![allow(missing_docs)]
    pub const CLUSTER: &str = "Clusters.omni.sidero.dev";
    pub const MACHINE_SET: &str = "MachineSets.omni.sidero.dev";
    pub const MACHINE_SET_NODE: &str = "MachineSetNodes.omni.sidero.dev";
    pub const CONFIG_PATCH: &str = "ConfigPatches.omni.sidero.dev";
    pub const MACHINE_CLASS: &str = "MachineClasses.omni.sidero.dev";
    pub const EXTENSIONS_CONFIGURATION: &str = "ExtensionsConfigurations.omni.sidero.dev";
    pub const KERNEL_ARGS: &str = "KernelArgs.omni.sidero.dev";
    pub const MACHINE_LABELS: &str = "MachineLabels.omni.sidero.dev";
    pub const MACHINE_INSTALL_DISK_CONFIG: &str = "MachineInstallDiskConfigs.omni.sidero.dev";
    pub const KUBERNETES_MANIFEST_GROUP: &str = "KubernetesManifestGroups.omni.sidero.dev";
    pub const KUBERNETES_HEALTH_CHECK: &str = "KubernetesHealthChecks.omni.sidero.dev";
    pub const ETCD_MANUAL_BACKUP: &str = "EtcdManualBackups.omni.sidero.dev";
    pub const ETCD_BACKUP_S3_CONF: &str = "EtcdBackupS3Configs.omni.sidero.dev";
    pub const NODE_FORCE_DESTROY_REQUEST: &str = "NodeForceDestroyRequests.omni.sidero.dev";
    pub const ROTATE_TALOS_CA: &str = "RotateTalosCAs.omni.sidero.dev";
    pub const ROTATE_KUBERNETES_CA: &str = "RotateKubernetesCAs.omni.sidero.dev";
    pub const MACHINE: &str = "Machines.omni.sidero.dev";
    pub const MACHINE_STATUS: &str = "MachineStatuses.omni.sidero.dev";
    pub const CLUSTER_STATUS: &str = "ClusterStatuses.omni.sidero.dev";
    pub const CLUSTER_MACHINE: &str = "ClusterMachines.omni.sidero.dev";
    pub const CLUSTER_MACHINE_STATUS: &str = "ClusterMachineStatuses.omni.sidero.dev";
    pub const MACHINE_SET_STATUS: &str = "MachineSetStatuses.omni.sidero.dev";
    pub const CONTROL_PLANE_STATUS: &str = "ControlPlaneStatuses.omni.sidero.dev";
    pub const KUBERNETES_UPGRADE_STATUS: &str = "KubernetesUpgradeStatuses.omni.sidero.dev";
    pub const TALOS_UPGRADE_STATUS: &str = "TalosUpgradeStatuses.omni.sidero.dev";
    pub const CLUSTER_UUID: &str = "ClusterUUIDs.omni.sidero.dev";
    pub const CLUSTER_BOOTSTRAP_STATUS: &str = "ClusterBootstrapStatuses.omni.sidero.dev";
    pub const CLUSTER_CONFIG_VERSION: &str = "ClusterConfigVersions.omni.sidero.dev";
    pub const CLUSTER_ENDPOINT: &str = "ClusterEndpoints.omni.sidero.dev";
    pub const LOAD_BALANCER_STATUS: &str = "LoadBalancerStatuses.omni.sidero.dev";
    pub const CLUSTER_DESTROY_STATUS: &str = "ClusterDestroyStatuses.omni.sidero.dev";
    pub const MACHINE_SET_DESTROY_STATUS: &str = "MachineSetDestroyStatuses.omni.sidero.dev";
    pub const SCHEMATIC_CONFIGURATION: &str = "SchematicConfigurations.omni.sidero.dev";
    pub const MACHINE_EXTENSIONS: &str = "MachineExtensions.omni.sidero.dev";
    pub const MACHINE_EXTENSIONS_STATUS: &str = "MachineExtensionsStatuses.omni.sidero.dev";
    pub const KERNEL_ARGS_STATUS: &str = "KernelArgsStatuses.omni.sidero.dev";
    pub const MACHINE_UPGRADE_STATUS: &str = "MachineUpgradeStatuses.omni.sidero.dev";
    pub const TALOS_VERSION: &str = "TalosVersions.omni.sidero.dev";
    pub const KUBERNETES_VERSION: &str = "KubernetesVersions.omni.sidero.dev";
    pub const TALOS_EXTENSIONS: &str = "TalosExtensions.omni.sidero.dev";
    pub const ETCD_BACKUP: &str = "EtcdBackups.omni.sidero.dev";
    pub const ETCD_BACKUP_STATUS: &str = "EtcdBackupStatuses.omni.sidero.dev";
    pub const ETCD_BACKUP_OVERALL_STATUS: &str = "EtcdBackupOverallStatuses.omni.sidero.dev";
    pub const ETCD_BACKUP_STORE_STATUS: &str = "EtcdBackupStoreStatuses.omni.sidero.dev";
    pub const KUBECONFIG: &str = "Kubeconfigs.omni.sidero.dev";
    pub const TALOS_CONFIG: &str = "TalosConfigs.omni.sidero.dev";
    pub const FEATURES_CONFIG: &str = "FeaturesConfigs.omni.sidero.dev";
    pub const SYS_VERSION: &str = "SysVersions.system.sidero.dev";
    pub const IDENTITY: &str = "Identities.omni.sidero.dev";
    pub const USER: &str = "Users.omni.sidero.dev";
    pub const PUBLIC_KEY: &str = "PublicKeys.omni.sidero.dev";
    pub const NAMESPACE: &str = "Namespaces.meta.cosi.dev";
    pub const RESOURCE_DEFINITION: &str = "ResourceDefinitions.meta.cosi.dev";
}

/// Well-known resource IDs.
pub mod ids {
    /// `FeaturesConfigs` singleton.
    pub const FEATURES_CONFIG: &str = "features-config";
    /// `SysVersions` singleton.
    pub const SYS_VERSION: &str = "current";
    /// `EtcdBackupS3Configs` singleton.
    pub const ETCD_BACKUP_S3_CONF: &str = "etcd-backup-s3-conf";
    /// `EtcdBackupOverallStatuses` singleton.
    pub const ETCD_BACKUP_OVERALL_STATUS: &str = "etcdbackup-overall-status";
}

/// Label keys (omni-api.md §3.2). All carry the reserved `omni.sidero.dev/` prefix.
pub mod labels {
    #![allow(missing_docs)]
    pub const PREFIX: &str = "omni.sidero.dev/";
    pub const CLUSTER: &str = "omni.sidero.dev/cluster";
    pub const MACHINE_SET: &str = "omni.sidero.dev/machine-set";
    pub const CLUSTER_MACHINE: &str = "omni.sidero.dev/cluster-machine";
    pub const MACHINE: &str = "omni.sidero.dev/machine";
    pub const ROLE_CONTROLPLANE: &str = "omni.sidero.dev/role-controlplane";
    pub const ROLE_WORKER: &str = "omni.sidero.dev/role-worker";
    pub const CLUSTER_UUID: &str = "omni.sidero.dev/cluster-uuid";
    pub const SYSTEM_PATCH: &str = "omni.sidero.dev/system-patch";
    pub const DISABLED: &str = "omni.sidero.dev/disabled";
    pub const SYSTEM_MANIFEST: &str = "omni.sidero.dev/system-manifest";
    pub const MANAGED_BY_MACHINE_SET_NODE_CONTROLLER: &str =
        "omni.sidero.dev/managed-by-machine-set-node-controller";
    pub const ROOT_CONFIGURATION: &str = "omni.sidero.dev/root-configuration";
    pub const NO_MANUAL_ALLOCATION: &str = "omni.sidero.dev/no-manual-allocation";
    // MachineStatus labels.
    pub const AVAILABLE: &str = "omni.sidero.dev/available";
    pub const CONNECTED: &str = "omni.sidero.dev/connected";
    pub const DISCONNECTED: &str = "omni.sidero.dev/disconnected";
    pub const READY_TO_USE: &str = "omni.sidero.dev/ready-to-use";
    pub const INVALID_STATE: &str = "omni.sidero.dev/invalid-state";
    pub const REPORTING_EVENTS: &str = "omni.sidero.dev/reporting-events";
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
    pub const ENTERPRISE: &str = "omni.sidero.dev/enterprise";
    pub const FIPS: &str = "omni.sidero.dev/fips";
    pub const INSTALLED: &str = "omni.sidero.dev/installed";
    // ClusterMachineStatus labels.
    pub const NODE_NAME: &str = "omni.sidero.dev/node-name";
    pub const HOSTNAME: &str = "omni.sidero.dev/hostname";
    pub const LOCKED_UPDATE: &str = "omni.sidero.dev/locked-update";
    // ClusterStatus labels.
    pub const TAINTED_BY_IMPORTING: &str = "omni.sidero.dev/tainted-by-importing";
    pub const TAINTED_BY_EXPORTING: &str = "omni.sidero.dev/tainted-by-exporting";
    pub const TAINTED_BY_BREAK_GLASS: &str = "omni.sidero.dev/tainted-by-break-glass";
}

/// Annotation keys (omni-api.md §3.2).
pub mod annotations {
    /// Value = the tool managing the resource; the UI warns before manual edits.
    pub const MANAGED_BY_GITOPS_TOOLS: &str = "omni.sidero.dev/managed-by-gitops-tools";
    /// Set (empty) by cluster templates.
    pub const MANAGED_BY_CLUSTER_TEMPLATES: &str = "omni.sidero.dev/managed-by-cluster-templates";
    /// Locks a cluster against updates and deletion.
    pub const CLUSTER_LOCKED: &str = "omni.sidero.dev/cluster-locked";
    /// On a MachineSetNode: the machine is locked (no updates).
    pub const LOCKED: &str = "omni.sidero.dev/locked";
    /// Human name of a ConfigPatch / KubernetesManifestGroup.
    pub const NAME: &str = "name";
    /// Human description of a ConfigPatch.
    pub const DESCRIPTION: &str = "description";
}

/// Static facts about one Omni resource type: its type string, its namespace and its spec.
pub trait ResourceKind: Clone + Copy + std::fmt::Debug + PartialEq + Send + Sync + 'static {
    /// Type string, e.g. `Clusters.omni.sidero.dev`.
    const TYPE: &'static str;
    /// Namespace the type lives in.
    const NAMESPACE: &'static str;
    /// The protobuf spec message carried in `Spec.proto_spec`.
    type Spec: prost::Message
        + Default
        + Clone
        + PartialEq
        + std::fmt::Debug
        + Send
        + Sync
        + 'static;

    /// True when the spec holds dictionary-compressed text this client cannot decompress
    /// itself (omni-api.md §1.11).
    fn is_compressed(_spec: &Self::Spec) -> bool {
        false
    }

    /// Puts uncompressed text back into the plain field and clears the compressed one.
    fn set_uncompressed(_spec: &mut Self::Spec, _text: String) {}
}

macro_rules! kinds {
    ($($(#[$doc:meta])* $name:ident => ($ty:expr, $ns:expr, $spec:ty);)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name;

        impl ResourceKind for $name {
            const TYPE: &'static str = $ty;
            const NAMESPACE: &'static str = $ns;
            type Spec = $spec;
        }
    )*};
}

use namespaces::{DEFAULT, EPHEMERAL, EXTERNAL, METRICS};

kinds! {
    /// A Talos cluster.
    Cluster => (types::CLUSTER, DEFAULT, specs::ClusterSpec);
    /// A group of cluster machines (control plane or workers).
    MachineSet => (types::MACHINE_SET, DEFAULT, specs::MachineSetSpec);
    /// Binds a machine (ID = machine UUID) to a machine set.
    MachineSetNode => (types::MACHINE_SET_NODE, DEFAULT, specs::MachineSetNodeSpec);
    /// Selector over machines, or an auto-provision rule.
    MachineClass => (types::MACHINE_CLASS, DEFAULT, specs::MachineClassSpec);
    /// System extensions for a cluster, machine set or cluster machine.
    ExtensionsConfiguration => (types::EXTENSIONS_CONFIGURATION, DEFAULT, specs::ExtensionsConfigurationSpec);
    /// Extra kernel arguments of a machine.
    KernelArgs => (types::KERNEL_ARGS, DEFAULT, specs::KernelArgsSpec);
    /// Status of a machine's kernel arguments.
    KernelArgsStatus => (types::KERNEL_ARGS_STATUS, DEFAULT, specs::KernelArgsStatusSpec);
    /// User labels of a machine (the data are the metadata labels).
    MachineLabels => (types::MACHINE_LABELS, DEFAULT, specs::MachineLabelsSpec);
    /// Install disk of a machine.
    MachineInstallDiskConfig => (types::MACHINE_INSTALL_DISK_CONFIG, DEFAULT, specs::MachineInstallDiskConfigSpec);
    /// Kubernetes health check job.
    KubernetesHealthCheck => (types::KUBERNETES_HEALTH_CHECK, DEFAULT, specs::KubernetesHealthCheckSpec);
    /// Manual etcd backup request.
    EtcdManualBackup => (types::ETCD_MANUAL_BACKUP, EPHEMERAL, specs::EtcdManualBackupSpec);
    /// S3 settings for etcd backups (Admin).
    EtcdBackupS3Conf => (types::ETCD_BACKUP_S3_CONF, DEFAULT, specs::EtcdBackupS3ConfSpec);
    /// Forces removal of a node stuck in teardown.
    NodeForceDestroyRequest => (types::NODE_FORCE_DESTROY_REQUEST, DEFAULT, specs::NodeForceDestroyRequestSpec);
    /// A connected machine.
    Machine => (types::MACHINE, DEFAULT, specs::MachineSpec);
    /// Machine inventory and state.
    MachineStatus => (types::MACHINE_STATUS, DEFAULT, specs::MachineStatusSpec);
    /// Cluster readiness.
    ClusterStatus => (types::CLUSTER_STATUS, DEFAULT, specs::ClusterStatusSpec);
    /// Machine set readiness.
    MachineSetStatus => (types::MACHINE_SET_STATUS, DEFAULT, specs::MachineSetStatusSpec);
    /// A machine allocated to a cluster.
    ClusterMachine => (types::CLUSTER_MACHINE, DEFAULT, specs::ClusterMachineSpec);
    /// State of a cluster machine.
    ClusterMachineStatus => (types::CLUSTER_MACHINE_STATUS, DEFAULT, specs::ClusterMachineStatusSpec);
    /// Control-plane conditions.
    ControlPlaneStatus => (types::CONTROL_PLANE_STATUS, DEFAULT, specs::ControlPlaneStatusSpec);
    /// Omni's load balancer in front of kube-apiserver.
    LoadBalancerStatus => (types::LOAD_BALANCER_STATUS, DEFAULT, specs::LoadBalancerStatusSpec);
    /// Kubernetes upgrade progress.
    KubernetesUpgradeStatus => (types::KUBERNETES_UPGRADE_STATUS, DEFAULT, specs::KubernetesUpgradeStatusSpec);
    /// Talos upgrade progress.
    TalosUpgradeStatus => (types::TALOS_UPGRADE_STATUS, DEFAULT, specs::TalosUpgradeStatusSpec);
    /// Per-machine upgrade progress.
    MachineUpgradeStatus => (types::MACHINE_UPGRADE_STATUS, DEFAULT, specs::MachineUpgradeStatusSpec);
    /// The UUID of a cluster.
    ClusterUuid => (types::CLUSTER_UUID, DEFAULT, specs::ClusterUuid);
    /// Whether a cluster was bootstrapped.
    ClusterBootstrapStatus => (types::CLUSTER_BOOTSTRAP_STATUS, DEFAULT, specs::ClusterBootstrapStatusSpec);
    /// Talos version used for a cluster's initial config.
    ClusterConfigVersion => (types::CLUSTER_CONFIG_VERSION, DEFAULT, specs::ClusterConfigVersionSpec);
    /// Management endpoints of a cluster's control planes.
    ClusterEndpoint => (types::CLUSTER_ENDPOINT, DEFAULT, specs::ClusterEndpointSpec);
    /// Progress text while a cluster is destroyed.
    ClusterDestroyStatus => (types::CLUSTER_DESTROY_STATUS, DEFAULT, specs::DestroyStatusSpec);
    /// Progress text while a machine set is destroyed.
    MachineSetDestroyStatus => (types::MACHINE_SET_DESTROY_STATUS, EPHEMERAL, specs::DestroyStatusSpec);
    /// Schematic computed for a machine.
    SchematicConfiguration => (types::SCHEMATIC_CONFIGURATION, DEFAULT, specs::SchematicConfigurationSpec);
    /// Extensions derived for a machine.
    MachineExtensions => (types::MACHINE_EXTENSIONS, DEFAULT, specs::MachineExtensionsSpec);
    /// Extension state on a machine.
    MachineExtensionsStatus => (types::MACHINE_EXTENSIONS_STATUS, DEFAULT, specs::MachineExtensionsStatusSpec);
    /// An available Talos version (ID without `v`).
    TalosVersion => (types::TALOS_VERSION, DEFAULT, specs::TalosVersionSpec);
    /// An available Kubernetes version (ID without `v`).
    KubernetesVersion => (types::KUBERNETES_VERSION, DEFAULT, specs::KubernetesVersionSpec);
    /// Extension catalogue of a Talos version.
    TalosExtensions => (types::TALOS_EXTENSIONS, DEFAULT, specs::TalosExtensionsSpec);
    /// Instance features (`features-config`).
    FeaturesConfig => (types::FEATURES_CONFIG, DEFAULT, specs::FeaturesConfigSpec);
    /// Omni's version (`current`).
    SysVersion => (types::SYS_VERSION, EPHEMERAL, specs::SysVersionSpec);
    /// One etcd backup (List/Watch need a cluster label query).
    EtcdBackup => (types::ETCD_BACKUP, EXTERNAL, specs::EtcdBackupSpec);
    /// Last etcd backup of a cluster.
    EtcdBackupStatus => (types::ETCD_BACKUP_STATUS, METRICS, specs::EtcdBackupStatusSpec);
    /// Overall etcd backup state.
    EtcdBackupOverallStatus => (types::ETCD_BACKUP_OVERALL_STATUS, METRICS, specs::EtcdBackupOverallStatusSpec);
}

/// A machine config patch. `data` may come back compressed (omni-api.md §1.11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigPatch;

impl ResourceKind for ConfigPatch {
    const TYPE: &'static str = types::CONFIG_PATCH;
    const NAMESPACE: &'static str = DEFAULT;
    type Spec = specs::ConfigPatchSpec;

    fn is_compressed(spec: &Self::Spec) -> bool {
        !spec.compressed_data.is_empty()
    }

    fn set_uncompressed(spec: &mut Self::Spec, text: String) {
        spec.data = text;
        spec.compressed_data.clear();
    }
}

/// A group of Kubernetes manifests. `data` may come back compressed (omni-api.md §1.11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KubernetesManifestGroup;

impl ResourceKind for KubernetesManifestGroup {
    const TYPE: &'static str = types::KUBERNETES_MANIFEST_GROUP;
    const NAMESPACE: &'static str = DEFAULT;
    type Spec = specs::KubernetesManifestGroupSpec;

    fn is_compressed(spec: &Self::Spec) -> bool {
        !spec.compressed_data.is_empty()
    }

    fn set_uncompressed(spec: &mut Self::Spec, text: String) {
        spec.data = text;
        spec.compressed_data.clear();
    }
}
