//! The resource type catalogue (omni-api.md §3.3): access class and spec message per type.

/// How clients may access a type (omni-api.md §1.7, §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// User-managed: Reader reads, Operator writes.
    UserWritable,
    /// User-managed, but writes need Admin.
    AdminWritable,
    /// Controller-owned: Reader reads, nobody writes (`only read access is permitted`).
    ReadOnly,
    /// Readable by any signed caller, not writable.
    AnySignedRead,
    /// Readable by Admin only, not writable.
    AdminRead,
    /// Not accessible at all (`no access is permitted`).
    NoAccess,
}

/// Static facts about one type.
#[derive(Clone, Copy, Debug)]
pub struct TypeInfo {
    /// Type string, e.g. `Clusters.omni.sidero.dev`.
    pub name: &'static str,
    /// Default namespace.
    pub namespace: &'static str,
    /// Fully-qualified spec message (for protojson / YAML rendering).
    pub spec: &'static str,
    /// Access class.
    pub access: Access,
}

macro_rules! t {
    ($n:literal, $ns:literal, $spec:literal, $a:ident) => {
        TypeInfo {
            name: $n,
            namespace: $ns,
            spec: $spec,
            access: Access::$a,
        }
    };
}

/// Type strings used throughout the emulator.
pub mod names {
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
    pub const NODE_FORCE_DESTROY_REQUEST: &str = "NodeForceDestroyRequests.omni.sidero.dev";
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
    pub const FEATURES_CONFIG: &str = "FeaturesConfigs.omni.sidero.dev";
    pub const SYS_VERSION: &str = "SysVersions.system.sidero.dev";
    pub const KUBECONFIG: &str = "Kubeconfigs.omni.sidero.dev";
    pub const TALOS_CONFIG: &str = "TalosConfigs.omni.sidero.dev";
}

/// Every type the emulator knows.
pub const TYPES: &[TypeInfo] = &[
    t!(
        "Clusters.omni.sidero.dev",
        "default",
        "specs.ClusterSpec",
        UserWritable
    ),
    t!(
        "MachineSets.omni.sidero.dev",
        "default",
        "specs.MachineSetSpec",
        UserWritable
    ),
    t!(
        "MachineSetNodes.omni.sidero.dev",
        "default",
        "specs.MachineSetNodeSpec",
        UserWritable
    ),
    t!(
        "ConfigPatches.omni.sidero.dev",
        "default",
        "specs.ConfigPatchSpec",
        UserWritable
    ),
    t!(
        "MachineClasses.omni.sidero.dev",
        "default",
        "specs.MachineClassSpec",
        UserWritable
    ),
    t!(
        "ExtensionsConfigurations.omni.sidero.dev",
        "default",
        "specs.ExtensionsConfigurationSpec",
        UserWritable
    ),
    t!(
        "KernelArgs.omni.sidero.dev",
        "default",
        "specs.KernelArgsSpec",
        UserWritable
    ),
    t!(
        "MachineLabels.omni.sidero.dev",
        "default",
        "specs.MachineLabelsSpec",
        UserWritable
    ),
    t!(
        "MachineInstallDiskConfigs.omni.sidero.dev",
        "default",
        "specs.MachineInstallDiskConfigSpec",
        UserWritable
    ),
    t!(
        "KubernetesManifestGroups.omni.sidero.dev",
        "default",
        "specs.KubernetesManifestGroupSpec",
        UserWritable
    ),
    t!(
        "KubernetesHealthChecks.omni.sidero.dev",
        "default",
        "specs.KubernetesHealthCheckSpec",
        UserWritable
    ),
    t!(
        "EtcdManualBackups.omni.sidero.dev",
        "ephemeral",
        "specs.EtcdManualBackupSpec",
        UserWritable
    ),
    t!(
        "NodeForceDestroyRequests.omni.sidero.dev",
        "default",
        "specs.NodeForceDestroyRequestSpec",
        UserWritable
    ),
    t!(
        "EtcdBackupS3Configs.omni.sidero.dev",
        "default",
        "specs.EtcdBackupS3ConfSpec",
        AdminWritable
    ),
    t!(
        "Machines.omni.sidero.dev",
        "default",
        "specs.MachineSpec",
        ReadOnly
    ),
    t!(
        "MachineStatuses.omni.sidero.dev",
        "default",
        "specs.MachineStatusSpec",
        ReadOnly
    ),
    t!(
        "ClusterStatuses.omni.sidero.dev",
        "default",
        "specs.ClusterStatusSpec",
        ReadOnly
    ),
    t!(
        "ClusterMachines.omni.sidero.dev",
        "default",
        "specs.ClusterMachineSpec",
        ReadOnly
    ),
    t!(
        "ClusterMachineStatuses.omni.sidero.dev",
        "default",
        "specs.ClusterMachineStatusSpec",
        ReadOnly
    ),
    t!(
        "MachineSetStatuses.omni.sidero.dev",
        "default",
        "specs.MachineSetStatusSpec",
        ReadOnly
    ),
    t!(
        "ControlPlaneStatuses.omni.sidero.dev",
        "default",
        "specs.ControlPlaneStatusSpec",
        ReadOnly
    ),
    t!(
        "KubernetesUpgradeStatuses.omni.sidero.dev",
        "default",
        "specs.KubernetesUpgradeStatusSpec",
        ReadOnly
    ),
    t!(
        "TalosUpgradeStatuses.omni.sidero.dev",
        "default",
        "specs.TalosUpgradeStatusSpec",
        ReadOnly
    ),
    t!(
        "ClusterUUIDs.omni.sidero.dev",
        "default",
        "specs.ClusterUUID",
        ReadOnly
    ),
    t!(
        "ClusterBootstrapStatuses.omni.sidero.dev",
        "default",
        "specs.ClusterBootstrapStatusSpec",
        ReadOnly
    ),
    t!(
        "ClusterConfigVersions.omni.sidero.dev",
        "default",
        "specs.ClusterConfigVersionSpec",
        ReadOnly
    ),
    t!(
        "ClusterEndpoints.omni.sidero.dev",
        "default",
        "specs.ClusterEndpointSpec",
        ReadOnly
    ),
    t!(
        "LoadBalancerStatuses.omni.sidero.dev",
        "default",
        "specs.LoadBalancerStatusSpec",
        ReadOnly
    ),
    t!(
        "ClusterDestroyStatuses.omni.sidero.dev",
        "default",
        "specs.DestroyStatusSpec",
        ReadOnly
    ),
    t!(
        "MachineSetDestroyStatuses.omni.sidero.dev",
        "ephemeral",
        "specs.DestroyStatusSpec",
        ReadOnly
    ),
    t!(
        "SchematicConfigurations.omni.sidero.dev",
        "default",
        "specs.SchematicConfigurationSpec",
        ReadOnly
    ),
    t!(
        "MachineExtensions.omni.sidero.dev",
        "default",
        "specs.MachineExtensionsSpec",
        ReadOnly
    ),
    t!(
        "MachineExtensionsStatuses.omni.sidero.dev",
        "default",
        "specs.MachineExtensionsStatusSpec",
        ReadOnly
    ),
    t!(
        "KernelArgsStatuses.omni.sidero.dev",
        "default",
        "specs.KernelArgsStatusSpec",
        ReadOnly
    ),
    t!(
        "MachineUpgradeStatuses.omni.sidero.dev",
        "default",
        "specs.MachineUpgradeStatusSpec",
        ReadOnly
    ),
    t!(
        "TalosVersions.omni.sidero.dev",
        "default",
        "specs.TalosVersionSpec",
        ReadOnly
    ),
    t!(
        "KubernetesVersions.omni.sidero.dev",
        "default",
        "specs.KubernetesVersionSpec",
        ReadOnly
    ),
    t!(
        "TalosExtensions.omni.sidero.dev",
        "default",
        "specs.TalosExtensionsSpec",
        ReadOnly
    ),
    t!(
        "EtcdBackups.omni.sidero.dev",
        "external",
        "specs.EtcdBackupSpec",
        ReadOnly
    ),
    t!(
        "EtcdBackupStatuses.omni.sidero.dev",
        "metrics",
        "specs.EtcdBackupStatusSpec",
        ReadOnly
    ),
    t!(
        "EtcdBackupOverallStatuses.omni.sidero.dev",
        "metrics",
        "specs.EtcdBackupOverallStatusSpec",
        ReadOnly
    ),
    t!(
        "FeaturesConfigs.omni.sidero.dev",
        "default",
        "specs.FeaturesConfigSpec",
        AnySignedRead
    ),
    t!(
        "SysVersions.system.sidero.dev",
        "ephemeral",
        "specs.SysVersionSpec",
        AnySignedRead
    ),
    t!(
        "Kubeconfigs.omni.sidero.dev",
        "default",
        "specs.KubeconfigSpec",
        NoAccess
    ),
    t!(
        "TalosConfigs.omni.sidero.dev",
        "default",
        "specs.TalosConfigSpec",
        NoAccess
    ),
];

/// Looks a type up by its type string.
pub fn lookup(name: &str) -> Option<&'static TypeInfo> {
    TYPES.iter().find(|t| t.name == name)
}

/// Whether Omni runs its generic auto-destroy controller for the type (§1.5: user-managed types).
pub fn auto_destroys(name: &str) -> bool {
    matches!(
        lookup(name).map(|t| t.access),
        Some(Access::UserWritable | Access::AdminWritable)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_message_exists_in_the_descriptor_set() {
        let pool = prost_reflect::DescriptorPool::decode(omni_api::FILE_DESCRIPTOR_SET).unwrap();
        for t in TYPES {
            assert!(pool.get_message_by_name(t.spec).is_some(), "{}", t.spec);
        }
    }
}
