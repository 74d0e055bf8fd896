//! Typed resources and their conversion to and from `cosi.resource.Resource`, plus the builders
//! of every State request this client sends (so their bytes can be checked against the spec).

use std::collections::BTreeMap;

use omni_api::cosi::resource as cosi;
use prost::Message;

use crate::{
    error::{Error, Result},
    resources::ResourceKind,
};

/// The literal version of a resource that is not stored yet (omni-api.md §1.4).
pub const VERSION_UNDEFINED: &str = "undefined";

/// Resource phase (omni-api.md §1.6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// `running`
    #[default]
    Running,
    /// `tearingDown`: on the way to being destroyed once finalizers are gone.
    TearingDown,
}

impl Phase {
    /// The wire text.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Running => "running",
            Phase::TearingDown => "tearingDown",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "running" => Ok(Phase::Running),
            "tearingDown" => Ok(Phase::TearingDown),
            other => Err(Error::Decode(format!("unknown phase {other:?}"))),
        }
    }
}

/// Metadata of a typed resource.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObjectMeta {
    /// Resource ID.
    pub id: String,
    /// Namespace; empty means the kind's default namespace.
    pub namespace: String,
    /// Stored version; `None` for a resource not created yet ("undefined" on the wire).
    pub version: Option<u64>,
    /// Owning controller, `""` for user resources.
    pub owner: String,
    /// Lifecycle phase.
    pub phase: Phase,
    /// Creation time as stored by the server.
    pub created: Option<prost_types::Timestamp>,
    /// Last update time as stored by the server.
    pub updated: Option<prost_types::Timestamp>,
    /// Controllers holding the resource.
    pub finalizers: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
}

/// A typed Omni resource: metadata plus the decoded spec of kind `K`.
#[derive(Clone, Debug, PartialEq)]
pub struct Object<K: ResourceKind> {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Decoded spec.
    pub spec: K::Spec,
}

impl<K: ResourceKind> Object<K> {
    /// A new resource with this ID and spec, in the kind's namespace.
    pub fn new(id: impl Into<String>, spec: K::Spec) -> Self {
        Self {
            metadata: ObjectMeta {
                id: id.into(),
                namespace: K::NAMESPACE.to_string(),
                ..Default::default()
            },
            spec,
        }
    }

    /// Adds a label (builder style).
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.labels.insert(key.into(), value.into());
        self
    }

    /// Adds an annotation (builder style).
    pub fn with_annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.annotations.insert(key.into(), value.into());
        self
    }

    /// Resource ID.
    pub fn id(&self) -> &str {
        &self.metadata.id
    }

    /// True when the resource is being torn down.
    pub fn is_tearing_down(&self) -> bool {
        self.metadata.phase == Phase::TearingDown
    }

    /// The wire form. `namespace` fills in an empty metadata namespace.
    pub fn to_proto(&self, namespace: &str) -> cosi::Resource {
        let md = &self.metadata;
        cosi::Resource {
            metadata: Some(cosi::Metadata {
                namespace: if md.namespace.is_empty() {
                    namespace.to_string()
                } else {
                    md.namespace.clone()
                },
                r#type: K::TYPE.to_string(),
                id: md.id.clone(),
                version: md
                    .version
                    .map_or_else(|| VERSION_UNDEFINED.to_string(), |v| v.to_string()),
                owner: md.owner.clone(),
                phase: md.phase.as_str().to_string(),
                created: md.created,
                updated: md.updated,
                finalizers: md.finalizers.clone(),
                labels: md.labels.clone().into_iter().collect(),
                annotations: md.annotations.clone().into_iter().collect(),
            }),
            spec: Some(cosi::Spec {
                proto_spec: self.spec.encode_to_vec(),
                // The server decodes only proto_spec (omni-api.md §1.4), so YAML is not sent.
                yaml_spec: String::new(),
            }),
        }
    }

    /// Decodes a wire resource. Returns the object and the server's `yaml_spec` text, which
    /// carries uncompressed data when `proto_spec` is compressed.
    pub fn from_proto(resource: cosi::Resource) -> Result<(Self, String)> {
        let md = resource
            .metadata
            .ok_or_else(|| Error::Decode("resource without metadata".into()))?;
        if !md.r#type.is_empty() && md.r#type != K::TYPE {
            return Err(Error::Decode(format!(
                "expected a {} resource, got {}",
                K::TYPE,
                md.r#type
            )));
        }
        let version = match md.version.as_str() {
            VERSION_UNDEFINED | "" => None,
            v => Some(
                v.parse::<u64>()
                    .map_err(|_| Error::Decode(format!("bad version {v:?}")))?,
            ),
        };
        // Tombstones (DESTROYED of a missing resource, BOOTSTRAPPED) may carry an empty phase.
        let phase = if md.phase.is_empty() {
            Phase::Running
        } else {
            Phase::parse(&md.phase)?
        };
        let spec_msg = resource.spec.unwrap_or_default();
        let spec = K::Spec::decode(spec_msg.proto_spec.as_slice())
            .map_err(|e| Error::Decode(format!("{} spec: {e}", K::TYPE)))?;
        Ok((
            Self {
                metadata: ObjectMeta {
                    id: md.id,
                    namespace: md.namespace,
                    version,
                    owner: md.owner,
                    phase,
                    created: md.created,
                    updated: md.updated,
                    finalizers: md.finalizers,
                    labels: md.labels.into_iter().collect(),
                    annotations: md.annotations.into_iter().collect(),
                },
                spec,
            },
            spec_msg.yaml_spec,
        ))
    }
}

/// One `key op values` condition of a label query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelTerm {
    key: String,
    op: cosi::label_term::Operation,
    values: Vec<String>,
    invert: bool,
}

/// A conjunction of label terms. Several queries in one request are OR-ed (omni-api.md §1.5).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelQuery {
    terms: Vec<LabelTerm>,
}

impl LabelQuery {
    /// An empty query (matches everything).
    pub fn new() -> Self {
        Self::default()
    }

    fn term(mut self, key: &str, op: cosi::label_term::Operation, values: Vec<String>) -> Self {
        self.terms.push(LabelTerm {
            key: key.to_string(),
            op,
            values,
            invert: false,
        });
        self
    }

    /// `key == value`.
    pub fn equal(self, key: &str, value: &str) -> Self {
        self.term(
            key,
            cosi::label_term::Operation::Equal,
            vec![value.to_string()],
        )
    }

    /// `key` present.
    pub fn exists(self, key: &str) -> Self {
        self.term(key, cosi::label_term::Operation::Exists, vec![])
    }

    /// `key` absent: sent as EXISTS + invert, as the Go client does (omni-api.md §1.10).
    pub fn not_exists(mut self, key: &str) -> Self {
        self = self.exists(key);
        if let Some(t) = self.terms.last_mut() {
            t.invert = true;
        }
        self
    }

    /// `key` in `values`.
    pub fn in_values(self, key: &str, values: &[&str]) -> Self {
        self.term(
            key,
            cosi::label_term::Operation::In,
            values.iter().map(|v| v.to_string()).collect(),
        )
    }

    /// Negates the last term added.
    pub fn invert_last(mut self) -> Self {
        if let Some(t) = self.terms.last_mut() {
            t.invert = !t.invert;
        }
        self
    }

    pub(crate) fn to_proto(&self) -> cosi::LabelQuery {
        cosi::LabelQuery {
            terms: self
                .terms
                .iter()
                .map(|t| cosi::LabelTerm {
                    key: t.key.clone(),
                    op: t.op as i32,
                    value: t.values.clone(),
                    invert: t.invert,
                })
                .collect(),
        }
    }
}

/// Filters for `list`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListParams {
    /// OR-ed label queries; empty = no label filter.
    pub label_queries: Vec<LabelQuery>,
    /// RE2 regular expression over IDs.
    pub id_regexp: Option<String>,
}

impl ListParams {
    /// Adds a label query (OR-ed with the others).
    pub fn labels(mut self, query: LabelQuery) -> Self {
        self.label_queries.push(query);
        self
    }

    /// Filters IDs by an RE2 regular expression.
    pub fn id_regexp(mut self, re: impl Into<String>) -> Self {
        self.id_regexp = Some(re.into());
        self
    }
}

/// What to watch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchParams {
    /// A single resource (`Some`) or the whole kind (`None`).
    pub id: Option<String>,
    /// Kind watch: first send every matching resource, then BOOTSTRAPPED.
    pub bootstrap: bool,
    /// Kind watch: OR-ed label queries.
    pub label_queries: Vec<LabelQuery>,
    /// Kind watch: RE2 regular expression over IDs.
    pub id_regexp: Option<String>,
}

impl WatchParams {
    /// Watches every resource of the kind, starting with the current ones (bootstrap).
    pub fn kind() -> Self {
        Self {
            bootstrap: true,
            ..Default::default()
        }
    }

    /// Watches one resource; its current state (or a DESTROYED tombstone) comes first.
    pub fn single(id: impl Into<String>) -> Self {
        Self {
            id: Some(id.into()),
            ..Default::default()
        }
    }

    /// Adds a label query (kind watches only).
    pub fn labels(mut self, query: LabelQuery) -> Self {
        self.label_queries.push(query);
        self
    }
}

/// Builders of the State requests, one per RPC (omni-api.md §1.3-§1.4). User clients always send
/// `owner: ""`.
pub(crate) mod requests {
    use super::*;

    pub fn get(ns: &str, ty: &str, id: &str) -> cosi::GetRequest {
        cosi::GetRequest {
            namespace: ns.into(),
            r#type: ty.into(),
            id: id.into(),
            options: Some(cosi::GetOptions {}),
        }
    }

    pub fn list(ns: &str, ty: &str, params: &ListParams) -> cosi::ListRequest {
        cosi::ListRequest {
            namespace: ns.into(),
            r#type: ty.into(),
            options: Some(cosi::ListOptions {
                label_query: params
                    .label_queries
                    .iter()
                    .map(LabelQuery::to_proto)
                    .collect(),
                id_query: params
                    .id_regexp
                    .as_ref()
                    .map(|re| cosi::IdQuery { regexp: re.clone() }),
            }),
        }
    }

    /// Create: version "undefined", phase "running", no owner, no finalizers.
    pub fn create<K: ResourceKind>(ns: &str, obj: &Object<K>) -> cosi::CreateRequest {
        let mut obj = obj.clone();
        obj.metadata.version = None;
        obj.metadata.phase = Phase::Running;
        obj.metadata.owner.clear();
        obj.metadata.finalizers.clear();
        cosi::CreateRequest {
            resource: Some(obj.to_proto(ns)),
            options: Some(cosi::CreateOptions {
                owner: String::new(),
            }),
        }
    }

    /// Update: the whole resource with the version read, and `expected_phase` (the Go default
    /// is "running").
    pub fn update<K: ResourceKind>(
        ns: &str,
        obj: &Object<K>,
        expected_phase: Option<Phase>,
    ) -> cosi::UpdateRequest {
        cosi::UpdateRequest {
            new_resource: Some(obj.to_proto(ns)),
            options: Some(cosi::UpdateOptions {
                owner: String::new(),
                expected_phase: expected_phase.map(|p| p.as_str().to_string()),
            }),
        }
    }

    pub fn destroy(ns: &str, ty: &str, id: &str) -> cosi::DestroyRequest {
        cosi::DestroyRequest {
            namespace: ns.into(),
            r#type: ty.into(),
            id: id.into(),
            options: Some(cosi::DestroyOptions {
                owner: String::new(),
            }),
        }
    }

    pub fn teardown(ns: &str, ty: &str, id: &str) -> cosi::TeardownRequest {
        cosi::TeardownRequest {
            namespace: ns.into(),
            r#type: ty.into(),
            id: id.into(),
            options: Some(cosi::TeardownOptions {
                owner: String::new(),
            }),
        }
    }

    pub fn teardown_and_destroy(ns: &str, ty: &str, id: &str) -> cosi::TeardownAndDestroyRequest {
        cosi::TeardownAndDestroyRequest {
            namespace: ns.into(),
            r#type: ty.into(),
            id: id.into(),
            options: Some(cosi::TeardownAndDestroyOptions {
                owner: String::new(),
            }),
        }
    }

    /// Watch with `api_version = 1` so BOOTSTRAPPED/ERRORED events are delivered.
    pub fn watch(ns: &str, ty: &str, params: &WatchParams) -> cosi::WatchRequest {
        let single = params.id.is_some();
        cosi::WatchRequest {
            namespace: ns.into(),
            r#type: ty.into(),
            id: params.id.clone(),
            options: Some(cosi::WatchOptions {
                // Single-resource watches reject bootstrap and label queries (§1.7).
                bootstrap_contents: params.bootstrap && !single,
                tail_events: 0,
                label_query: if single {
                    vec![]
                } else {
                    params
                        .label_queries
                        .iter()
                        .map(LabelQuery::to_proto)
                        .collect()
                },
                id_query: params
                    .id_regexp
                    .as_ref()
                    .filter(|_| !single)
                    .map(|re| cosi::IdQuery { regexp: re.clone() }),
                aggregated: false,
                start_from_bookmark: None,
                bootstrap_bookmark: false,
            }),
            api_version: 1,
        }
    }
}

#[cfg(test)]
mod golden {
    //! Expected bytes are written by hand from the field tables of omni-api.md §1.3 / §3.4:
    //! tag = (field << 3) | wire type (0 varint, 2 length-delimited), proto3 defaults omitted.

    use super::*;
    use crate::resources::{Cluster, ConfigPatch};
    use omni_api::specs;

    /// Length-delimited field: tag byte (fields < 16), base-128 varint length, payload.
    fn ld(field: u8, payload: &[u8]) -> Vec<u8> {
        assert!(field < 16, "one-byte tags only");
        let mut v = vec![(field << 3) | 2];
        let mut len = payload.len();
        while len >= 0x80 {
            v.push((len as u8 & 0x7f) | 0x80);
            len >>= 7;
        }
        v.push(len as u8);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn length_helper_writes_multi_byte_varints() {
        // 300 = 0b1_0010_1100 -> 0xac 0x02
        assert_eq!(&ld(1, &[0; 300])[..3], &[0x0a, 0xac, 0x02]);
    }

    fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn get_request_bytes() {
        let req = requests::get("default", "Clusters.omni.sidero.dev", "c1");
        let want = cat(&[
            ld(1, b"default"),
            ld(2, b"Clusters.omni.sidero.dev"),
            ld(3, b"c1"),
            // options = empty GetOptions: present, zero length.
            vec![0x22, 0x00],
        ]);
        assert_eq!(req.encode_to_vec(), want);
    }

    #[test]
    fn create_request_bytes() {
        let spec = specs::ClusterSpec {
            kubernetes_version: "1.33.2".into(),
            talos_version: "1.13.5".into(),
            ..Default::default()
        };
        let obj = Object::<Cluster>::new("c1", spec)
            .with_annotation("omni.sidero.dev/managed-by-gitops-tools", "Terraform");
        let req = requests::create("default", &obj);

        // ClusterSpec: 2 kubernetes_version, 3 talos_version.
        let spec_bytes = cat(&[ld(2, b"1.33.2"), ld(3, b"1.13.5")]);
        // annotations map entry: key = 1, value = 2.
        let entry = cat(&[
            ld(1, b"omni.sidero.dev/managed-by-gitops-tools"),
            ld(2, b"Terraform"),
        ]);
        let metadata = cat(&[
            ld(1, b"default"),
            ld(2, b"Clusters.omni.sidero.dev"),
            ld(3, b"c1"),
            ld(4, b"undefined"),
            // 5 owner "" omitted
            ld(6, b"running"),
            ld(11, &entry),
        ]);
        let resource = cat(&[ld(1, &metadata), ld(2, &ld(1, &spec_bytes))]);
        // options = CreateOptions{owner: ""}: present, empty.
        let want = cat(&[ld(1, &resource), vec![0x12, 0x00]]);
        assert_eq!(req.encode_to_vec(), want);
    }

    #[test]
    fn update_request_bytes_carry_version_finalizers_and_expected_phase() {
        let mut obj = Object::<ConfigPatch>::new(
            "400-p",
            specs::ConfigPatchSpec {
                data: "a: b".into(),
                ..Default::default()
            },
        );
        obj.metadata.version = Some(3);
        obj.metadata.finalizers = vec!["ClusterController".into()];
        let req = requests::update("default", &obj, Some(Phase::Running));

        let metadata = cat(&[
            ld(1, b"default"),
            ld(2, b"ConfigPatches.omni.sidero.dev"),
            ld(3, b"400-p"),
            ld(4, b"3"),
            ld(6, b"running"),
            ld(9, b"ClusterController"),
        ]);
        let resource = cat(&[ld(1, &metadata), ld(2, &ld(1, &ld(1, b"a: b")))]);
        // Field 1 is reserved: the resource is field 2, options field 3 with expected_phase 2.
        let want = cat(&[ld(2, &resource), ld(3, &ld(2, b"running"))]);
        assert_eq!(req.encode_to_vec(), want);
    }

    #[test]
    fn watch_request_bytes_single_and_kind() {
        let single = requests::watch(
            "default",
            "ClusterStatuses.omni.sidero.dev",
            &WatchParams::single("c1"),
        );
        let want = cat(&[
            ld(1, b"default"),
            ld(2, b"ClusterStatuses.omni.sidero.dev"),
            ld(3, b"c1"),
            vec![0x22, 0x00], // empty WatchOptions
            vec![0x28, 0x01], // api_version = 1 (field 5, varint)
        ]);
        assert_eq!(single.encode_to_vec(), want);

        let kind = requests::watch(
            "default",
            "MachineSetStatuses.omni.sidero.dev",
            &WatchParams::kind().labels(LabelQuery::new().equal("omni.sidero.dev/cluster", "c1")),
        );
        let term = cat(&[
            ld(1, b"omni.sidero.dev/cluster"),
            vec![0x10, 0x01], // op = EQUAL
            ld(3, b"c1"),
        ]);
        let options = cat(&[
            vec![0x08, 0x01], // bootstrap_contents = true
            ld(3, &ld(1, &term)),
        ]);
        let want = cat(&[
            ld(1, b"default"),
            ld(2, b"MachineSetStatuses.omni.sidero.dev"),
            // no field 3: id absent for a kind watch
            ld(4, &options),
            vec![0x28, 0x01],
        ]);
        assert_eq!(kind.encode_to_vec(), want);
    }

    #[test]
    fn list_request_with_not_exists_and_regexp() {
        let params = ListParams::default()
            .labels(LabelQuery::new().not_exists("omni.sidero.dev/machine"))
            .id_regexp("^400-");
        let req = requests::list("default", "ConfigPatches.omni.sidero.dev", &params);
        // EXISTS is 0 (omitted), invert = field 5 varint 1.
        let term = cat(&[ld(1, b"omni.sidero.dev/machine"), vec![0x28, 0x01]]);
        let options = cat(&[ld(1, &ld(1, &term)), ld(2, &ld(1, b"^400-"))]);
        let want = cat(&[
            ld(1, b"default"),
            ld(2, b"ConfigPatches.omni.sidero.dev"),
            ld(3, &options),
        ]);
        assert_eq!(req.encode_to_vec(), want);
    }

    #[test]
    fn destroy_and_teardown_request_bytes() {
        let base = cat(&[
            ld(1, b"default"),
            ld(2, b"Clusters.omni.sidero.dev"),
            ld(3, b"c1"),
            vec![0x22, 0x00], // options{owner: ""}
        ]);
        let ty = "Clusters.omni.sidero.dev";
        assert_eq!(requests::destroy("default", ty, "c1").encode_to_vec(), base);
        assert_eq!(
            requests::teardown("default", ty, "c1").encode_to_vec(),
            base
        );
        assert_eq!(
            requests::teardown_and_destroy("default", ty, "c1").encode_to_vec(),
            base
        );
    }

    #[test]
    fn decode_rejects_bad_version_and_phase() {
        let mut res = Object::<Cluster>::new("c", Default::default()).to_proto("default");
        res.metadata.as_mut().unwrap().version = "x".into();
        assert!(Object::<Cluster>::from_proto(res.clone()).is_err());
        res.metadata.as_mut().unwrap().version = "7".into();
        res.metadata.as_mut().unwrap().phase = "deleting".into();
        assert!(Object::<Cluster>::from_proto(res.clone()).is_err());
        res.metadata.as_mut().unwrap().phase = "tearingDown".into();
        let (obj, _) = Object::<Cluster>::from_proto(res).unwrap();
        assert_eq!(obj.metadata.version, Some(7));
        assert!(obj.is_tearing_down());
    }
}
