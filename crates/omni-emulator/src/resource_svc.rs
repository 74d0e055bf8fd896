//! `omni.resources.ResourceService`, the JSON resource API of Omni's web UI (omni-api.md §11).

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use omni_api::omni::resources as pb;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::convert::{from_pb, spec_from_json, spec_json, store_status};
use crate::core::{identity, AccessOp, Core};
use crate::model::{Res, Time};
use crate::query::Filter;
use crate::store::{EvKind, StoreError, WatchSpec};

/// The resource service.
pub struct Resources {
    core: Arc<Core>,
}

impl Resources {
    /// Wraps the shared core.
    pub fn new(core: Arc<Core>) -> Resources {
        Resources { core }
    }
}

/// Every call must carry `runtime: Omni` (§11).
fn require_runtime<T>(req: &Request<T>) -> Result<(), Status> {
    match req.metadata().get("runtime").and_then(|v| v.to_str().ok()) {
        Some("Omni") => Ok(()),
        Some(other) => Err(Status::invalid_argument(format!(
            "unsupported runtime {other:?}"
        ))),
        None => Err(Status::invalid_argument("missing runtime metadata")),
    }
}

/// The JSON text of a resource: `{"spec": …, "metadata": …}` (§11).
pub fn resource_json(r: &Res) -> String {
    let mut md = serde_json::Map::new();
    md.insert("created".into(), r.created.rfc3339().into());
    md.insert("updated".into(), r.updated.rfc3339().into());
    md.insert("namespace".into(), r.namespace.clone().into());
    md.insert("type".into(), r.typ.clone().into());
    md.insert("id".into(), r.id.clone().into());
    md.insert("owner".into(), r.owner.clone().into());
    md.insert("phase".into(), r.phase.as_str().into());
    md.insert("version".into(), r.version.into());
    if !r.labels.is_empty() {
        md.insert(
            "labels".into(),
            serde_json::to_value(&r.labels).unwrap_or_default(),
        );
    }
    if !r.annotations.is_empty() {
        md.insert(
            "annotations".into(),
            serde_json::to_value(&r.annotations).unwrap_or_default(),
        );
    }
    if !r.finalizers.is_empty() {
        md.insert(
            "finalizers".into(),
            serde_json::to_value(&r.finalizers).unwrap_or_default(),
        );
    }
    serde_json::json!({"spec": spec_json(&r.typ, &r.spec), "metadata": md}).to_string()
}

/// Parses a ResourceService resource (cosi metadata + spec JSON text).
fn parse_resource(r: Option<pb::Resource>) -> Result<Res, Status> {
    let r = r.ok_or_else(|| Status::invalid_argument("resource is missing"))?;
    let mut md = r
        .metadata
        .ok_or_else(|| Status::invalid_argument("metadata is missing"))?;
    if md.version.is_empty() {
        md.version = "1".into();
    }
    md.phase = "running".into();
    let spec = spec_from_json(&md.r#type, &r.spec).map_err(Status::invalid_argument)?;
    let mut res = from_pb(Some(omni_api::cosi::resource::Resource {
        metadata: Some(md),
        spec: Some(omni_api::cosi::resource::Spec {
            proto_spec: spec,
            yaml_spec: String::new(),
        }),
    }))?;
    if res.created == Time::default() {
        res.created = Time::now();
    }
    Ok(res)
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl pb::resource_service_server::ResourceService for Resources {
    async fn get(&self, req: Request<pb::GetRequest>) -> Result<Response<pb::GetResponse>, Status> {
        let who = identity(&req)?;
        require_runtime(&req)?;
        let r = req.into_inner();
        self.core.authorize(&who, AccessOp::Read, &r.r#type)?;
        let res = self
            .core
            .store
            .get_cached(&r.namespace, &r.r#type, &r.id)
            .ok_or_else(|| {
                store_status(StoreError::NotFound(
                    crate::model::Pointer {
                        typ: &r.r#type,
                        ns: &r.namespace,
                        id: &r.id,
                        version: 0,
                    }
                    .to_string(),
                ))
            })?;
        Ok(Response::new(pb::GetResponse {
            body: resource_json(&res),
        }))
    }

    async fn list(
        &self,
        req: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        let who = identity(&req)?;
        require_runtime(&req)?;
        let r = req.into_inner();
        self.core.authorize(&who, AccessOp::Read, &r.r#type)?;
        let mut items: Vec<_> = self
            .core
            .store
            .list_cached(&r.namespace, &r.r#type, &Filter::default())
            .into_iter()
            .filter(|x| {
                r.search_for.is_empty() || r.search_for.iter().any(|s| x.id.contains(s.as_str()))
            })
            .collect();
        if r.sort_descending {
            items.reverse();
        }
        let total = items.len() as i32;
        let offset = r.offset.max(0) as usize;
        let limit = if r.limit > 0 {
            r.limit as usize
        } else {
            usize::MAX
        };
        let items = items
            .iter()
            .skip(offset)
            .take(limit)
            .map(|x| resource_json(x))
            .collect();
        Ok(Response::new(pb::ListResponse { items, total }))
    }

    async fn create(
        &self,
        req: Request<pb::CreateRequest>,
    ) -> Result<Response<pb::CreateResponse>, Status> {
        let who = identity(&req)?;
        require_runtime(&req)?;
        let res = parse_resource(req.into_inner().resource)?;
        self.core.create(&who, res, "").await?;
        Ok(Response::new(pb::CreateResponse {}))
    }

    async fn update(
        &self,
        req: Request<pb::UpdateRequest>,
    ) -> Result<Response<pb::UpdateResponse>, Status> {
        let who = identity(&req)?;
        require_runtime(&req)?;
        let r = req.into_inner();
        let mut res = parse_resource(r.resource)?;
        self.core.authorize(&who, AccessOp::Write, &res.typ)?;
        let cur = self
            .core
            .store
            .get(&res.namespace, &res.typ, &res.id)
            .ok_or_else(|| store_status(StoreError::NotFound(res.pointer().to_string())))?;
        if !r.current_version.is_empty() && r.current_version != cur.version_str() {
            return Err(store_status(StoreError::VersionConflict {
                ptr: cur.pointer().to_string(),
                expected: r.current_version.clone(),
                actual: cur.version_str(),
            }));
        }
        res.version = cur.version;
        res.phase = cur.phase;
        if res.finalizers.is_empty() {
            res.finalizers = cur.finalizers.clone();
        }
        self.core.update(&who, res, "", None).await?;
        Ok(Response::new(pb::UpdateResponse {}))
    }

    async fn delete(
        &self,
        req: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let who = identity(&req)?;
        require_runtime(&req)?;
        let r = req.into_inner();
        self.core
            .teardown_and_destroy(&who, &r.namespace, &r.r#type, &r.id, "")
            .await?;
        Ok(Response::new(pb::DeleteResponse {}))
    }

    async fn teardown(
        &self,
        req: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let who = identity(&req)?;
        require_runtime(&req)?;
        let r = req.into_inner();
        self.core
            .teardown(&who, &r.namespace, &r.r#type, &r.id, "")
            .await?;
        Ok(Response::new(pb::DeleteResponse {}))
    }

    type WatchStream = BoxStream<pb::WatchResponse>;

    async fn watch(
        &self,
        req: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let who = identity(&req)?;
        require_runtime(&req)?;
        let r = req.into_inner();
        self.core.authorize(&who, AccessOp::Read, &r.r#type)?;
        let filter = Filter::default();
        let id = (!r.id.is_empty()).then(|| r.id.clone());
        let sub = self
            .core
            .store
            .watch(&WatchSpec {
                ns: &r.namespace,
                typ: &r.r#type,
                id: id.as_deref(),
                filter: &filter,
                bootstrap: r.tail_events <= 0,
                tail_events: r.tail_events,
                from_bookmark: None,
            })
            .map_err(|_| Status::failed_precondition("invalid bookmark"))?;
        let (tx, rx) = mpsc::channel(256);
        let (ns, typ) = (r.namespace.clone(), r.r#type.clone());
        let sort_descending = r.sort_descending;
        tokio::spawn(async move {
            let mk =
                |kind: pb::EventType, res: &Res, old: Option<&Res>, total: i32| pb::WatchResponse {
                    event: Some(pb::Event {
                        resource: resource_json(res),
                        old: old.map(resource_json).unwrap_or_default(),
                        event_type: kind as i32,
                    }),
                    total,
                    sort_field_data: res.id.clone(),
                    sort_descending,
                };
            let mut total = sub.initial.len() as i32;
            for res in &sub.initial {
                if tx
                    .send(Ok(mk(pb::EventType::Created, res, None, total)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let boot = pb::WatchResponse {
                event: Some(pb::Event {
                    resource: String::new(),
                    old: String::new(),
                    event_type: pb::EventType::Bootstrapped as i32,
                }),
                total,
                sort_field_data: String::new(),
                sort_descending,
            };
            if tx.send(Ok(boot)).await.is_err() {
                return;
            }
            let mut rx = sub.rx;
            let replay = sub.replay.clone();
            let mut pending: std::collections::VecDeque<_> = replay.into();
            loop {
                let ev = match pending.pop_front() {
                    Some(e) => e,
                    None => match rx.recv().await {
                        Ok(e) => e,
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            let _ = tx.send(Err(Status::aborted("buffer overrun"))).await;
                            return;
                        }
                        Err(_) => return,
                    },
                };
                if ev.res.namespace != ns
                    || ev.res.typ != typ
                    || id.as_ref().is_some_and(|i| *i != ev.res.id)
                {
                    continue;
                }
                let msg = match ev.kind {
                    EvKind::Created => {
                        total += 1;
                        mk(pb::EventType::Created, &ev.res, None, total)
                    }
                    EvKind::Updated => {
                        mk(pb::EventType::Updated, &ev.res, ev.old.as_deref(), total)
                    }
                    EvKind::Destroyed => {
                        total -= 1;
                        mk(pb::EventType::Destroyed, &ev.res, None, total)
                    }
                };
                if tx.send(Ok(msg)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn controllers(
        &self,
        req: Request<pb::ControllersRequest>,
    ) -> Result<Response<pb::ControllersResponse>, Status> {
        identity(&req)?;
        Ok(Response::new(pb::ControllersResponse {
            controllers: crate::controllers::NAMES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }))
    }

    async fn dependency_graph(
        &self,
        req: Request<pb::DependencyGraphRequest>,
    ) -> Result<Response<pb::DependencyGraphResponse>, Status> {
        identity(&req)?;
        Err(Status::unimplemented("DependencyGraph is not emulated"))
    }
}
