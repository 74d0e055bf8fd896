//! `omni_talos_versions` and `omni_kubernetes_versions` against the emulator's catalogue:
//! filters, ordering, an empty result, and version errors at plan time.

use acceptance_tests::{has_diagnostic, resource_values, Omni, Workspace};
use anyhow::Result;
use serde_json::Value;

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

fn semver(v: &str) -> (u64, u64, u64, bool) {
    let (core, pre) = v.split_once('-').map_or((v, false), |(c, _)| (c, true));
    let n: Vec<u64> = core.split('.').map(|p| p.parse().unwrap()).collect();
    // Pre-releases sort before the release.
    (n[0], n[1], n[2], !pre)
}

#[test]
fn catalogue_filters_and_empty_result() -> Result<()> {
    let omni = Omni::start(1)?;
    let ws = Workspace::new(&omni)?;
    ws.write_config(
        r#"
data "omni_talos_versions" "all" {}
data "omni_talos_versions" "stable_recent" {
  stable_only = true
  min_version = "v1.12"
}
data "omni_talos_versions" "none" {
  min_version = "99.0"
}
data "omni_talos_versions" "for_k8s" {
  kubernetes_version = data.omni_talos_versions.stable_recent.talos_versions[0].compatible_kubernetes_versions[0]
}
data "omni_kubernetes_versions" "all" {}
data "omni_kubernetes_versions" "for_latest" {
  talos_version = data.omni_talos_versions.all.latest
}
data "omni_kubernetes_versions" "none" {
  min_version = "2.0"
}
"#,
    )?;
    ws.apply()?;
    let state = ws.state()?;

    let all = resource_values(&state, "data.omni_talos_versions.all")?;
    let versions = strings(&all["versions"]);
    assert!(versions.len() > 10, "{versions:?}");
    let mut sorted = versions.clone();
    sorted.sort_by_key(|v| semver(v));
    assert_eq!(versions, sorted, "oldest first, in semver order");
    assert!(versions.iter().all(|v| !v.starts_with('v')));
    for entry in all["talos_versions"].as_array().unwrap() {
        assert_eq!(entry["deprecated"], false, "deprecated left out by default");
        assert_eq!(entry["unsupported"], false);
        assert!(!entry["compatible_kubernetes_versions"]
            .as_array()
            .unwrap()
            .is_empty());
    }
    let latest = all["latest"].as_str().unwrap();
    assert!(!latest.contains('-'), "latest is stable: {latest}");
    let newest_stable = versions.iter().rev().find(|v| !v.contains('-')).unwrap();
    assert_eq!(latest, newest_stable);

    let recent = resource_values(&state, "data.omni_talos_versions.stable_recent")?;
    let recent = strings(&recent["versions"]);
    assert!(!recent.is_empty());
    assert!(recent
        .iter()
        .all(|v| !v.contains('-') && semver(v) >= (1, 12, 0, true)));
    assert_eq!(
        recent,
        versions
            .iter()
            .filter(|v| !v.contains('-') && semver(v) >= (1, 12, 0, true))
            .cloned()
            .collect::<Vec<_>>()
    );

    let none = resource_values(&state, "data.omni_talos_versions.none")?;
    assert_eq!(none["versions"], serde_json::json!([]));
    assert_eq!(none["latest"], Value::Null);

    let for_k8s = resource_values(&state, "data.omni_talos_versions.for_k8s")?;
    let k = for_k8s["kubernetes_version"].as_str().unwrap().to_string();
    for entry in for_k8s["talos_versions"].as_array().unwrap() {
        assert!(strings(&entry["compatible_kubernetes_versions"]).contains(&k));
    }

    let k8s_all = resource_values(&state, "data.omni_kubernetes_versions.all")?;
    let k8s_all = strings(&k8s_all["versions"]);
    let mut sorted = k8s_all.clone();
    sorted.sort_by_key(|v| semver(v));
    assert_eq!(k8s_all, sorted);

    let for_latest = resource_values(&state, "data.omni_kubernetes_versions.for_latest")?;
    let latest_entry = all["talos_versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["version"] == latest)
        .unwrap();
    assert_eq!(
        strings(&for_latest["versions"]),
        strings(&latest_entry["compatible_kubernetes_versions"])
    );
    assert_eq!(
        for_latest["latest"].as_str(),
        strings(&for_latest["versions"]).last().map(String::as_str)
    );

    let none = resource_values(&state, "data.omni_kubernetes_versions.none")?;
    assert_eq!(none["versions"], serde_json::json!([]));
    assert!(!ws.plan_has_changes()?);
    Ok(())
}

#[test]
fn bad_versions_fail_at_plan_time() -> Result<()> {
    let omni = Omni::start(1)?;
    let ws = Workspace::new(&omni)?;
    let cases = [
        (
            "omni_talos_versions",
            "min_version",
            "latest",
            "Invalid version",
        ),
        (
            "omni_talos_versions",
            "kubernetes_version",
            "one.two",
            "Invalid version",
        ),
        (
            "omni_kubernetes_versions",
            "min_version",
            "x",
            "Invalid version",
        ),
        (
            "omni_kubernetes_versions",
            "talos_version",
            "1.0.0",
            "Unknown Talos version",
        ),
    ];
    for (ty, attr, value, summary) in cases {
        ws.write_config(&format!(
            "data \"{ty}\" \"bad\" {{\n  {attr} = \"{value}\"\n}}\n"
        ))?;
        let diags = ws.plan_expect_error()?;
        assert!(
            has_diagnostic(&diags, summary, Some(attr)),
            "{ty}.{attr}: {diags:#?}"
        );
    }
    Ok(())
}
