//! User labels and annotations versus Omni's own (`omni.sidero.dev/*`), which are never the
//! user's to manage and never cause a diff (omni-api.md §3.2).

use std::collections::BTreeMap;

/// Omni's reserved prefix for labels and annotations.
pub const OMNI_PREFIX: &str = "omni.sidero.dev/";

/// Whether a label or annotation key belongs to Omni rather than the user.
pub fn is_omni_owned(key: &str) -> bool {
    key.starts_with(OMNI_PREFIX)
}

/// The user's entries of a server-side map.
pub fn user_entries(all: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    all.iter()
        .filter(|(k, _)| !is_omni_owned(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Replaces the user's entries of `server` with `desired`, keeping every Omni-owned entry.
pub fn merge_user_entries(
    server: &mut BTreeMap<String, String>,
    desired: &BTreeMap<String, String>,
) {
    server.retain(|k, _| is_omni_owned(k));
    for (k, v) in desired {
        server.insert(k.clone(), v.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omni_entries_survive_and_user_entries_are_replaced() {
        let mut server = BTreeMap::from([
            ("omni.sidero.dev/cluster".to_string(), "a".to_string()),
            ("team".to_string(), "old".to_string()),
            ("gone".to_string(), "x".to_string()),
        ]);
        let desired = BTreeMap::from([("team".to_string(), "new".to_string())]);
        merge_user_entries(&mut server, &desired);
        assert_eq!(server.len(), 2);
        assert_eq!(server["team"], "new");
        assert_eq!(server["omni.sidero.dev/cluster"], "a");
        assert_eq!(user_entries(&server), desired);
    }
}
