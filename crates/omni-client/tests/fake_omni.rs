//! The client against a small in-process gRPC server implementing `cosi.resource.State` and
//! `omni.resources.ResourceService`: retries, conflict retry, teardown fallbacks, compressed
//! patch fallback, watch reconnect, and signed calls end to end.

use std::{
    collections::BTreeMap,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::{Stream, StreamExt};
use omni_api::{
    cosi::resource::{
        self as cosi,
        state_server::{State, StateServer},
        EventType,
    },
    omni::resources::{
        self as res,
        resource_service_server::{ResourceService, ResourceServiceServer},
    },
    specs,
};
use omni_client::{
    resources::{annotations, Cluster, ConfigPatch},
    Api, Client, ClientBuilder, Error, LabelQuery, ListParams, Object, RetryPolicy,
    ServiceAccountKey, WatchEvent, WatchParams,
};
use prost::Message;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{codec::CompressionEncoding, Request, Response, Status};

type Key = (String, String, String);
type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Behaviour knobs and the call log of the fake server.
#[derive(Default)]
struct Knobs {
    get_unavailable: u32,
    /// IDs whose Get answers NotFound although they are stored: Omni's read cache lagging
    /// behind a write (omni-api.md §1.9). Watch still sees them.
    get_lags_for: Vec<String>,
    create_lands_then_unavailable: u32,
    concurrent_writes_on_update: u32,
    teardown_unimplemented: bool,
    teardown_and_destroy_unimplemented: bool,
    /// Drop finalizers this long after a resource enters tearingDown (simulated controller).
    release_finalizers_after: Option<Duration>,
    /// Scripted watch: per connection, the events to send before failing with UNAVAILABLE
    /// (`None` as the last connection = keep the stream open).
    watch_script: Vec<Vec<cosi::Event>>,
    calls: Vec<String>,
    watch_requests: Vec<cosi::WatchRequest>,
    signatures: Vec<(String, bool)>,
    runtime_headers: Vec<Option<String>>,
    /// The `grpc-encoding` header of every call, in order.
    encodings: Vec<Option<String>>,
    resource_json: BTreeMap<Key, String>,
}

#[derive(Clone)]
struct Fake {
    store: Arc<Mutex<BTreeMap<Key, cosi::Resource>>>,
    knobs: Arc<Mutex<Knobs>>,
    events: broadcast::Sender<cosi::Event>,
    verify_key: Option<pgp::composed::SignedPublicKey>,
}

fn key_of(md: &cosi::Metadata) -> Key {
    (md.namespace.clone(), md.r#type.clone(), md.id.clone())
}

fn version(md: &cosi::Metadata) -> u64 {
    md.version.parse().unwrap_or(0)
}

impl Fake {
    fn new(verify_key: Option<pgp::composed::SignedPublicKey>) -> Self {
        Self {
            store: Default::default(),
            knobs: Default::default(),
            events: broadcast::channel(64).0,
            verify_key,
        }
    }

    fn log<T>(&self, method: &str, req: &Request<T>) {
        let mut k = self.knobs.lock().unwrap();
        k.calls.push(method.to_string());
        k.encodings.push(
            req.metadata()
                .get("grpc-encoding")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        );
        if let Some(pk) = &self.verify_key {
            let ok = verify_signature(pk, req.metadata(), method);
            k.signatures.push((method.to_string(), ok));
        }
    }

    fn calls(&self, method: &str) -> usize {
        self.knobs
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| *c == method)
            .count()
    }

    fn put(&self, res: cosi::Resource) {
        let md = res.metadata.clone().unwrap();
        self.store.lock().unwrap().insert(key_of(&md), res);
    }

    fn stored(&self, ns: &str, ty: &str, id: &str) -> Option<cosi::Resource> {
        self.store
            .lock()
            .unwrap()
            .get(&(ns.into(), ty.into(), id.into()))
            .cloned()
    }

    fn emit(&self, event_type: EventType, resource: cosi::Resource) {
        let _ = self.events.send(cosi::Event {
            resource: Some(resource),
            event_type: event_type as i32,
            ..Default::default()
        });
    }

    /// The simulated controller: once a resource is tearing down, drop its finalizers.
    fn maybe_release(&self, res: &cosi::Resource) {
        let md = res.metadata.as_ref().unwrap();
        let delay = self.knobs.lock().unwrap().release_finalizers_after;
        if let (Some(delay), "tearingDown", false) =
            (delay, md.phase.as_str(), md.finalizers.is_empty())
        {
            let me = self.clone();
            let key = key_of(md);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let updated = {
                    let mut store = me.store.lock().unwrap();
                    let Some(r) = store.get_mut(&key) else { return };
                    let md = r.metadata.as_mut().unwrap();
                    md.finalizers.clear();
                    md.version = (version(md) + 1).to_string();
                    r.clone()
                };
                me.emit(EventType::Updated, updated);
            });
        }
    }
}

/// Checks `x-sidero-signature` the way Omni does (omni-api.md §2.3 steps 1, 4, 5), with rPGP.
fn verify_signature(
    pk: &pgp::composed::SignedPublicKey,
    md: &tonic::metadata::MetadataMap,
    method: &str,
) -> bool {
    use base64::{engine::general_purpose::STANDARD, Engine as _};
    use pgp::composed::{Deserializable, DetachedSignature};
    let (Some(sig), Some(payload), Some(ts)) = (
        md.get("x-sidero-signature").and_then(|v| v.to_str().ok()),
        md.get("x-sidero-payload").and_then(|v| v.to_str().ok()),
        md.get("x-sidero-timestamp").and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    let parts: Vec<&str> = sig.split(' ').collect();
    if parts.len() != 4 || parts[0] != "siderov1" {
        return false;
    }
    let json: serde_json::Value = match serde_json::from_str(payload) {
        Ok(v) => v,
        Err(_) => return false,
    };
    let full = format!("/{method}");
    if json["method"] != full.as_str() || json["headers"]["x-sidero-timestamp"][0] != ts {
        return false;
    }
    let runtime = md.get("runtime").and_then(|v| v.to_str().ok());
    match (runtime, &json["headers"]["runtime"]) {
        (Some(r), serde_json::Value::Array(a)) if a.len() == 1 && a[0] == r => {}
        (None, serde_json::Value::Null) => {}
        _ => return false,
    }
    let Ok(bytes) = STANDARD.decode(parts[3]) else {
        return false;
    };
    let Ok(sig) = DetachedSignature::from_bytes(&bytes[..]) else {
        return false;
    };
    sig.verify(&pk.primary_key, payload.as_bytes()).is_ok()
}

#[tonic::async_trait]
impl State for Fake {
    async fn get(
        &self,
        req: Request<cosi::GetRequest>,
    ) -> Result<Response<cosi::GetResponse>, Status> {
        self.log("cosi.resource.State/Get", &req);
        {
            let mut k = self.knobs.lock().unwrap();
            if k.get_unavailable > 0 {
                k.get_unavailable -= 1;
                return Err(Status::unavailable("connection reset"));
            }
        }
        let r = req.into_inner();
        let lagging = self.knobs.lock().unwrap().get_lags_for.contains(&r.id);
        match self
            .stored(&r.namespace, &r.r#type, &r.id)
            .filter(|_| !lagging)
        {
            Some(resource) => Ok(Response::new(cosi::GetResponse {
                resource: Some(resource),
            })),
            None => Err(Status::not_found(format!(
                "resource {}({}/{}@undefined) doesn't exist",
                r.r#type, r.namespace, r.id
            ))),
        }
    }

    type ListStream = BoxStream<cosi::ListResponse>;

    async fn list(
        &self,
        req: Request<cosi::ListRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        self.log("cosi.resource.State/List", &req);
        let r = req.into_inner();
        let opts = r.options.unwrap_or_default();
        let items: Vec<_> = self
            .store
            .lock()
            .unwrap()
            .iter()
            .filter(|((ns, ty, _), _)| *ns == r.namespace && *ty == r.r#type)
            .filter(|(_, res)| {
                // Only EQUAL terms, enough for the test; queries are OR-ed, terms AND-ed.
                let labels = &res.metadata.as_ref().unwrap().labels;
                opts.label_query.is_empty()
                    || opts.label_query.iter().any(|q| {
                        q.terms
                            .iter()
                            .all(|t| labels.get(&t.key) == t.value.first())
                    })
            })
            .map(|(_, res)| {
                Ok(cosi::ListResponse {
                    resource: Some(res.clone()),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(items))))
    }

    async fn create(
        &self,
        req: Request<cosi::CreateRequest>,
    ) -> Result<Response<cosi::CreateResponse>, Status> {
        self.log("cosi.resource.State/Create", &req);
        let mut res = req
            .into_inner()
            .resource
            .ok_or_else(|| Status::unknown("resource missing"))?;
        let md = res
            .metadata
            .as_mut()
            .ok_or_else(|| Status::unknown("metadata is missing"))?;
        if md.version != "undefined" || md.phase != "running" {
            return Err(Status::unknown("error parsing version / unknown phase"));
        }
        if md.id == "invalid" {
            return Err(Status::invalid_argument(
                "failed to validate: 1 error occurred:\n\t* name is required\n\n",
            ));
        }
        md.version = "1".into();
        let key = key_of(md);
        {
            let mut store = self.store.lock().unwrap();
            if store.contains_key(&key) {
                return Err(Status::already_exists("resource already exists"));
            }
            store.insert(key, res.clone());
        }
        self.emit(EventType::Created, res.clone());
        let mut k = self.knobs.lock().unwrap();
        if k.create_lands_then_unavailable > 0 {
            k.create_lands_then_unavailable -= 1;
            return Err(Status::unavailable("reply lost"));
        }
        Ok(Response::new(cosi::CreateResponse {
            resource: Some(res),
        }))
    }

    async fn update(
        &self,
        req: Request<cosi::UpdateRequest>,
    ) -> Result<Response<cosi::UpdateResponse>, Status> {
        self.log("cosi.resource.State/Update", &req);
        let r = req.into_inner();
        let mut res = r
            .new_resource
            .ok_or_else(|| Status::unknown("resource missing"))?;
        let opts = r.options.unwrap_or_default();
        let stored = {
            let mut store = self.store.lock().unwrap();
            let md = res.metadata.as_mut().unwrap();
            let key = key_of(md);
            let Some(current) = store.get_mut(&key) else {
                return Err(Status::not_found("doesn't exist"));
            };
            let cur_md = current.metadata.as_mut().unwrap();
            let mut k = self.knobs.lock().unwrap();
            if k.concurrent_writes_on_update > 0 {
                // Another writer got there first.
                k.concurrent_writes_on_update -= 1;
                cur_md.version = (version(cur_md) + 1).to_string();
            }
            if cur_md.version != md.version {
                return Err(Status::failed_precondition(format!(
                    "update conflict: expected version {:?}, actual version {:?}",
                    md.version, cur_md.version
                )));
            }
            if let Some(p) = &opts.expected_phase {
                if *p != cur_md.phase {
                    return Err(Status::invalid_argument("resource is not in phase running"));
                }
            }
            md.version = (version(cur_md) + 1).to_string();
            *current = res.clone();
            res.clone()
        };
        self.emit(EventType::Updated, stored.clone());
        self.maybe_release(&stored);
        Ok(Response::new(cosi::UpdateResponse {
            resource: Some(stored),
        }))
    }

    async fn destroy(
        &self,
        req: Request<cosi::DestroyRequest>,
    ) -> Result<Response<cosi::DestroyResponse>, Status> {
        self.log("cosi.resource.State/Destroy", &req);
        let r = req.into_inner();
        let key = (r.namespace, r.r#type, r.id);
        let removed = {
            let mut store = self.store.lock().unwrap();
            let Some(current) = store.get(&key) else {
                return Err(Status::not_found("doesn't exist"));
            };
            if !current.metadata.as_ref().unwrap().finalizers.is_empty() {
                return Err(Status::failed_precondition("has pending finalizers"));
            }
            store.remove(&key).unwrap()
        };
        self.emit(EventType::Destroyed, removed);
        Ok(Response::new(cosi::DestroyResponse {}))
    }

    type WatchStream = BoxStream<cosi::WatchResponse>;

    async fn watch(
        &self,
        req: Request<cosi::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        self.log("cosi.resource.State/Watch", &req);
        let r = req.into_inner();
        let script = {
            let mut k = self.knobs.lock().unwrap();
            k.watch_requests.push(r.clone());
            (!k.watch_script.is_empty()).then(|| k.watch_script.remove(0))
        };
        let (tx, rx) = mpsc::channel(16);
        // "Watch established" (omni-api.md §1.8).
        tx.send(Ok(cosi::WatchResponse { event: vec![] }))
            .await
            .unwrap();
        if let Some(events) = script {
            let last = self.knobs.lock().unwrap().watch_script.is_empty();
            tokio::spawn(async move {
                for e in events {
                    let _ = tx.send(Ok(cosi::WatchResponse { event: vec![e] })).await;
                }
                if !last {
                    let _ = tx.send(Err(Status::unavailable("stream reset"))).await;
                } else {
                    // keep open until the client goes away
                    tx.closed().await;
                }
            });
            return Ok(Response::new(Box::pin(ReceiverStream::new(rx))));
        }
        // Live single-resource watch: current state (or tombstone), then changes.
        let id = r.id.clone().unwrap_or_default();
        let mut sub = self.events.subscribe();
        let first = match self.stored(&r.namespace, &r.r#type, &id) {
            Some(res) => cosi::Event {
                resource: Some(res),
                event_type: EventType::Created as i32,
                ..Default::default()
            },
            None => cosi::Event {
                resource: Some(cosi::Resource {
                    metadata: Some(cosi::Metadata {
                        namespace: r.namespace.clone(),
                        r#type: r.r#type.clone(),
                        id: id.clone(),
                        version: "undefined".into(),
                        ..Default::default()
                    }),
                    spec: Some(Default::default()),
                }),
                event_type: EventType::Destroyed as i32,
                ..Default::default()
            },
        };
        tx.send(Ok(cosi::WatchResponse { event: vec![first] }))
            .await
            .unwrap();
        tokio::spawn(async move {
            while let Ok(e) = sub.recv().await {
                let md = e
                    .resource
                    .as_ref()
                    .and_then(|r| r.metadata.as_ref())
                    .unwrap();
                if md.id == id
                    && md.r#type == r.r#type
                    && tx
                        .send(Ok(cosi::WatchResponse { event: vec![e] }))
                        .await
                        .is_err()
                {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn teardown(
        &self,
        req: Request<cosi::TeardownRequest>,
    ) -> Result<Response<cosi::TeardownResponse>, Status> {
        self.log("cosi.resource.State/Teardown", &req);
        if self.knobs.lock().unwrap().teardown_unimplemented {
            return Err(Status::unimplemented("unknown method Teardown"));
        }
        let r = req.into_inner();
        let key = (r.namespace, r.r#type, r.id);
        let res = {
            let mut store = self.store.lock().unwrap();
            let Some(current) = store.get_mut(&key) else {
                return Err(Status::not_found("doesn't exist"));
            };
            let md = current.metadata.as_mut().unwrap();
            if md.phase != "tearingDown" {
                md.phase = "tearingDown".into();
                md.version = (version(md) + 1).to_string();
            }
            current.clone()
        };
        let ready = res.metadata.as_ref().unwrap().finalizers.is_empty();
        self.emit(EventType::Updated, res.clone());
        self.maybe_release(&res);
        Ok(Response::new(cosi::TeardownResponse {
            destroy_ready: ready,
        }))
    }

    async fn teardown_and_destroy(
        &self,
        req: Request<cosi::TeardownAndDestroyRequest>,
    ) -> Result<Response<cosi::TeardownAndDestroyResponse>, Status> {
        self.log("cosi.resource.State/TeardownAndDestroy", &req);
        if self
            .knobs
            .lock()
            .unwrap()
            .teardown_and_destroy_unimplemented
        {
            return Err(Status::unimplemented("unknown method TeardownAndDestroy"));
        }
        Err(Status::internal("not scripted"))
    }
}

#[tonic::async_trait]
impl ResourceService for Fake {
    async fn get(
        &self,
        req: Request<res::GetRequest>,
    ) -> Result<Response<res::GetResponse>, Status> {
        self.log("omni.resources.ResourceService/Get", &req);
        let runtime = req
            .metadata()
            .get("runtime")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        self.knobs
            .lock()
            .unwrap()
            .runtime_headers
            .push(runtime.clone());
        if runtime.as_deref() != Some("Omni") {
            return Err(Status::invalid_argument("missing runtime metadata"));
        }
        let r = req.into_inner();
        let body = self
            .knobs
            .lock()
            .unwrap()
            .resource_json
            .get(&(r.namespace, r.r#type, r.id))
            .cloned();
        body.map(|body| Response::new(res::GetResponse { body }))
            .ok_or_else(|| Status::not_found("doesn't exist"))
    }
    async fn list(
        &self,
        _: Request<res::ListRequest>,
    ) -> Result<Response<res::ListResponse>, Status> {
        Err(Status::unimplemented("list"))
    }
    async fn create(
        &self,
        _: Request<res::CreateRequest>,
    ) -> Result<Response<res::CreateResponse>, Status> {
        Err(Status::unimplemented("create"))
    }
    async fn update(
        &self,
        _: Request<res::UpdateRequest>,
    ) -> Result<Response<res::UpdateResponse>, Status> {
        Err(Status::unimplemented("update"))
    }
    async fn delete(
        &self,
        _: Request<res::DeleteRequest>,
    ) -> Result<Response<res::DeleteResponse>, Status> {
        Err(Status::unimplemented("delete"))
    }
    async fn teardown(
        &self,
        _: Request<res::DeleteRequest>,
    ) -> Result<Response<res::DeleteResponse>, Status> {
        Err(Status::unimplemented("teardown"))
    }
    type WatchStream = BoxStream<res::WatchResponse>;
    async fn watch(
        &self,
        _: Request<res::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("watch"))
    }
    async fn controllers(
        &self,
        _: Request<res::ControllersRequest>,
    ) -> Result<Response<res::ControllersResponse>, Status> {
        Err(Status::unimplemented("controllers"))
    }
    async fn dependency_graph(
        &self,
        _: Request<res::DependencyGraphRequest>,
    ) -> Result<Response<res::DependencyGraphResponse>, Status> {
        Err(Status::unimplemented("graph"))
    }
}

/// Serves `fake` on 127.0.0.1:0 (gzip accepted, like Omni) and returns a client for it.
async fn serve(fake: Fake, key: Option<ServiceAccountKey>) -> Client {
    serve_builder(fake, key).await.build().unwrap()
}

/// Like [`serve`], but returns the client's builder for a test to adjust.
async fn serve_builder(fake: Fake, key: Option<ServiceAccountKey>) -> ClientBuilder {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = StateServer::new(fake.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip);
    let resources = ResourceServiceServer::new(fake)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip);
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(state)
            .add_service(resources)
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    let mut b = Client::builder(format!("grpc://{addr}"))
        .managed_by("gitops-test")
        .retry_policy(RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
        });
    if let Some(key) = key {
        b = b.service_account(key);
    }
    b
}

fn cluster(id: &str, k8s: &str) -> Object<Cluster> {
    Object::new(
        id,
        specs::ClusterSpec {
            kubernetes_version: k8s.into(),
            talos_version: "1.13.5".into(),
            ..Default::default()
        },
    )
}

fn stored_cluster(fake: &Fake, id: &str) -> Option<Object<Cluster>> {
    fake.stored("default", "Clusters.omni.sidero.dev", id)
        .map(|r| Object::<Cluster>::from_proto(r).unwrap().0)
}

#[tokio::test]
async fn requests_are_gzipped_only_when_asked() {
    let fake = Fake::new(None);
    let plain = Api::<Cluster>::new(serve(fake.clone(), None).await);
    plain.create(cluster("c1", "1.33.2")).await.unwrap();
    assert_eq!(
        plain.get("c1").await.unwrap().spec.kubernetes_version,
        "1.33.2"
    );
    let gz = Api::<Cluster>::new(
        serve_builder(fake.clone(), None)
            .await
            .gzip_requests(true)
            .build()
            .unwrap(),
    );
    assert_eq!(
        gz.get("c1").await.unwrap().spec.kubernetes_version,
        "1.33.2"
    );
    gz.create(cluster("c2", "1.34.0")).await.unwrap();
    let encodings = fake.knobs.lock().unwrap().encodings.clone();
    let gzip = Some("gzip".to_string());
    assert_eq!(
        encodings[..2],
        [None, None],
        "default client: {encodings:?}"
    );
    assert_eq!(
        encodings[encodings.len() - 2..],
        [gzip.clone(), gzip],
        "{encodings:?}"
    );
}

#[tokio::test]
async fn reads_retry_unavailable_and_give_up_after_the_policy() {
    let fake = Fake::new(None);
    let client = serve(fake.clone(), None).await;
    let api = Api::<Cluster>::new(client);
    api.create(cluster("c1", "1.33.2")).await.unwrap();

    fake.knobs.lock().unwrap().get_unavailable = 2;
    let got = api.get("c1").await.unwrap();
    assert_eq!(got.spec.kubernetes_version, "1.33.2");
    assert_eq!(fake.calls("cosi.resource.State/Get"), 3);

    fake.knobs.lock().unwrap().get_unavailable = 10;
    match api.get("c1").await {
        Err(Error::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(fake.calls("cosi.resource.State/Get"), 3 + 4);
    fake.knobs.lock().unwrap().get_unavailable = 0;

    assert!(api.get_opt("missing").await.unwrap().is_none());
    assert!(api.get("missing").await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn create_that_landed_is_confirmed_not_duplicated() {
    let fake = Fake::new(None);
    let client = serve(fake.clone(), None).await;
    let api = Api::<Cluster>::new(client);

    fake.knobs.lock().unwrap().create_lands_then_unavailable = 1;
    let created = api.create(cluster("c1", "1.33.2")).await.unwrap();
    assert_eq!(created.metadata.version, Some(1));
    assert_eq!(
        fake.calls("cosi.resource.State/Create"),
        1,
        "no second Create"
    );
    assert!(
        fake.calls("cosi.resource.State/Get") >= 1,
        "checked with Get"
    );
    assert_eq!(
        created
            .metadata
            .annotations
            .get(annotations::MANAGED_BY_GITOPS_TOOLS)
            .map(String::as_str),
        Some("gitops-test")
    );

    // Someone else's resource under the same ID is reported, not adopted.
    match api.create(cluster("c1", "1.32.0")).await {
        Err(Error::AlreadyExists(_)) => {}
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    match api.create(cluster("invalid", "1.33.2")).await {
        Err(Error::Validation(m)) => assert!(m.contains("name is required"), "{m}"),
        other => panic!("expected Validation, got {other:?}"),
    }
}

#[tokio::test]
async fn update_rereads_on_conflict_keeps_finalizers_and_skips_no_ops() {
    let fake = Fake::new(None);
    let client = serve(fake.clone(), None).await;
    let api = Api::<Cluster>::new(client);
    api.create(cluster("c1", "1.33.2").with_label("keep", "me"))
        .await
        .unwrap();
    // A controller adds its finalizer (version 2).
    {
        let mut res = fake
            .stored("default", "Clusters.omni.sidero.dev", "c1")
            .unwrap();
        let md = res.metadata.as_mut().unwrap();
        md.finalizers = vec!["ClusterController".into()];
        md.version = "2".into();
        fake.put(res);
    }

    fake.knobs.lock().unwrap().concurrent_writes_on_update = 1;
    let mut applied = 0;
    let updated = api
        .update("c1", |c| {
            applied += 1;
            c.spec.kubernetes_version = "1.34.0".into();
            c.metadata.finalizers.clear(); // must not reach the server
        })
        .await
        .unwrap();
    assert_eq!(applied, 2, "mutation re-applied after the conflict");
    assert_eq!(fake.calls("cosi.resource.State/Update"), 2);
    let stored = stored_cluster(&fake, "c1").unwrap();
    assert_eq!(stored.spec.kubernetes_version, "1.34.0");
    assert_eq!(
        stored.metadata.finalizers,
        vec!["ClusterController".to_string()]
    );
    assert_eq!(
        stored.metadata.labels.get("keep").map(String::as_str),
        Some("me")
    );
    assert_eq!(updated.metadata.version, Some(4));

    // Nothing changed: no Update is sent.
    let same = api
        .update("c1", |c| c.spec.kubernetes_version = "1.34.0".into())
        .await
        .unwrap();
    assert_eq!(same.metadata.version, Some(4));
    assert_eq!(fake.calls("cosi.resource.State/Update"), 2);
}

#[tokio::test]
async fn lagging_get_is_confirmed_by_a_watch_so_update_and_reads_succeed() {
    let fake = Fake::new(None);
    let client = serve(fake.clone(), None).await;
    let api = Api::<Cluster>::new(client);
    api.create(cluster("c1", "1.33.2")).await.unwrap();
    // The read cache has not caught up with the Create yet.
    fake.knobs.lock().unwrap().get_lags_for = vec!["c1".into()];

    let updated = api
        .update("c1", |c| c.spec.kubernetes_version = "1.34.0".into())
        .await
        .unwrap();
    assert_eq!(updated.metadata.version, Some(2));
    assert_eq!(
        stored_cluster(&fake, "c1").unwrap().spec.kubernetes_version,
        "1.34.0"
    );
    assert!(
        fake.calls("cosi.resource.State/Get") >= 1,
        "read with Get first"
    );
    assert_eq!(
        fake.calls("cosi.resource.State/Watch"),
        1,
        "confirmed by a watch"
    );
    assert!(fake.knobs.lock().unwrap().watch_requests[0].id.as_deref() == Some("c1"));

    // Reads see it too, with the state the watch reported.
    let read = api
        .get_opt("c1")
        .await
        .unwrap()
        .expect("found through the watch");
    assert_eq!(read.spec.kubernetes_version, "1.34.0");
    assert_eq!(read.metadata.version, Some(2));

    // A resource that is really missing is still NotFound (the watch sends a tombstone).
    assert!(api.get_opt("missing").await.unwrap().is_none());
    assert!(api.get("missing").await.unwrap_err().is_not_found());
    assert!(api
        .update("missing", |c| c.spec.kubernetes_version = "1.34.0".into())
        .await
        .unwrap_err()
        .is_not_found());
}

#[tokio::test]
async fn lagging_get_before_a_client_side_teardown_is_confirmed_by_a_watch() {
    let fake = Fake::new(None);
    fake.knobs.lock().unwrap().teardown_unimplemented = true;
    let client = serve(fake.clone(), None).await;
    let api = Api::<Cluster>::new(client);
    api.create(cluster("c1", "1.33.2")).await.unwrap();
    fake.knobs.lock().unwrap().get_lags_for = vec!["c1".into()];

    // Teardown RPC missing: Get, then an Update to tearingDown (omni-api.md §1.5).
    assert!(api.teardown("c1").await.unwrap());
    assert!(stored_cluster(&fake, "c1").unwrap().is_tearing_down());
    assert_eq!(fake.calls("cosi.resource.State/Update"), 1);
}

#[tokio::test]
async fn a_not_found_the_watch_cannot_confirm_keeps_the_get_answer() {
    let fake = Fake::new(None);
    let client = serve(fake.clone(), None).await;
    let api = Api::<Cluster>::new(client);
    api.create(cluster("c1", "1.33.2")).await.unwrap();
    {
        let mut k = fake.knobs.lock().unwrap();
        k.get_lags_for = vec!["c1".into()];
        // The confirming watch fails at once.
        k.watch_script = vec![vec![event(EventType::Errored, None, b"")]];
    }
    assert!(api.get("c1").await.unwrap_err().is_not_found());
    assert_eq!(fake.calls("cosi.resource.State/Watch"), 1);
}

#[tokio::test]
async fn teardown_and_destroy_falls_back_to_teardown_watch_destroy() {
    let fake = Fake::new(None);
    {
        let mut k = fake.knobs.lock().unwrap();
        k.teardown_unimplemented = true;
        k.teardown_and_destroy_unimplemented = true;
        k.release_finalizers_after = Some(Duration::from_millis(100));
    }
    let client = serve(fake.clone(), None).await;
    let api = Api::<Cluster>::new(client);
    for id in ["c1", "c2"] {
        api.create(cluster(id, "1.33.2")).await.unwrap();
        let mut res = fake
            .stored("default", "Clusters.omni.sidero.dev", id)
            .unwrap();
        res.metadata.as_mut().unwrap().finalizers = vec!["ClusterController".into()];
        fake.put(res);
    }

    tokio::time::timeout(Duration::from_secs(10), api.teardown_and_destroy("c1"))
        .await
        .expect("fallback finished")
        .unwrap();
    assert!(stored_cluster(&fake, "c1").is_none());
    assert_eq!(fake.calls("cosi.resource.State/TeardownAndDestroy"), 1);
    assert_eq!(fake.calls("cosi.resource.State/Teardown"), 1);
    assert!(fake.calls("cosi.resource.State/Watch") >= 1);
    assert!(fake.calls("cosi.resource.State/Destroy") >= 1);

    // The client remembers both fallbacks, like the Go adapter.
    tokio::time::timeout(Duration::from_secs(10), api.teardown_and_destroy("c2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fake.calls("cosi.resource.State/TeardownAndDestroy"), 1);
    assert_eq!(fake.calls("cosi.resource.State/Teardown"), 1);
    assert!(stored_cluster(&fake, "c2").is_none());

    // Already gone counts as done.
    api.teardown_and_destroy("never-existed").await.unwrap();
}

#[tokio::test]
async fn teardown_rpc_reports_destroy_ready() {
    let fake = Fake::new(None);
    let client = serve(fake.clone(), None).await;
    let api = Api::<Cluster>::new(client);
    api.create(cluster("c1", "1.33.2")).await.unwrap();
    assert!(api.teardown("c1").await.unwrap());
    assert!(stored_cluster(&fake, "c1").unwrap().is_tearing_down());
    api.destroy("c1").await.unwrap();
    assert!(api.destroy("c1").await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn compressed_config_patch_is_read_through_yaml_or_resource_service() {
    let fake = Fake::new(None);
    let client = serve(fake.clone(), None).await;
    let api = Api::<ConfigPatch>::new(client);
    let compressed = |id: &str, yaml: &str| cosi::Resource {
        metadata: Some(cosi::Metadata {
            namespace: "default".into(),
            r#type: "ConfigPatches.omni.sidero.dev".into(),
            id: id.into(),
            version: "1".into(),
            phase: "running".into(),
            labels: [("omni.sidero.dev/cluster".to_string(), "c1".to_string())].into(),
            ..Default::default()
        }),
        spec: Some(cosi::Spec {
            // zstd frame magic + dictionary ID 1: not decodable without Omni's dictionary.
            proto_spec: specs::ConfigPatchSpec {
                data: String::new(),
                compressed_data: vec![0x28, 0xb5, 0x2f, 0xfd, 0x23, 0x01, 0x00, 0x00, 0x00, 0x42],
            }
            .encode_to_vec(),
            yaml_spec: yaml.into(),
        }),
    };
    fake.put(compressed(
        "400-from-yaml",
        "data: |\n  machine:\n    kubelet: {}\n",
    ));
    fake.put(compressed("400-from-json", ""));
    fake.knobs.lock().unwrap().resource_json.insert(
        ("default".into(), "ConfigPatches.omni.sidero.dev".into(), "400-from-json".into()),
        r#"{"spec":{"data":"cluster:\n  network: {}\n"},"metadata":{"id":"400-from-json","version":1}}"#.into(),
    );

    let a = api.get("400-from-yaml").await.unwrap();
    assert_eq!(a.spec.data, "machine:\n  kubelet: {}\n");
    assert!(a.spec.compressed_data.is_empty());
    assert_eq!(fake.calls("omni.resources.ResourceService/Get"), 0);

    let b = api.get("400-from-json").await.unwrap();
    assert_eq!(b.spec.data, "cluster:\n  network: {}\n");
    assert!(b.spec.compressed_data.is_empty());
    assert_eq!(
        fake.knobs.lock().unwrap().runtime_headers,
        vec![Some("Omni".to_string())]
    );

    let listed = api
        .list(
            &ListParams::default().labels(LabelQuery::new().equal("omni.sidero.dev/cluster", "c1")),
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed
        .iter()
        .all(|p| !p.spec.data.is_empty() && p.spec.compressed_data.is_empty()));

    // Writing back sends uncompressed data only.
    api.update("400-from-json", |p| p.spec.data.push_str("# edited\n"))
        .await
        .unwrap();
    let raw = fake
        .stored("default", "ConfigPatches.omni.sidero.dev", "400-from-json")
        .unwrap();
    let spec = specs::ConfigPatchSpec::decode(raw.spec.unwrap().proto_spec.as_slice()).unwrap();
    assert_eq!(spec.data, "cluster:\n  network: {}\n# edited\n");
    assert!(spec.compressed_data.is_empty());
}

fn event(ty: EventType, res: Option<cosi::Resource>, bookmark: &[u8]) -> cosi::Event {
    cosi::Event {
        resource: res,
        event_type: ty as i32,
        bookmark: Some(bookmark.to_vec()),
        ..Default::default()
    }
}

#[tokio::test]
async fn watch_reconnects_from_the_last_bookmark() {
    let fake = Fake::new(None);
    let v1 = cluster("c1", "1.33.2").to_proto("default");
    let mut v2 = cluster("c1", "1.34.0").to_proto("default");
    let mut v1 = v1;
    v1.metadata.as_mut().unwrap().version = "1".into();
    v2.metadata.as_mut().unwrap().version = "2".into();
    let tombstone = cosi::Resource {
        metadata: Some(Default::default()),
        spec: Some(Default::default()),
    };
    fake.knobs.lock().unwrap().watch_script = vec![
        vec![
            event(EventType::Created, Some(v1.clone()), b"bm-1"),
            event(EventType::Bootstrapped, Some(tombstone), b"bm-2"),
        ],
        vec![cosi::Event {
            resource: Some(v2),
            old: Some(v1),
            event_type: EventType::Updated as i32,
            bookmark: Some(b"bm-3".to_vec()),
            ..Default::default()
        }],
    ];
    let client = serve(fake.clone(), None).await;
    let api = Api::<Cluster>::new(client);
    let mut stream = api.watch(
        WatchParams::kind().labels(LabelQuery::new().equal("omni.sidero.dev/cluster", "c1")),
    );

    let mut seen = Vec::new();
    for _ in 0..3 {
        let ev = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push(ev);
    }
    assert!(matches!(&seen[0], WatchEvent::Created(c) if c.spec.kubernetes_version == "1.33.2"));
    assert!(matches!(&seen[1], WatchEvent::Bootstrapped));
    match &seen[2] {
        WatchEvent::Updated { new, old } => {
            assert_eq!(new.spec.kubernetes_version, "1.34.0");
            assert_eq!(old.as_ref().unwrap().spec.kubernetes_version, "1.33.2");
        }
        other => panic!("{other:?}"),
    }

    let reqs = fake.knobs.lock().unwrap().watch_requests.clone();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].api_version, 1);
    let first = reqs[0].options.clone().unwrap();
    assert!(first.bootstrap_contents && first.start_from_bookmark.is_none());
    assert_eq!(first.label_query.len(), 1);
    let second = reqs[1].options.clone().unwrap();
    assert_eq!(second.start_from_bookmark.as_deref(), Some(&b"bm-2"[..]));
    assert!(!second.bootstrap_contents);
    assert_eq!(second.label_query, first.label_query);
}

#[tokio::test]
async fn watch_errored_event_ends_the_stream_with_an_error() {
    let fake = Fake::new(None);
    fake.knobs.lock().unwrap().watch_script = vec![vec![cosi::Event {
        event_type: EventType::Errored as i32,
        error: Some("buffer overrun: 1000 events".into()),
        ..Default::default()
    }]];
    let client = serve(fake.clone(), None).await;
    let mut stream = Api::<Cluster>::new(client).watch(WatchParams::kind());
    match stream.next().await {
        Some(Err(Error::WatchErrored(m))) => assert!(m.contains("buffer overrun")),
        other => panic!("{other:?}"),
    }
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn every_call_is_signed_for_its_own_method() {
    use pgp::composed::{KeyType, SecretKeyParamsBuilder};
    let mut params = SecretKeyParamsBuilder::default();
    params
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id("ci@serviceaccount.omni.sidero.dev".into());
    let secret = params
        .build()
        .unwrap()
        .generate(rand::thread_rng())
        .unwrap();
    let armored = secret.to_armored_string(Default::default()).unwrap();
    let key = ServiceAccountKey::from_armored("ci", &armored).unwrap();

    let fake = Fake::new(Some(secret.to_public_key()));
    fake.knobs.lock().unwrap().resource_json.insert(
        (
            "default".into(),
            "ConfigPatches.omni.sidero.dev".into(),
            "p".into(),
        ),
        r#"{"spec":{"data":"x: y\n"}}"#.into(),
    );
    fake.put(cosi::Resource {
        metadata: Some(cosi::Metadata {
            namespace: "default".into(),
            r#type: "ConfigPatches.omni.sidero.dev".into(),
            id: "p".into(),
            version: "1".into(),
            phase: "running".into(),
            ..Default::default()
        }),
        spec: Some(cosi::Spec {
            proto_spec: specs::ConfigPatchSpec {
                compressed_data: vec![1, 2, 3],
                ..Default::default()
            }
            .encode_to_vec(),
            yaml_spec: String::new(),
        }),
    });
    let client = serve(fake.clone(), Some(key)).await;
    let api = Api::<Cluster>::new(client.clone());
    api.create(cluster("c1", "1.33.2")).await.unwrap();
    api.get("c1").await.unwrap();
    api.list(&ListParams::default()).await.unwrap();
    api.teardown("c1").await.unwrap();
    Api::<ConfigPatch>::new(client).get("p").await.unwrap();

    let sigs = fake.knobs.lock().unwrap().signatures.clone();
    assert!(sigs.len() >= 6, "{sigs:?}");
    assert!(sigs.iter().all(|(_, ok)| *ok), "{sigs:?}");
    assert!(sigs
        .iter()
        .any(|(m, _)| m == "omni.resources.ResourceService/Get"));
    assert!(sigs.iter().any(|(m, _)| m == "cosi.resource.State/List"));
}

#[tokio::test]
async fn sys_version_probe_reads_the_ephemeral_singleton() {
    let fake = Fake::new(None);
    fake.put(cosi::Resource {
        metadata: Some(cosi::Metadata {
            namespace: "ephemeral".into(),
            r#type: "SysVersions.system.sidero.dev".into(),
            id: "current".into(),
            version: "1".into(),
            phase: "running".into(),
            ..Default::default()
        }),
        spec: Some(cosi::Spec {
            proto_spec: specs::SysVersionSpec {
                backend_version: "1.2.3".into(),
                instance_name: "acme".into(),
                backend_api_version: 1,
            }
            .encode_to_vec(),
            yaml_spec: String::new(),
        }),
    });
    let client = serve(fake, None).await;
    let v = client.sys_version().await.unwrap();
    assert_eq!(
        (v.backend_version.as_str(), v.instance_name.as_str()),
        ("1.2.3", "acme")
    );
}
