//! Omni naming rules (omni-api.md §4).

/// Cluster name rule.
pub fn validate_cluster_name(name: &str) -> Result<(), String> {
    let _ = name;
    Err("not implemented yet".into())
}

/// Machine set ID rule for a cluster and role.
pub fn validate_machine_set_id(cluster: &str, id: &str, control_plane: bool) -> Result<(), String> {
    let _ = (cluster, id, control_plane);
    Err("not implemented yet".into())
}

/// Resource ID rule (all resources).
pub fn validate_resource_id(id: &str) -> Result<(), String> {
    let _ = id;
    Err("not implemented yet".into())
}

/// Label key rule.
pub fn validate_label_key(key: &str) -> Result<(), String> {
    let _ = key;
    Err("not implemented yet".into())
}

/// Label value rule.
pub fn validate_label_value(value: &str) -> Result<(), String> {
    let _ = value;
    Err("not implemented yet".into())
}
