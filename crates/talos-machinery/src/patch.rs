//! Talos config patch checks as Omni applies them before storing a `ConfigPatch`
//! (image-factory-and-talos.md §6.2–§6.3, omni-api.md §4 "ConfigPatch").
//!
//! Two stages, like Omni: (1) the Talos config loader must accept the text (multi-document
//! YAML, each document a mapping, known document shape, no unknown v1alpha1 keys at the levels
//! we know, no duplicates); a loader failure is reported alone. (2) every document is checked
//! against Omni's forbidden fields, documents and list elements; all violations are collected
//! and printed in hashicorp go-multierror style.
//!
//! Limits (documented, not guessed): the loader's unknown-key check covers the top level of
//! the v1alpha1 document and the direct children of `machine` and `cluster` (key lists from
//! §6.4 for the Talos v1.14 structs Omni bundles); deeper keys and typed documents' fields are
//! not schema-checked, and typed documents with `apiVersion: v1alpha1` are accepted whatever
//! their `kind` (the kind registry is not part of the spec).

use std::fmt;

use crate::yaml::{self, Flavor, Node, NodeKind, Value};

/// One problem found in a patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchProblem {
    /// YAML path of the offending field when known (e.g. `machine.token`), or the document
    /// kind for a forbidden document.
    pub path: Option<String>,
    /// Omni's message for this problem.
    pub message: String,
}

/// A rejected patch. `Display` follows Omni: a loader error is printed as is; rule violations
/// are printed in go-multierror style (`N errors occurred:\n\t* ...\n\n`). The emulator adds
/// the `failed to validate: ` prefix itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchError {
    /// True when the Talos config loader refused the text (printed without multierror framing).
    pub load_error: bool,
    /// The problems, in Omni's order.
    pub problems: Vec<PatchProblem>,
}

impl PatchError {
    fn load(message: impl Into<String>) -> Self {
        PatchError {
            load_error: true,
            problems: vec![PatchProblem {
                path: None,
                message: message.into(),
            }],
        }
    }
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.load_error {
            if let Some(p) = self.problems.first() {
                return f.write_str(&p.message);
            }
        }
        // hashicorp/go-multierror ListFormatFunc.
        let n = self.problems.len();
        if n == 1 {
            writeln!(f, "1 error occurred:")?;
        } else {
            writeln!(f, "{n} errors occurred:")?;
        }
        for p in &self.problems {
            writeln!(f, "\t* {}", p.message)?;
        }
        writeln!(f)
    }
}

impl std::error::Error for PatchError {}

/// v1alpha1 fields Omni refuses, in the order it reports them (§6.3).
const FORBIDDEN_V1ALPHA1_FIELDS: &[&str] = &[
    "cluster.clusterName",
    "cluster.id",
    "cluster.controlPlane.endpoint",
    "cluster.token",
    "cluster.secret",
    "cluster.aescbcEncryptionSecret",
    "cluster.secretboxEncryptionSecret",
    "cluster.ca",
    "cluster.acceptedCAs",
    "cluster.serviceAccount",
    "machine.token",
    "machine.ca",
    "machine.type",
    "machine.install.disk",
    "machine.install.extensions",
    "machine.acceptedCAs",
];

/// Whole documents Omni refuses (§6.3).
const FORBIDDEN_KINDS: &[&str] = &[
    "UnattendedInstallConfig",
    "DiscoveryIdentityConfig",
    "KubeClusterConfig",
    "KubeEtcdEncryptionConfig",
    "KubeAPIServerCAConfig",
    "KubeAggregatorCAConfig",
];

/// Keys of the v1alpha1 document, `machine` and `cluster` that the Talos v1.14 decoder knows
/// (§6.4, including the undocumented but still decoded ones).
const V1ALPHA1_TOP: &[&str] = &["version", "debug", "persist", "machine", "cluster"];
const V1ALPHA1_MACHINE: &[&str] = &[
    "type",
    "token",
    "ca",
    "acceptedCAs",
    "certSANs",
    "controlPlane",
    "kubelet",
    "pods",
    "network",
    "disks",
    "install",
    "files",
    "env",
    "time",
    "sysctls",
    "sysfs",
    "registries",
    "systemDiskEncryption",
    "features",
    "udev",
    "logging",
    "kernel",
    "seccompProfiles",
    "baseRuntimeSpecOverrides",
    "nodeLabels",
    "nodeAnnotations",
    "nodeTaints",
];
const V1ALPHA1_CLUSTER: &[&str] = &[
    "id",
    "secret",
    "controlPlane",
    "clusterName",
    "network",
    "token",
    "aescbcEncryptionSecret",
    "secretboxEncryptionSecret",
    "ca",
    "acceptedCAs",
    "aggregatorCA",
    "serviceAccount",
    "apiServer",
    "controllerManager",
    "proxy",
    "scheduler",
    "discovery",
    "etcd",
    "coreDNS",
    "externalCloudProvider",
    "extraManifests",
    "extraManifestHeaders",
    "inlineManifests",
    "adminKubeconfig",
    "allowSchedulingOnMasters",
    "allowSchedulingOnControlPlanes",
];

/// Talos removes `$patch: delete` markers before decoding (§6.4), so they never count.
const PATCH_MARKER: &str = "$patch";

/// A loaded document: its root node and identity.
struct Doc<'a> {
    node: &'a Node,
    /// `None` for the legacy v1alpha1 document.
    kind: Option<String>,
    api_version: String,
    name: String,
}

impl Doc<'_> {
    fn describe(&self) -> String {
        match &self.kind {
            None => "/v1alpha1/".to_string(),
            Some(k) => format!("{}/{}/{}", self.api_version, k, self.name),
        }
    }
}

fn lookup<'a>(n: &'a Node, key: &str) -> Option<&'a Node> {
    n.map_entries()
        .into_iter()
        .find(|(k, _)| k.scalar() == Some(key))
        .map(|(_, v)| v)
}

fn scalar_of(n: &Node, key: &str) -> Option<String> {
    lookup(n, key).and_then(|v| v.scalar().map(str::to_string))
}

/// Stage 1: the Talos config loader (§6.2).
fn load(text: &str) -> Result<(Vec<Node>, Vec<usize>), PatchError> {
    let docs = yaml::parse_documents(text, None).map_err(|e| PatchError::load(e.0))?;
    let mut kept = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        if d.is_null() {
            continue;
        }
        if !matches!(d.kind, NodeKind::Map(_)) {
            return Err(PatchError::load(format!(
                "expected a YAML document at line {}",
                d.line
            )));
        }
        kept.push(i);
    }
    if kept.is_empty() {
        return Err(PatchError::load("config not found"));
    }
    Ok((docs, kept))
}

fn classify(n: &Node) -> Result<Doc<'_>, PatchError> {
    let kind = scalar_of(n, "kind");
    let api = scalar_of(n, "apiVersion");
    match (kind, api) {
        (None, None) => {
            let legacy = ["machine", "cluster", "debug", "persist"]
                .iter()
                .any(|k| lookup(n, k).is_some());
            if !legacy {
                return Err(PatchError::load("missing kind"));
            }
            Ok(Doc {
                node: n,
                kind: None,
                api_version: String::new(),
                name: String::new(),
            })
        }
        (Some(_), None) => Err(PatchError::load("missing apiVersion")),
        (None, Some(_)) => Err(PatchError::load("missing kind")),
        (Some(kind), Some(api)) => {
            let name = scalar_of(n, "name").unwrap_or_default();
            if api != "v1alpha1" {
                return Err(PatchError::load(format!(
                    "error decoding document {api}/{kind}/{name} (line {}): \"{kind}\" \"{api}\": not registered",
                    n.line
                )));
            }
            Ok(Doc {
                node: n,
                kind: Some(kind),
                api_version: api,
                name,
            })
        }
    }
}

/// Collects keys unknown to the decoder as a nested generic map.
fn unknown_keys(doc: &Doc<'_>) -> Result<Vec<(Value, Value)>, PatchError> {
    let mut out = Vec::new();
    if doc.kind.is_some() {
        return Ok(out);
    }
    let to_value = |n: &Node| yaml::to_value(n).map_err(|e| PatchError::load(e.0));
    for (k, v) in doc.node.map_entries() {
        let key = k.scalar().unwrap_or_default();
        if key == PATCH_MARKER {
            continue;
        }
        if !V1ALPHA1_TOP.contains(&key) {
            out.push((Value::String(key.to_string()), to_value(v)?));
            continue;
        }
        let known: &[&str] = match key {
            "machine" => V1ALPHA1_MACHINE,
            "cluster" => V1ALPHA1_CLUSTER,
            _ => continue,
        };
        let mut nested = Vec::new();
        for (ck, cv) in v.map_entries() {
            let ckey = ck.scalar().unwrap_or_default();
            if ckey != PATCH_MARKER && !known.contains(&ckey) {
                nested.push((Value::String(ckey.to_string()), to_value(cv)?));
            }
        }
        if !nested.is_empty() {
            out.push((Value::String(key.to_string()), Value::Map(nested)));
        }
    }
    Ok(out)
}

/// go-yaml's type check for the top-level v1alpha1 sections: `machine` and `cluster` are
/// structs, `debug` and `persist` booleans, `version` a string (null is always fine).
fn v1alpha1_shape_error(doc: &Doc<'_>) -> Option<String> {
    if doc.kind.is_some() {
        return None;
    }
    for (k, v) in doc.node.map_entries() {
        if v.is_null() {
            continue;
        }
        let go_type = match k.scalar().unwrap_or_default() {
            "machine" => "v1alpha1.MachineConfig",
            "cluster" => "v1alpha1.ClusterConfig",
            "debug" | "persist" => "bool",
            "version" => "string",
            _ => continue,
        };
        let ok = match (go_type, &v.kind) {
            ("bool", NodeKind::Scalar { value, .. }) => {
                v.tag == "!!bool"
                    || (v.tag == "!!str"
                        && matches!(
                            value.as_str(),
                            "y" | "Y"
                                | "yes"
                                | "Yes"
                                | "YES"
                                | "on"
                                | "On"
                                | "ON"
                                | "n"
                                | "N"
                                | "no"
                                | "No"
                                | "NO"
                                | "off"
                                | "Off"
                                | "OFF"
                        ))
            }
            ("string", NodeKind::Scalar { .. }) => true,
            ("v1alpha1.MachineConfig" | "v1alpha1.ClusterConfig", NodeKind::Map(_)) => true,
            _ => false,
        };
        if !ok {
            let shown = match &v.kind {
                NodeKind::Scalar { value, .. } if value.len() > 10 => {
                    format!(" `{}...`", String::from_utf8_lossy(&value.as_bytes()[..7]))
                }
                NodeKind::Scalar { value, .. } => format!(" `{value}`"),
                _ => String::new(),
            };
            return Some(format!(
                "line {}: cannot unmarshal {}{shown} into {go_type}",
                v.line, v.tag
            ));
        }
    }
    None
}

fn duplicate_keys(n: &Node) -> Option<String> {
    if let Some(e) = yaml::duplicate_key_errors(n).into_iter().next() {
        return Some(e);
    }
    match &n.kind {
        NodeKind::Scalar { .. } => None,
        NodeKind::Seq(items) => items.iter().find_map(duplicate_keys),
        NodeKind::Map(pairs) => pairs.iter().find_map(|(_, v)| duplicate_keys(v)),
    }
}

fn loaded_documents<'a>(nodes: &'a [Node], kept: &[usize]) -> Result<Vec<Doc<'a>>, PatchError> {
    let mut docs: Vec<Doc<'a>> = Vec::new();
    for &i in kept {
        let n = &nodes[i];
        let doc = classify(n)?;
        if let Some(e) = duplicate_keys(n) {
            return Err(PatchError::load(format!(
                "error decoding document {} (line {}): yaml: unmarshal errors:\n  {e}",
                doc.describe(),
                n.line
            )));
        }
        if let Some(e) = v1alpha1_shape_error(&doc) {
            return Err(PatchError::load(format!(
                "error decoding document {} (line {}): yaml: unmarshal errors:\n  {e}",
                doc.describe(),
                n.line
            )));
        }
        let unknown = unknown_keys(&doc)?;
        if !unknown.is_empty() {
            let text = yaml::emit(&yaml::value_out(&Value::Map(unknown), Flavor::V4Rc6));
            return Err(PatchError::load(format!(
                "error decoding document {} (line {}): unknown keys found during decoding:\n{text}",
                doc.describe(),
                n.line
            )));
        }
        if doc.kind.is_none() && docs.iter().any(|d| d.kind.is_none()) {
            return Err(PatchError::load("duplicate v1alpha1.Config"));
        }
        if doc.kind.is_some()
            && docs.iter().any(|d| {
                d.kind == doc.kind && d.api_version == doc.api_version && d.name == doc.name
            })
        {
            return Err(PatchError::load(format!(
                "duplicate document {} is not allowed (line {})",
                doc.describe(),
                n.line
            )));
        }
        docs.push(doc);
    }
    Ok(docs)
}

fn node_at<'a>(root: &'a Node, path: &str) -> Option<&'a Node> {
    let mut cur = root;
    for part in path.split('.') {
        cur = lookup(cur, part)?;
    }
    Some(cur)
}

fn forbid_field(doc: &Doc<'_>, path: &str, problems: &mut Vec<PatchProblem>) {
    // Presence is enough, even `{}` or `null` (§6.3).
    if node_at(doc.node, path).is_some() {
        problems.push(PatchProblem {
            path: Some(path.to_string()),
            message: format!("overriding \"{path}\" is not allowed in the config patch"),
        });
    }
}

fn forbid_element(doc: &Doc<'_>, path: &str, element: &str, problems: &mut Vec<PatchProblem>) {
    let Some(list) = node_at(doc.node, path) else {
        return;
    };
    if let NodeKind::Seq(items) = &list.kind {
        if items.iter().any(|i| i.scalar() == Some(element)) {
            problems.push(PatchProblem {
                path: Some(path.to_string()),
                message: format!("element \"{element}\" is not allowed in field \"{path}\""),
            });
        }
    }
}

/// Validates a config patch the way Omni does before storing it (§6.2–§6.3).
pub fn validate_config_patch(yaml: &str) -> Result<(), PatchError> {
    let (nodes, kept) = load(yaml)?;
    let docs = loaded_documents(&nodes, &kept)?;
    let mut problems = Vec::new();
    for doc in &docs {
        match doc.kind.as_deref() {
            None => {
                for path in FORBIDDEN_V1ALPHA1_FIELDS {
                    forbid_field(doc, path, &mut problems);
                }
                forbid_element(
                    doc,
                    "machine.features.kubernetesTalosAPIAccess.allowedRoles",
                    "os:admin",
                    &mut problems,
                );
            }
            Some(kind) if FORBIDDEN_KINDS.contains(&kind) => problems.push(PatchProblem {
                path: Some(kind.to_string()),
                message: format!("the \"{kind}\" document is not allowed in the config patch"),
            }),
            Some("KubeServiceAccountConfig") => {
                forbid_field(doc, "issuer.privateKey", &mut problems)
            }
            Some("KubeTalosAPIAccessConfig") => {
                forbid_element(doc, "allowedRoles", "os:admin", &mut problems)
            }
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(PatchError {
            load_error: false,
            problems,
        })
    }
}

/// Canonical text of a multi-document YAML for diff suppression: each non-empty document is
/// decoded generically and re-emitted with sorted keys, so key order, comments, quoting and
/// indentation do not matter. Documents keep their order (it is meaningful to Talos).
pub fn normalize(yaml: &str) -> Result<String, PatchError> {
    let docs = yaml::parse_documents(yaml, None).map_err(|e| PatchError::load(e.0))?;
    let mut e = yaml::Emitter::new();
    for d in docs.iter().filter(|d| !d.is_null()) {
        let v = yaml::to_value(d).map_err(|e| PatchError::load(e.0))?;
        e.document(&yaml::value_out(&v, Flavor::V4Rc6));
    }
    Ok(e.finish())
}

/// True when both multi-document YAML texts mean the same (key order, comments, whitespace and
/// quoting style ignored). Texts that do not parse are compared verbatim.
pub fn semantically_equal(a: &str, b: &str) -> bool {
    match (normalize(a), normalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(patch: &str) -> String {
        validate_config_patch(patch).unwrap_err().to_string()
    }

    #[test]
    fn omni_vectors() {
        // image-factory-and-talos.md §6.3, Omni's config_patch_test.go table.
        assert!(validate_config_patch("machine:\n  network:\n    hostname: abcd").is_ok());
        assert_eq!(
            err("machine:\n  token: aaa"),
            "1 error occurred:\n\t* overriding \"machine.token\" is not allowed in the config patch\n\n"
        );
        assert_eq!(
            err("machine:\n  acceptedCAs: [{crt: a}]\n  token: bab\n  ca: {crt: x}\ncluster:\n  acceptedCAs: [{crt: b}]\n"),
            "4 errors occurred:\n\
             \t* overriding \"cluster.acceptedCAs\" is not allowed in the config patch\n\
             \t* overriding \"machine.token\" is not allowed in the config patch\n\
             \t* overriding \"machine.ca\" is not allowed in the config patch\n\
             \t* overriding \"machine.acceptedCAs\" is not allowed in the config patch\n\n"
        );
        assert!(
            err("machine:\n  install:\n    disk: /dev/sdb").contains("\"machine.install.disk\"")
        );
        assert_eq!(
            err("machine:\n  ca:\n    crt: x\ncluster:\n  name: default\n"),
            "error decoding document /v1alpha1/ (line 1): unknown keys found during decoding:\ncluster:\n    name: default\n"
        );
        assert!(err(
            "machine:\n  features:\n    kubernetesTalosAPIAccess:\n      allowedRoles: [os:reader, os:admin, os:operator]\n"
        )
        .contains("element \"os:admin\" is not allowed in field \"machine.features.kubernetesTalosAPIAccess.allowedRoles\""));
        assert!(err("apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: x\n---\nmachine:\n  token: aaa\n")
            .contains("\"machine.token\""));
        assert!(validate_config_patch(
            "machine:\n  network: {}\n---\napiVersion: v1alpha1\nkind: KubeletConfig\nextraArgs:\n  a: b\n"
        )
        .is_ok());
        assert!(err(
            "apiVersion: v1alpha1\nkind: KubeTalosAPIAccessConfig\nallowedRoles: [os:admin]\n"
        )
        .contains("element \"os:admin\" is not allowed in field \"allowedRoles\""));
        assert!(
            err("cluster:\n  ca: {crt: a, key: b}\n  serviceAccount: {key: c}\n")
                .starts_with("2 errors occurred:\n\t* overriding \"cluster.ca\"")
        );
        assert!(err("cluster:\n  serviceAccount: {}\n").contains("\"cluster.serviceAccount\""));
        assert!(err(
            "apiVersion: v1alpha1\nkind: KubeServiceAccountConfig\nissuer:\n  privateKey: x\n"
        )
        .contains("overriding \"issuer.privateKey\""));
        assert!(validate_config_patch(
            "apiVersion: v1alpha1\nkind: KubeServiceAccountConfig\naccepted:\n  issuers: [a]\n"
        )
        .is_ok());
        for kind in FORBIDDEN_KINDS {
            assert_eq!(
                err(&format!("apiVersion: v1alpha1\nkind: {kind}\nfoo: bar\n")),
                format!("1 error occurred:\n\t* the \"{kind}\" document is not allowed in the config patch\n\n")
            );
        }
    }

    #[test]
    fn every_forbidden_field_is_reported_even_when_null() {
        for path in FORBIDDEN_V1ALPHA1_FIELDS {
            let mut text = String::new();
            for (depth, part) in path.split('.').enumerate() {
                text.push_str(&"  ".repeat(depth));
                text.push_str(part);
                text.push_str(":\n");
            }
            let e = validate_config_patch(&text).unwrap_err();
            assert!(!e.load_error, "{path}: {e}");
            assert_eq!(e.problems.len(), 1, "{path}");
            assert_eq!(e.problems[0].path.as_deref(), Some(*path));
        }
    }

    #[test]
    fn loader_rules() {
        assert_eq!(err(""), "config not found");
        assert_eq!(err("# nothing\n---\n"), "config not found");
        assert_eq!(
            err("- op: add\n  path: /x\n"),
            "expected a YAML document at line 1"
        );
        assert_eq!(err("foo: bar\n"), "missing kind");
        assert_eq!(err("kind: X\n"), "missing apiVersion");
        assert_eq!(
            err("machine: {}\n---\nmachine: {}\n"),
            "duplicate v1alpha1.Config"
        );
        assert!(err("apiVersion: v1\nkind: X\n").ends_with("\"X\" \"v1\": not registered"));
        assert!(err("apiVersion: v1alpha1\nkind: HostnameConfig\n---\napiVersion: v1alpha1\nkind: HostnameConfig\n")
            .starts_with("duplicate document v1alpha1/HostnameConfig/ is not allowed"));
        assert!(err("machine: {a: [\n").starts_with("yaml: line"));
        assert!(err("machine:\n  token: a\n  token: b\n").contains("already defined at line 2"));
        assert_eq!(
            err("machine: 5\n"),
            "error decoding document /v1alpha1/ (line 1): yaml: unmarshal errors:\n  line 1: cannot unmarshal !!int `5` into v1alpha1.MachineConfig"
        );
        assert!(err("debug: maybe\n").contains("cannot unmarshal !!str `maybe` into bool"));
        assert!(validate_config_patch("debug: yes\nmachine: null\n").is_ok());
        // `$patch: delete` markers are removed by Talos before decoding.
        assert!(validate_config_patch("machine:\n  network:\n    $patch: delete\n").is_ok());
    }

    #[test]
    fn normalisation() {
        let a = "# comment\nmachine:\n  network: {hostname: a}\n  kubelet:\n    image: x\n---\napiVersion: v1alpha1\nkind: HostnameConfig\n";
        let b = "machine:\n    kubelet: {image: \"x\"}\n    network:\n        hostname: 'a'\n---\nkind: HostnameConfig\napiVersion: v1alpha1\n";
        assert!(semantically_equal(a, b));
        assert!(!semantically_equal(a, "machine: {}\n"));
        assert_eq!(
            normalize("b: 1\na: [x, 'y']\n").unwrap(),
            "a:\n    - x\n    - 'y'\nb: 1\n"
        );
        // Document order matters.
        assert!(!semantically_equal(
            "a: 1\n---\nb: 2\n",
            "b: 2\n---\na: 1\n"
        ));
    }
}
