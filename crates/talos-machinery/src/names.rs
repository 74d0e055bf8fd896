//! Omni's naming and metadata rules (omni-api.md §4, §7). Each check returns Omni's gist of
//! message; the emulator wraps it as InvalidArgument, the provider shows it at plan time.

use std::collections::BTreeMap;

/// Maximum length of a resource ID, a label key or an annotation key, in bytes.
pub const MAX_ID_BYTES: usize = 1024;
/// Maximum length of a label or annotation value, in bytes (16 KiB).
pub const MAX_VALUE_BYTES: usize = 16 * 1024;
/// Maximum number of labels, and separately of annotations, on one resource.
pub const MAX_ENTRIES: usize = 256;
/// Reserved label/annotation prefix.
pub const RESERVED_PREFIX: &str = "omni.sidero.dev/";
/// Suffix of the control-plane machine set ID.
pub const CONTROL_PLANES_SUFFIX: &str = "control-planes";
/// KernelArgs limits (omni-api.md §4 "KernelArgs").
pub const MAX_KERNEL_ARGS: usize = 64;
/// Maximum length of one kernel argument, in bytes.
pub const MAX_KERNEL_ARG_BYTES: usize = 256;
/// Maximum number of extensions in an ExtensionsConfiguration.
pub const MAX_EXTENSIONS: usize = 256;

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// All resources, on create: ID non-empty, ≤ 1024 bytes, no control characters.
pub fn validate_resource_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("resource ID must not be empty".into());
    }
    if id.len() > MAX_ID_BYTES {
        return Err(format!(
            "resource ID must be at most {MAX_ID_BYTES} bytes long"
        ));
    }
    if has_control(id) {
        return Err("resource ID must not contain control characters".into());
    }
    Ok(())
}

/// Label key rule: non-empty, ≤ 1024 bytes, no control characters.
pub fn validate_label_key(key: &str) -> Result<(), String> {
    validate_key("label", key)
}

/// Label value rule: ≤ 16 KiB, no control characters.
pub fn validate_label_value(value: &str) -> Result<(), String> {
    validate_value("label", value)
}

/// Annotation key rule (same limits as labels).
pub fn validate_annotation_key(key: &str) -> Result<(), String> {
    validate_key("annotation", key)
}

/// Annotation value rule (same limits as labels).
pub fn validate_annotation_value(value: &str) -> Result<(), String> {
    validate_value("annotation", value)
}

fn validate_key(what: &str, key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err(format!("{what} key must not be empty"));
    }
    if key.len() > MAX_ID_BYTES {
        return Err(format!(
            "{what} key {:?} must be at most {MAX_ID_BYTES} bytes long",
            truncate(key)
        ));
    }
    if has_control(key) {
        return Err(format!(
            "{what} key {key:?} must not contain control characters"
        ));
    }
    Ok(())
}

fn validate_value(what: &str, value: &str) -> Result<(), String> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "{what} value must be at most {MAX_VALUE_BYTES} bytes long"
        ));
    }
    if has_control(value) {
        return Err(format!("{what} value must not contain control characters"));
    }
    Ok(())
}

fn truncate(s: &str) -> String {
    s.chars().take(32).collect::<String>() + "..."
}

/// Metadata limits on create (`previous` = `None`) or update (`previous` = the stored
/// map): on update only new or changed entries are checked, and the count limit applies only
/// when the map grew (omni-api.md §4 "All resources").
pub fn validate_metadata_map(
    what: &str,
    entries: &BTreeMap<String, String>,
    previous: Option<&BTreeMap<String, String>>,
) -> Result<(), String> {
    let grew = previous.is_none_or(|p| entries.len() > p.len());
    if grew && entries.len() > MAX_ENTRIES {
        return Err(format!(
            "too many {what}s: {} (at most {MAX_ENTRIES} allowed)",
            entries.len()
        ));
    }
    for (k, v) in entries {
        if previous.is_some_and(|p| p.get(k) == Some(v)) {
            continue;
        }
        validate_key(what, k)?;
        validate_value(what, v)?;
    }
    Ok(())
}

/// Cluster name rule (omni-api.md §4 "Cluster" create): non-empty; only Unicode letters,
/// digits, `-` and `_`.
pub fn validate_cluster_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("name is required".into());
    }
    if !name
        .chars()
        .all(|c| c.is_alphabetic() || c.is_numeric() || c == '-' || c == '_')
    {
        return Err("name should only contain letters, digits, dashes and underscores".into());
    }
    Ok(())
}

/// The ID of a cluster's control-plane machine set.
pub fn control_plane_machine_set_id(cluster: &str) -> String {
    format!("{cluster}-{CONTROL_PLANES_SUFFIX}")
}

/// The ID of a worker machine set named `name` (templates: `<cluster>-workers` by default).
pub fn worker_machine_set_id(cluster: &str, name: Option<&str>) -> String {
    format!("{cluster}-{}", name.unwrap_or("workers"))
}

/// Machine set ID rule on create (omni-api.md §4 "MachineSet" ID rules).
pub fn validate_machine_set_id(cluster: &str, id: &str, control_plane: bool) -> Result<(), String> {
    let prefix = format!("{cluster}-");
    if !id.starts_with(&prefix) {
        return Err(format!(
            "machine set of cluster {cluster:?} ID must have {prefix:?} as prefix"
        ));
    }
    let cp = control_plane_machine_set_id(cluster);
    if control_plane && id != cp {
        return Err(format!("control plane machine set must have ID {cp:?}"));
    }
    if !control_plane && id == cp {
        return Err(format!("worker machine set must not have ID {cp:?}"));
    }
    Ok(())
}

/// Cluster templates refuse user labels and annotations with the reserved prefix (omni-api.md
/// §3.2, §7); the server itself does not.
pub fn validate_user_descriptor_key(key: &str) -> Result<(), String> {
    if key.starts_with(RESERVED_PREFIX) {
        return Err(format!(
            "label/annotation {key:?} uses the reserved prefix {RESERVED_PREFIX:?}"
        ));
    }
    Ok(())
}

/// KernelArgs rule: ≤ 64 args, each ≤ 256 bytes, no control characters.
pub fn validate_kernel_args(args: &[String]) -> Result<(), String> {
    if args.len() > MAX_KERNEL_ARGS {
        return Err(format!(
            "too many kernel args: {} (at most {MAX_KERNEL_ARGS} allowed)",
            args.len()
        ));
    }
    for (i, a) in args.iter().enumerate() {
        if a.len() > MAX_KERNEL_ARG_BYTES {
            return Err(format!(
                "kernel arg {i} is too long: {} bytes (at most {MAX_KERNEL_ARG_BYTES} allowed)",
                a.len()
            ));
        }
        if has_control(a) {
            return Err(format!("kernel arg {i} contains control characters"));
        }
    }
    Ok(())
}

/// ExtensionsConfiguration list rules that need no catalogue: ≤ 256 entries, no duplicates
/// (omni-api.md §4, image-factory-and-talos.md §5.1). Availability is checked with
/// [`crate::versions::official_extensions`].
pub fn validate_extension_list(extensions: &[String]) -> Result<(), String> {
    if extensions.len() > MAX_EXTENSIONS {
        return Err(format!(
            "too many extensions: {} (at most {MAX_EXTENSIONS} allowed)",
            extensions.len()
        ));
    }
    for (i, e) in extensions.iter().enumerate() {
        if extensions[..i].contains(e) {
            return Err(format!(
                "extension {e:?} (entry {i}) is listed more than once"
            ));
        }
    }
    Ok(())
}

/// Name used for a catalogue lookup: names without `/` get `siderolabs/` prepended (§5.1).
pub fn extension_lookup_name(name: &str) -> String {
    if name.contains('/') {
        name.to_string()
    } else {
        format!("siderolabs/{name}")
    }
}

/// Cluster template config patch ID: `idOverride`, or `NNN-<scope>-<name>` with the base
/// weight plus the index (omni-api.md §7: cluster 200, machine set 400, cluster machine 400).
pub fn template_patch_id(base_weight: u32, index: usize, scope: &str, name: &str) -> String {
    format!("{:03}-{scope}-{name}", base_weight as usize + index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names() {
        assert!(validate_cluster_name("talos-default_1").is_ok());
        assert!(validate_cluster_name("клaстер").is_ok());
        assert_eq!(validate_cluster_name("").unwrap_err(), "name is required");
        assert_eq!(
            validate_cluster_name("a.b").unwrap_err(),
            "name should only contain letters, digits, dashes and underscores"
        );
        assert!(validate_cluster_name("a b").is_err());
    }

    #[test]
    fn machine_set_ids() {
        assert!(validate_machine_set_id("c", "c-control-planes", true).is_ok());
        assert!(validate_machine_set_id("c", "c-workers", false).is_ok());
        assert_eq!(
            validate_machine_set_id("c", "d-workers", false).unwrap_err(),
            "machine set of cluster \"c\" ID must have \"c-\" as prefix"
        );
        assert_eq!(
            validate_machine_set_id("c", "c-cp", true).unwrap_err(),
            "control plane machine set must have ID \"c-control-planes\""
        );
        assert_eq!(
            validate_machine_set_id("c", "c-control-planes", false).unwrap_err(),
            "worker machine set must not have ID \"c-control-planes\""
        );
        assert_eq!(worker_machine_set_id("c", None), "c-workers");
        assert_eq!(worker_machine_set_id("c", Some("gpu")), "c-gpu");
    }

    #[test]
    fn ids_and_metadata() {
        assert_eq!(
            validate_resource_id("").unwrap_err(),
            "resource ID must not be empty"
        );
        assert!(validate_resource_id(&"x".repeat(1024)).is_ok());
        assert!(validate_resource_id(&"x".repeat(1025)).is_err());
        assert!(validate_resource_id("a\nb").is_err());
        assert!(validate_label_key("").is_err());
        assert!(validate_label_key("a\u{7}").is_err());
        assert!(validate_label_value("").is_ok());
        assert!(validate_label_value(&"v".repeat(16 * 1024)).is_ok());
        assert!(validate_label_value(&"v".repeat(16 * 1024 + 1)).is_err());
        assert!(validate_annotation_value("a\tb").is_err());

        let many: BTreeMap<String, String> =
            (0..257).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(validate_metadata_map("label", &many, None)
            .unwrap_err()
            .starts_with("too many labels"));
        // An update that does not grow the map is not held to the count limit.
        assert!(validate_metadata_map("label", &many, Some(&many)).is_ok());
        let mut bad = BTreeMap::new();
        bad.insert("k".to_string(), "a\u{0}".to_string());
        assert!(validate_metadata_map("annotation", &bad, None).is_err());
        // Unchanged entries are not re-checked on update.
        assert!(validate_metadata_map("annotation", &bad, Some(&bad)).is_ok());
    }

    #[test]
    fn kernel_args_and_extensions() {
        assert!(validate_kernel_args(&["console=ttyS0".into()]).is_ok());
        assert!(validate_kernel_args(&vec!["a".to_string(); 65]).is_err());
        assert!(validate_kernel_args(&["a".repeat(257)]).is_err());
        assert!(validate_kernel_args(&["a\u{1b}".into()]).is_err());
        assert_eq!(
            validate_extension_list(&["a".into(), "b".into(), "a".into()]).unwrap_err(),
            "extension \"a\" (entry 2) is listed more than once"
        );
        assert_eq!(extension_lookup_name("gvisor"), "siderolabs/gvisor");
        assert_eq!(extension_lookup_name("x/y"), "x/y");
        assert!(validate_user_descriptor_key("omni.sidero.dev/x").is_err());
        assert!(validate_user_descriptor_key("team").is_ok());
        assert_eq!(
            template_patch_id(200, 1, "cluster-c", "p"),
            "201-cluster-c-p"
        );
    }
}
