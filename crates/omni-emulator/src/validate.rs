//! Omni's server-side validations (omni-api.md §4). Each function returns every problem it
//! finds; the caller wraps them as `failed to validate: <go-multierror text>` (§1.7).

use omni_api::specs;
use prost::Message;
use talos_machinery::names;

use crate::model::{Phase, Res, Time};
use crate::seed::labels as l;
use crate::store::Store;
use crate::types::names as t;

fn decode<M: Message + Default>(r: &Res, errs: &mut Vec<String>) -> Option<M> {
    match M::decode(r.spec.as_slice()) {
        Ok(m) => Some(m),
        Err(e) => {
            errs.push(format!("failed to decode spec: {e}"));
            None
        }
    }
}

fn get(store: &Store, typ: &str, id: &str) -> Option<std::sync::Arc<Res>> {
    store.get("default", typ, id)
}

/// Go's `time.Duration.String()` for whole seconds (e.g. `1h0m0s`, `30m0s`, `5s`).
pub fn go_duration(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

fn metadata(r: &Res, old: Option<&Res>, errs: &mut Vec<String>) {
    if let Err(e) = names::validate_metadata_map("label", &r.labels, old.map(|o| &o.labels)) {
        errs.push(e);
    }
    if let Err(e) =
        names::validate_metadata_map("annotation", &r.annotations, old.map(|o| &o.annotations))
    {
        errs.push(e);
    }
}

/// Create validations; returns the collected error messages.
pub fn on_create(store: &Store, r: &Res) -> Vec<String> {
    let mut errs = Vec::new();
    if let Err(e) = names::validate_resource_id(&r.id) {
        errs.push(e);
    }
    metadata(r, None, &mut errs);
    match r.typ.as_str() {
        t::CLUSTER => cluster(store, None, r, &mut errs),
        t::MACHINE_SET => machine_set(store, None, r, &mut errs),
        t::MACHINE_SET_NODE => machine_set_node(store, None, r, &mut errs),
        t::CONFIG_PATCH => config_patch(store, None, r, &mut errs),
        t::MACHINE_CLASS => machine_class(r, &mut errs),
        t::EXTENSIONS_CONFIGURATION => extensions_configuration(store, r, &mut errs),
        t::KERNEL_ARGS => kernel_args(r, &mut errs),
        t::MACHINE_INSTALL_DISK_CONFIG => install_disk(r, &mut errs),
        t::KUBERNETES_MANIFEST_GROUP => manifest_group(r, &mut errs),
        t::KUBERNETES_HEALTH_CHECK => health_check(r, &mut errs),
        t::ETCD_MANUAL_BACKUP => manual_backup(None, r, &mut errs),
        t::NODE_FORCE_DESTROY_REQUEST if get(store, t::CLUSTER_MACHINE, &r.id).is_none() => {
            errs.push(format!("cluster machine {:?} does not exist", r.id));
        }
        _ => {}
    }
    errs
}

/// Update validations (`old` is `None` when the resource is missing).
pub fn on_update(store: &Store, old: Option<&Res>, new: &Res) -> Vec<String> {
    let mut errs = Vec::new();
    metadata(new, old, &mut errs);
    // Omni skips the type rules when the update moves the resource to tearingDown.
    if new.phase == Phase::TearingDown {
        return errs;
    }
    match new.typ.as_str() {
        t::CLUSTER => cluster(store, old, new, &mut errs),
        t::MACHINE_SET => machine_set(store, old, new, &mut errs),
        t::MACHINE_SET_NODE => machine_set_node(store, old, new, &mut errs),
        t::CONFIG_PATCH => config_patch(store, old, new, &mut errs),
        t::MACHINE_CLASS => machine_class(new, &mut errs),
        t::EXTENSIONS_CONFIGURATION => extensions_configuration(store, new, &mut errs),
        t::KERNEL_ARGS => kernel_args(new, &mut errs),
        t::MACHINE_INSTALL_DISK_CONFIG => install_disk(new, &mut errs),
        t::KUBERNETES_MANIFEST_GROUP => manifest_group(new, &mut errs),
        t::KUBERNETES_HEALTH_CHECK => health_check(new, &mut errs),
        t::ETCD_MANUAL_BACKUP => manual_backup(old, new, &mut errs),
        _ => {}
    }
    errs
}

/// Destroy / teardown validations.
pub fn on_destroy(store: &Store, existing: Option<&Res>) -> Vec<String> {
    let mut errs = Vec::new();
    let Some(r) = existing else { return errs };
    match r.typ.as_str() {
        t::CLUSTER if is_locked(r) && get(store, t::CLUSTER_STATUS, &r.id).is_some() => {
            errs.push(format!(
                "deletion is not allowed: the cluster {:?} is locked",
                r.id
            ));
        }
        t::MACHINE_SET => {
            if let Some(c) = r.label(l::CLUSTER).and_then(|c| get(store, t::CLUSTER, c)) {
                if c.phase == Phase::Running && is_locked(&c) {
                    errs.push(format!(
                        "deletion is not allowed: the cluster {:?} is locked",
                        c.id
                    ));
                }
            }
        }
        t::MACHINE_SET_NODE => {
            let set = r
                .label(l::MACHINE_SET)
                .and_then(|s| get(store, t::MACHINE_SET, s));
            let cluster = r.label(l::CLUSTER).and_then(|c| get(store, t::CLUSTER, c));
            let live = set.as_ref().is_some_and(|s| s.phase == Phase::Running)
                && cluster.as_ref().is_some_and(|c| c.phase == Phase::Running);
            if live {
                if r.annotations.contains_key(l::LOCKED) {
                    errs.push(format!(
                        "removing the locked machine {:?} from the machine set is not allowed",
                        r.id
                    ));
                }
                if cluster.as_ref().is_some_and(|c| is_locked(c)) {
                    errs.push(format!(
                        "deletion is not allowed: the cluster {:?} is locked",
                        cluster.as_ref().map(|c| c.id.clone()).unwrap_or_default()
                    ));
                }
            }
        }
        t::MACHINE_CLASS => {
            let users: Vec<String> = store
                .list("default", t::MACHINE_SET, &Default::default())
                .iter()
                .filter(|ms| allocation_of(ms).is_some_and(|a| a.name == r.id))
                .map(|ms| ms.id.clone())
                .collect();
            if !users.is_empty() {
                errs.push(format!(
                    "can not delete the machine class as it is still in use by machine sets: {}",
                    users.join(", ")
                ));
            }
        }
        _ => {}
    }
    errs
}

fn is_locked(cluster: &Res) -> bool {
    cluster.annotations.contains_key(l::CLUSTER_LOCKED)
}

fn talos_version_spec(store: &Store, v: &str) -> Option<specs::TalosVersionSpec> {
    get(store, t::TALOS_VERSION, v)
        .and_then(|r| specs::TalosVersionSpec::decode(r.spec.as_slice()).ok())
}

fn minor(v: &str) -> Option<(u64, u64)> {
    talos_machinery::versions::parse_version(v)
        .ok()
        .map(|v| (v.0.major, v.0.minor))
}

fn cluster(store: &Store, old: Option<&Res>, r: &Res, errs: &mut Vec<String>) {
    if old.is_none() {
        if let Err(e) = names::validate_cluster_name(&r.id) {
            errs.push(e);
        }
    }
    let Some(spec) = decode::<specs::ClusterSpec>(r, errs) else {
        return;
    };
    let old_spec = old.and_then(|o| specs::ClusterSpec::decode(o.spec.as_slice()).ok());
    if let Some(o) = old {
        if is_locked(o) && is_locked(r) {
            errs.push(format!(
                "updating cluster configuration is not allowed: the cluster {:?} is locked",
                r.id
            ));
            return;
        }
    }
    let mut versions_ok = true;
    if let Err(e) = talos_machinery::versions::parse_version(&spec.kubernetes_version) {
        errs.push(format!("error validating Kubernetes version: {e}"));
        versions_ok = false;
    }
    if let Err(e) = talos_machinery::versions::parse_version(&spec.talos_version) {
        errs.push(format!("error validating Talos version: {e}"));
        versions_ok = false;
    }
    if !versions_ok {
        return;
    }
    let tv = &spec.talos_version;
    match talos_version_spec(store, tv) {
        None => errs.push(format!(
            "invalid talos version {tv:?}: version is not available"
        )),
        Some(tvs) => {
            let old_deprecated = old_spec
                .as_ref()
                .and_then(|o| talos_version_spec(store, &o.talos_version))
                .is_some_and(|o| o.deprecated);
            if tvs.deprecated && !old_deprecated {
                errs.push(format!(
                    "invalid talos version {tv:?}: {tv} is no longer supported"
                ));
            }
            if tvs.unsupported {
                errs.push(format!(
                    "invalid talos version {tv:?}: {tv} is not supported by this Omni release"
                ));
            }
            if !tvs
                .compatible_kubernetes_versions
                .contains(&spec.kubernetes_version)
            {
                errs.push(format!(
                    "invalid kubernetes version {:?}: is not compatible with talos version {tv:?}",
                    spec.kubernetes_version
                ));
            }
        }
    }
    let features = spec.features.unwrap_or_default();
    let old_features = old_spec
        .as_ref()
        .and_then(|o| o.features)
        .unwrap_or_default();
    if let Some(o) = &old_spec {
        if o.kubernetes_version != spec.kubernetes_version
            && !talos_machinery::versions::kubernetes_upgrade_allowed(
                &o.kubernetes_version,
                &spec.kubernetes_version,
            )
        {
            // Going back to the version an in-flight upgrade started from aborts it (allowed).
            let aborting = get(store, t::KUBERNETES_UPGRADE_STATUS, &r.id)
                .and_then(|s| specs::KubernetesUpgradeStatusSpec::decode(s.spec.as_slice()).ok())
                .is_some_and(|s| {
                    s.phase == specs::kubernetes_upgrade_status_spec::Phase::Upgrading as i32
                        && s.last_upgrade_version == spec.kubernetes_version
                });
            if !aborting {
                errs.push(format!(
                    "kubernetes version is not supported for upgrade to {:?} from {:?}",
                    spec.kubernetes_version, o.kubernetes_version
                ));
            }
        }
        let initial = get(store, t::CLUSTER_CONFIG_VERSION, &r.id)
            .and_then(|c| specs::ClusterConfigVersionSpec::decode(c.spec.as_slice()).ok())
            .map(|c| c.version)
            .filter(|v| !v.is_empty());
        if let Some(init) = initial {
            if let (Some(a), Some(b)) = (minor(&init), minor(tv)) {
                if b < a {
                    errs.push(format!(
                        "downgrading from version {init} to {tv} is not supported"
                    ));
                }
            }
        }
        if features.disk_encryption != old_features.disk_encryption {
            errs.push("updating disk encryption settings is not allowed".into());
        }
    }
    if features.disk_encryption && old.is_none() && minor(tv).is_some_and(|m| m < (1, 5)) {
        errs.push("disk encryption is supported only for Talos version >= 1.5.0".into());
    }
    let fc = get(store, t::FEATURES_CONFIG, "features-config")
        .and_then(|f| specs::FeaturesConfigSpec::decode(f.spec.as_slice()).ok())
        .unwrap_or_default();
    if let Some(interval) = spec.backup_configuration.as_ref().and_then(|b| b.interval) {
        let s = fc.etcd_backup_settings.unwrap_or_default();
        let min = s.min_interval.map(|d| d.seconds).unwrap_or(3600);
        let max = s.max_interval.map(|d| d.seconds).unwrap_or(86_400);
        if interval.seconds < min {
            errs.push(format!(
                "backup interval must be greater than {}",
                go_duration(min)
            ));
        }
        if interval.seconds > max {
            errs.push(format!(
                "backup interval must be less than {}",
                go_duration(max)
            ));
        }
    }
    if features.use_embedded_discovery_service
        && !old_features.use_embedded_discovery_service
        && !fc.embedded_discovery_service
    {
        errs.push("embedded discovery service is not enabled".into());
    }
    if features.disable_public_discovery_service {
        let base = get(store, t::CLUSTER_CONFIG_VERSION, &r.id)
            .and_then(|c| specs::ClusterConfigVersionSpec::decode(c.spec.as_slice()).ok())
            .map(|c| c.version)
            .filter(|_| old.is_some())
            .unwrap_or_else(|| tv.clone());
        if minor(&base).is_some_and(|m| m < (1, 14)) {
            errs.push("disabling the public discovery service requires Talos 1.14 or later".into());
        }
        if !features.use_embedded_discovery_service {
            errs.push(
                "disabling the public discovery service requires the embedded discovery service"
                    .into(),
            );
        }
    }
}

/// The allocation of a machine set: the deprecated `machine_class` is read first (§3.4).
pub fn allocation_of(ms: &Res) -> Option<specs::machine_set_spec::MachineAllocation> {
    let s = specs::MachineSetSpec::decode(ms.spec.as_slice()).ok()?;
    spec_allocation(&s)
}

/// Allocation of a decoded machine set spec; Omni still honours the deprecated field first.
#[allow(deprecated)]
pub fn spec_allocation(
    s: &specs::MachineSetSpec,
) -> Option<specs::machine_set_spec::MachineAllocation> {
    s.machine_class.clone().or(s.machine_allocation.clone())
}

fn label_required(r: &Res, key: &str, errs: &mut Vec<String>) -> Option<String> {
    match r.label(key) {
        None => {
            errs.push(format!("label {key:?} does not exist"));
            None
        }
        Some("") => {
            errs.push(format!("label {key:?} has empty value"));
            None
        }
        Some(v) => Some(v.to_string()),
    }
}

fn label_immutable(old: Option<&Res>, r: &Res, key: &str, errs: &mut Vec<String>) {
    if let Some(o) = old.and_then(|o| o.label(key)) {
        if r.label(key) != Some(o) {
            errs.push(format!("changing value of label {key:?} is not allowed"));
        }
    }
}

fn machine_set(store: &Store, old: Option<&Res>, r: &Res, errs: &mut Vec<String>) {
    let cluster_id = label_required(r, l::CLUSTER, errs);
    label_immutable(old, r, l::CLUSTER, errs);
    let cp = r.labels.contains_key(l::ROLE_CONTROLPLANE);
    let worker = r.labels.contains_key(l::ROLE_WORKER);
    if !cp && !worker {
        errs.push(format!(
            "machine set must have either {:?} or {:?} label",
            l::ROLE_CONTROLPLANE,
            l::ROLE_WORKER
        ));
    }
    let cluster = cluster_id
        .as_deref()
        .and_then(|c| get(store, t::CLUSTER, c));
    if let Some(c) = &cluster_id {
        match &cluster {
            None if r.phase == Phase::Running => {
                errs.push(format!("the cluster {c:?} does not exist"))
            }
            Some(cl) if old.is_none() => {
                if cl.phase == Phase::TearingDown {
                    errs.push(format!("the cluster {c:?} is tearing down"));
                }
                if is_locked(cl) {
                    errs.push(format!("adding machine set to the cluster {c:?} is not allowed: the cluster is locked"));
                }
            }
            Some(cl) if is_locked(cl) && r.phase == Phase::Running => {
                errs.push(format!(
                    "updating machine set is not allowed: the cluster {c:?} is locked"
                ));
            }
            _ => {}
        }
        if old.is_none() && cp {
            let bootstrapped = get(store, t::CLUSTER_BOOTSTRAP_STATUS, c)
                .and_then(|b| specs::ClusterBootstrapStatusSpec::decode(b.spec.as_slice()).ok())
                .is_some_and(|b| b.bootstrapped);
            if bootstrapped {
                errs.push("adding control plane machine set to an already bootstrapped cluster is not allowed".into());
            }
        }
        if old.is_none() && (cp || worker) {
            if let Err(e) = names::validate_machine_set_id(c, &r.id, cp) {
                errs.push(e);
            }
        }
    }
    let Some(spec) = decode::<specs::MachineSetSpec>(r, errs) else {
        return;
    };
    let old_spec = old.and_then(|o| specs::MachineSetSpec::decode(o.spec.as_slice()).ok());
    if let Some(b) = &spec.bootstrap_spec {
        if !cp {
            errs.push("bootstrap spec is not allowed for worker machine sets".into());
        }
        if let Some(os) = &old_spec {
            if os.bootstrap_spec.as_ref() != Some(b) {
                errs.push("bootstrap spec is immutable after creation".into());
            }
        } else {
            if b.snapshot.len() > 4096
                || b.snapshot.starts_with('/')
                || b.snapshot.split('/').any(|p| p == "..")
            {
                errs.push(format!("invalid snapshot path {:?}", b.snapshot));
            }
            let matches = store
                .list("default", t::CLUSTER_UUID, &Default::default())
                .iter()
                .filter(|u| {
                    specs::ClusterUuid::decode(u.spec.as_slice())
                        .is_ok_and(|s| s.uuid == b.cluster_uuid)
                })
                .count();
            if matches != 1 {
                errs.push(format!("invalid cluster UUID {:?}", b.cluster_uuid));
            }
        }
    } else if old_spec
        .as_ref()
        .is_some_and(|o| o.bootstrap_spec.is_some())
    {
        let bootstrapped = cluster_id
            .as_deref()
            .and_then(|c| get(store, t::CLUSTER_BOOTSTRAP_STATUS, c))
            .and_then(|b| specs::ClusterBootstrapStatusSpec::decode(b.spec.as_slice()).ok())
            .is_some_and(|b| b.bootstrapped);
        if !bootstrapped {
            errs.push(
                "bootstrap spec can only be removed after the cluster is bootstrapped".into(),
            );
        }
    }
    let alloc = spec_allocation(&spec);
    let old_alloc = old_spec.as_ref().and_then(spec_allocation);
    if let Some(a) = &alloc {
        if a.name.is_empty() {
            errs.push("machine allocation source name is not set".into());
        }
        let unlimited = a.allocation_type
            == specs::machine_set_spec::machine_allocation::Type::Unlimited as i32;
        if unlimited && a.machine_count > 0 {
            errs.push("machine count can be set only if static allocation type is used".into());
        }
        let name_changed = old_alloc.as_ref().is_none_or(|o| o.name != a.name);
        if !a.name.is_empty() && name_changed {
            match get(store, t::MACHINE_CLASS, &a.name) {
                None => errs.push(format!(
                    "machine class with name {:?} doesn't exist",
                    a.name
                )),
                Some(mc) => {
                    let auto = specs::MachineClassSpec::decode(mc.spec.as_slice())
                        .is_ok_and(|s| s.auto_provision.is_some());
                    if auto && unlimited {
                        errs.push("unlimited allocation type is not allowed with an auto-provision machine class".into());
                    }
                }
            }
        }
    }
    if let Some(o) = old {
        let nodes = store.list(
            "default",
            t::MACHINE_SET_NODE,
            &crate::query::labels_equal(&[(l::MACHINE_SET, &o.id)]),
        );
        if !nodes.is_empty() {
            if old_alloc.is_none() && alloc.is_some() {
                errs.push("machine set is not empty and is using manual nodes management, can not switch to machine class allocation".into());
            }
            if old_alloc.is_some() && alloc.is_none() {
                errs.push("machine set is not empty and is using machine class allocation, can not switch to manual nodes management".into());
            }
        }
    }
}

fn machine_set_node(store: &Store, old: Option<&Res>, r: &Res, errs: &mut Vec<String>) {
    let cluster_id = label_required(r, l::CLUSTER, errs);
    let set_id = label_required(r, l::MACHINE_SET, errs);
    label_immutable(old, r, l::CLUSTER, errs);
    label_immutable(old, r, l::MACHINE_SET, errs);
    if r.annotations.contains_key(l::LOCKED) && r.labels.contains_key(l::ROLE_CONTROLPLANE) {
        errs.push("locking controlplanes is not allowed".into());
    }
    let set_changed = old.is_none_or(|o| o.label(l::MACHINE_SET) != r.label(l::MACHINE_SET));
    if !set_changed {
        return;
    }
    if let Some(s) = &set_id {
        match get(store, t::MACHINE_SET, s) {
            None => errs.push(format!(
                "adding machine set node to the machine set {s:?} is not allowed: the machine set does not exist"
            )),
            Some(ms) if ms.phase == Phase::TearingDown => errs.push(format!(
                "adding machine set node to the machine set {s:?} is not allowed: the machine set is tearing down"
            )),
            Some(ms) => {
                if allocation_of(&ms).is_some() {
                    errs.push(format!(
                        "adding machine set node to the machine set {s:?} is not allowed: the machine set is using automated machine allocation"
                    ));
                }
                if ms.labels.contains_key(l::ROLE_CONTROLPLANE) && r.annotations.contains_key(l::LOCKED) {
                    errs.push("locking controlplanes is not allowed".into());
                }
            }
        }
    }
    let Some(c) = &cluster_id else { return };
    let Some(cluster) = get(store, t::CLUSTER, c) else {
        errs.push(format!("the cluster {c:?} does not exist"));
        return;
    };
    if cluster.phase == Phase::TearingDown {
        errs.push(format!("the cluster {c:?} is tearing down"));
    }
    if is_locked(&cluster) {
        errs.push(format!(
            "adding machine set node to the cluster {c:?} is not allowed: the cluster is locked"
        ));
    }
    let Ok(cspec) = specs::ClusterSpec::decode(cluster.spec.as_slice()) else {
        return;
    };
    let Some(ms) = get(store, t::MACHINE_STATUS, &r.id) else {
        return;
    };
    let Ok(mspec) = specs::MachineStatusSpec::decode(ms.spec.as_slice()) else {
        return;
    };
    let (Some(machine), Some(want)) = (minor(&mspec.talos_version), minor(&cspec.talos_version))
    else {
        return;
    };
    if machine > want {
        errs.push(format!(
            "downgrade is not allowed: the machine runs Talos {} and the cluster uses {}",
            mspec.talos_version, cspec.talos_version
        ));
    } else if !ms.labels.contains_key(l::INSTALLED)
        && machine != want
        && !(machine >= (1, 13) && want >= (1, 13))
    {
        errs.push(format!(
            "machine running from ISO or PXE must have the same major and minor version as the cluster it is going to be added to: machine has {}, cluster has {}",
            mspec.talos_version, cspec.talos_version
        ));
    }
}

fn config_patch(store: &Store, old: Option<&Res>, r: &Res, errs: &mut Vec<String>) {
    if old.is_none() {
        if let Some(c) = r.label(l::CLUSTER).and_then(|c| get(store, t::CLUSTER, c)) {
            if c.phase == Phase::TearingDown {
                errs.push(format!("cluster {:?} is tearing down", c.id));
            }
        }
        if let Some(ms) = r
            .label(l::MACHINE_SET)
            .and_then(|s| get(store, t::MACHINE_SET, s))
        {
            if ms.phase == Phase::TearingDown {
                errs.push(format!("machine set {:?} is tearing down", ms.id));
            }
        }
    }
    let Some(spec) = decode::<specs::ConfigPatchSpec>(r, errs) else {
        return;
    };
    if !spec.compressed_data.is_empty() {
        // The emulator has no zstd dictionary decoder; compressed patches are stored unchecked.
        return;
    }
    let changed = old
        .and_then(|o| specs::ConfigPatchSpec::decode(o.spec.as_slice()).ok())
        .is_none_or(|o| o.data != spec.data || !o.compressed_data.is_empty());
    if !changed {
        return;
    }
    if let Err(e) = talos_machinery::patch::validate_config_patch(&spec.data) {
        if e.load_error {
            errs.push(e.to_string());
        } else {
            // go-multierror flattens nested multierrors into one list.
            errs.extend(e.problems.into_iter().map(|p| p.message));
        }
    }
}

fn machine_class(r: &Res, errs: &mut Vec<String>) {
    let Some(spec) = decode::<specs::MachineClassSpec>(r, errs) else {
        return;
    };
    match (&spec.auto_provision, spec.match_labels.is_empty()) {
        (Some(_), false) => errs.push("can't set both auto provision and match labels".into()),
        (None, true) => {
            errs.push("machine class should either have auto provision or match labels set".into())
        }
        _ => {}
    }
    if let Err(e) = talos_machinery::selector::parse_machine_class_selectors(&spec.match_labels) {
        errs.push(e);
    }
    if let Some(p) = &spec.auto_provision {
        if p.provider_id.is_empty() {
            errs.push("provider id is not set".into());
        } else {
            // The emulator runs no infrastructure providers.
            errs.push(format!("infra provider {:?} does not exist", p.provider_id));
        }
        if let Err(e) = names::validate_kernel_args(&p.kernel_args) {
            errs.push(e);
        }
    }
}

fn extensions_configuration(store: &Store, r: &Res, errs: &mut Vec<String>) {
    let Some(spec) = decode::<specs::ExtensionsConfigurationSpec>(r, errs) else {
        return;
    };
    if spec.extensions.is_empty() {
        return;
    }
    if let Err(e) = names::validate_extension_list(&spec.extensions) {
        errs.push(e);
    }
    let Some(c) = r.label(l::CLUSTER).filter(|c| !c.is_empty()) else {
        errs.push(format!(
            "label {:?} is required for a non-empty extensions list",
            l::CLUSTER
        ));
        return;
    };
    let Some(cluster) = get(store, t::CLUSTER, c) else {
        errs.push(format!("the cluster {c:?} does not exist"));
        return;
    };
    let Ok(cspec) = specs::ClusterSpec::decode(cluster.spec.as_slice()) else {
        return;
    };
    let available: Vec<String> = get(store, t::TALOS_EXTENSIONS, &cspec.talos_version)
        .and_then(|x| specs::TalosExtensionsSpec::decode(x.spec.as_slice()).ok())
        .map(|s| s.items.into_iter().map(|i| i.name).collect())
        .unwrap_or_default();
    for (i, e) in spec.extensions.iter().enumerate() {
        if !available.contains(&names::extension_lookup_name(e)) {
            errs.push(format!(
                "extension {e:?} (entry {i}) is not available for Talos version {:?}",
                cspec.talos_version
            ));
        }
    }
}

fn kernel_args(r: &Res, errs: &mut Vec<String>) {
    if let Some(spec) = decode::<specs::KernelArgsSpec>(r, errs) {
        if let Err(e) = names::validate_kernel_args(&spec.args) {
            errs.push(e);
        }
    }
}

fn install_disk(r: &Res, errs: &mut Vec<String>) {
    if let Some(spec) = decode::<specs::MachineInstallDiskConfigSpec>(r, errs) {
        if spec.disk.is_empty() == spec.disk_selector.is_empty() {
            errs.push("exactly one of disk or disk selector must be set".into());
        }
    }
}

fn manifest_group(r: &Res, errs: &mut Vec<String>) {
    let Some(spec) = decode::<specs::KubernetesManifestGroupSpec>(r, errs) else {
        return;
    };
    if spec.mode == specs::kubernetes_manifest_group_spec::Mode::Unknown as i32 {
        errs.push("manifest mode must be set".into());
    }
    label_required(r, l::CLUSTER, errs);
    if r.labels.contains_key(l::SYSTEM_MANIFEST) {
        errs.push("creating system manifests is not allowed".into());
    }
    if spec.compressed_data.is_empty() {
        for doc in serde_norway::Deserializer::from_str(&spec.data) {
            if let Err(e) = <serde_norway::Value as serde::Deserialize>::deserialize(doc) {
                errs.push(format!("failed to parse manifests: {e}"));
                break;
            }
        }
    }
}

fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !p.starts_with('-')
                && !p.ends_with('-')
        })
}

fn health_check(r: &Res, errs: &mut Vec<String>) {
    let Some(spec) = decode::<specs::KubernetesHealthCheckSpec>(r, errs) else {
        return;
    };
    if spec.job.trim().is_empty() {
        errs.push("job must not be empty".into());
    } else {
        match serde_norway::from_str::<serde_norway::Value>(&spec.job) {
            Ok(v) if v.get("kind").and_then(|k| k.as_str()) == Some("Job") => {}
            Ok(_) => errs.push("job must be a Kubernetes Job manifest".into()),
            Err(e) => errs.push(format!("failed to decode job: {e}")),
        }
    }
    let name = format!("omni-healthcheck-{}", r.id);
    if !is_dns1123_subdomain(&name) {
        errs.push(format!("{name:?} is not a valid DNS-1123 subdomain"));
    }
    if let Some(i) = spec.interval {
        if i.seconds < 5 {
            errs.push("interval must be at least 5s".into());
        }
    }
}

fn manual_backup(old: Option<&Res>, r: &Res, errs: &mut Vec<String>) {
    let Some(spec) = decode::<specs::EtcdManualBackupSpec>(r, errs) else {
        return;
    };
    let old_at = old
        .and_then(|o| specs::EtcdManualBackupSpec::decode(o.spec.as_slice()).ok())
        .and_then(|o| o.backup_at);
    if old.is_some() && old_at == spec.backup_at {
        return;
    }
    let at = spec.backup_at.map(|t| t.seconds).unwrap_or(0);
    if (at - Time::now().secs).abs() > 60 {
        errs.push("backup time must be within one minute of the current time".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go() {
        assert_eq!(go_duration(3600), "1h0m0s");
        assert_eq!(go_duration(86_400), "24h0m0s");
        assert_eq!(go_duration(90), "1m30s");
        assert_eq!(go_duration(5), "5s");
    }

    #[test]
    fn dns1123() {
        assert!(is_dns1123_subdomain("omni-healthcheck-abc"));
        assert!(!is_dns1123_subdomain("omni-healthcheck-ABC"));
        assert!(!is_dns1123_subdomain("omni-healthcheck-a_b"));
    }
}
