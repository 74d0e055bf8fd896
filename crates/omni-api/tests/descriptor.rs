//! The generated descriptor must name Omni's packages, services and methods exactly, because the
//! full method path is what goes on the wire (omni-api.md §1.2).

use prost::Message;
use prost_types::FileDescriptorSet;

fn descriptor() -> FileDescriptorSet {
    FileDescriptorSet::decode(omni_api::FILE_DESCRIPTOR_SET).expect("descriptor set decodes")
}

fn methods(fds: &FileDescriptorSet, package: &str, service: &str) -> Vec<String> {
    fds.file
        .iter()
        .filter(|f| f.package() == package)
        .flat_map(|f| f.service.iter())
        .filter(|s| s.name() == service)
        .flat_map(|s| s.method.iter().map(|m| m.name().to_string()))
        .collect()
}

#[test]
fn state_service_has_the_eight_cosi_methods() {
    let fds = descriptor();
    let mut got = methods(&fds, "cosi.resource", "State");
    got.sort();
    assert_eq!(
        got,
        [
            "Create",
            "Destroy",
            "Get",
            "List",
            "Teardown",
            "TeardownAndDestroy",
            "Update",
            "Watch"
        ]
    );
}

#[test]
fn management_and_resource_services_are_present() {
    let fds = descriptor();
    let mgmt = methods(&fds, "management", "ManagementService");
    for m in [
        "Kubeconfig",
        "Talosconfig",
        "Omniconfig",
        "ValidateConfig",
        "CreateSchematic",
        "KubernetesUpgradePreChecks",
        "CreateServiceAccount",
        "ListServiceAccounts",
        "DestroyServiceAccount",
        "GetMachineJoinConfig",
        "CreateJoinToken",
    ] {
        assert!(mgmt.iter().any(|x| x == m), "management.{m} missing");
    }
    let res = methods(&fds, "omni.resources", "ResourceService");
    assert_eq!(res.len(), 9, "{res:?}");
}

#[test]
fn descriptor_includes_well_known_imports_for_reflection() {
    let fds = descriptor();
    for name in [
        "google/protobuf/timestamp.proto",
        "google/protobuf/duration.proto",
        "google/protobuf/empty.proto",
    ] {
        assert!(fds.file.iter().any(|f| f.name() == name), "{name} missing");
    }
}

#[test]
fn spec_field_numbers_match_the_spec_tables() {
    // Spot checks of numbers that differ from what one would guess (omni-api.md §3.4).
    let fds = descriptor();
    let msg = |name: &str| {
        fds.file
            .iter()
            .filter(|f| f.package() == "specs")
            .flat_map(|f| f.message_type.iter())
            .find(|m| m.name() == name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .clone()
    };
    let num = |m: &prost_types::DescriptorProto, field: &str| {
        m.field
            .iter()
            .find(|f| f.name() == field)
            .unwrap_or_else(|| panic!("{field} missing"))
            .number()
    };
    let k8s = msg("KubernetesUpgradeStatusSpec");
    assert_eq!(num(&k8s, "upgrade_versions"), 6);
    assert_eq!(num(&k8s, "current_upgrade_version"), 7);
    let status = msg("ClusterStatusSpec");
    assert_eq!(num(&status, "kubernetesAPIReady"), 5);
    assert_eq!(num(&status, "controlplaneReady"), 6);
    let lb = msg("LoadBalancerStatusSpec");
    assert_eq!(num(&lb, "healthy"), 3);
    let km = msg("KubernetesManifestGroupSpec");
    assert_eq!(num(&km, "compressed_data"), 1);
    assert_eq!(num(&km, "data"), 2);
}
