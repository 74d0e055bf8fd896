//! Shared server state, authorization (omni-api.md §1.7) and the `cosi.resource.State` service
//! (§1.5, §1.8).

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::Stream;
use omni_api::cosi::resource as pb;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status};

use crate::auth::Identity;
use crate::convert::{access_status, from_pb, store_status, to_pb, tombstone, validation_status};
use crate::keys::{KeyRing, Role};
use crate::model::{Phase, Res};
use crate::query::{Filter, Op, Term};
use crate::store::{Ev, EvKind, Store, StoreError, WatchSpec, WatchStartError};
use crate::types::{self, Access};

/// Shared state of one running emulator.
pub struct Core {
    /// Resource store.
    pub store: Arc<Store>,
    /// Accepted service-account keys.
    pub keys: Arc<KeyRing>,
    /// Image Factory model.
    pub factory: talos_machinery::factory::Factory,
    /// Public endpoint URL, known once the listener is bound.
    pub endpoint: OnceLock<String>,
    /// Controller step delay.
    pub step_delay: Duration,
}

/// Kind of access an operation needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessOp {
    /// Get/List/Watch.
    Read,
    /// Create/Update/Destroy/Teardown.
    Write,
}

/// The caller's identity, attached to the request by the transport layer after verification.
pub fn identity<T>(req: &Request<T>) -> Result<Identity, Status> {
    req.extensions()
        .get::<Identity>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("invalid signature"))
}

fn insufficient(role: Role) -> String {
    format!(
        "unauthorized: access denied: insufficient role: {:?}",
        role.as_str()
    )
}

impl Core {
    /// Checks the caller's role against the type's access class (§1.7).
    pub fn authorize(&self, who: &Identity, op: AccessOp, typ: &str) -> Result<(), Status> {
        let deny = |msg: &str| Err(access_status(Code::PermissionDenied, msg));
        let Some(info) = types::lookup(typ) else {
            return deny("no access is permitted");
        };
        let need = match (op, info.access) {
            (_, Access::NoAccess) => return deny("no access is permitted"),
            (AccessOp::Read, Access::AnySignedRead) => return Ok(()),
            (AccessOp::Read, Access::AdminRead) => Role::Admin,
            (AccessOp::Read, _) => Role::Reader,
            (AccessOp::Write, Access::UserWritable) => Role::Operator,
            (AccessOp::Write, Access::AdminWritable) => Role::Admin,
            (AccessOp::Write, _) => return deny("only read access is permitted"),
        };
        if who.role < need {
            return deny(&insufficient(who.role));
        }
        Ok(())
    }

    /// Requires at least `role` for a non-resource call (management API).
    pub fn require(&self, who: &Identity, role: Role) -> Result<(), Status> {
        if who.role < role {
            return Err(Status::permission_denied(insufficient(who.role)));
        }
        Ok(())
    }

    /// Create with authorization and validation (shared by the State and Resource services).
    pub async fn create(&self, who: &Identity, r: Res, owner: &str) -> Result<Arc<Res>, Status> {
        self.authorize(who, AccessOp::Write, &r.typ)?;
        let errs = crate::validate::on_create(&self.store, &r);
        if !errs.is_empty() {
            return Err(validation_status(&errs));
        }
        self.store.create(r, owner).await.map_err(store_status)
    }

    /// Update with authorization and validation.
    pub async fn update(
        &self,
        who: &Identity,
        r: Res,
        owner: &str,
        expected_phase: Option<Phase>,
    ) -> Result<Arc<Res>, Status> {
        self.authorize(who, AccessOp::Write, &r.typ)?;
        let old = self.store.get(&r.namespace, &r.typ, &r.id);
        let mut errs = crate::validate::on_update(&self.store, old.as_deref(), &r);
        if r.phase == Phase::TearingDown {
            // An update that moves to tearingDown also runs the destroy validations (§1.7).
            errs.extend(crate::validate::on_destroy(&self.store, old.as_deref()));
        }
        if !errs.is_empty() {
            return Err(validation_status(&errs));
        }
        self.store
            .update(r, owner, expected_phase)
            .await
            .map_err(store_status)
    }

    async fn destroy_checks(
        &self,
        who: &Identity,
        ns: &str,
        typ: &str,
        id: &str,
    ) -> Result<(), Status> {
        self.authorize(who, AccessOp::Write, typ)?;
        let cur = self.store.get(ns, typ, id);
        let errs = crate::validate::on_destroy(&self.store, cur.as_deref());
        if !errs.is_empty() {
            return Err(validation_status(&errs));
        }
        Ok(())
    }

    /// Destroy with authorization and destroy validations.
    pub async fn destroy(
        &self,
        who: &Identity,
        ns: &str,
        typ: &str,
        id: &str,
        owner: &str,
    ) -> Result<(), Status> {
        self.destroy_checks(who, ns, typ, id).await?;
        self.store
            .destroy(ns, typ, id, owner)
            .await
            .map_err(store_status)
    }

    /// Teardown with authorization and destroy validations; returns `destroy_ready`.
    pub async fn teardown(
        &self,
        who: &Identity,
        ns: &str,
        typ: &str,
        id: &str,
        owner: &str,
    ) -> Result<bool, Status> {
        self.destroy_checks(who, ns, typ, id).await?;
        self.store
            .teardown(ns, typ, id, owner)
            .await
            .map_err(store_status)
    }

    /// Teardown, wait until the finalizers are gone (or the resource vanished), then Destroy.
    pub async fn teardown_and_destroy(
        &self,
        who: &Identity,
        ns: &str,
        typ: &str,
        id: &str,
        owner: &str,
    ) -> Result<(), Status> {
        let mut rx = self.store.subscribe_all();
        self.teardown(who, ns, typ, id, owner).await?;
        loop {
            let Some(cur) = self.store.get(ns, typ, id) else {
                return Ok(());
            };
            if cur.finalizers.is_empty() {
                match self.store.destroy(ns, typ, id, owner).await {
                    Ok(()) | Err(StoreError::NotFound(_)) => return Ok(()),
                    Err(StoreError::PendingFinalizers(..)) => {}
                    Err(e) => return Err(store_status(e)),
                }
            }
            // Wake on any event for this resource, or re-check every second.
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                loop {
                    match rx.recv().await {
                        Ok(ev)
                            if ev.res.typ == typ && ev.res.id == id && ev.res.namespace == ns =>
                        {
                            return
                        }
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => return,
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            return;
                        }
                    }
                }
            })
            .await;
        }
    }
}

/// Builds a store filter from wire label / ID queries (§1.5, §1.10).
pub fn filter_of(
    label_query: Vec<pb::LabelQuery>,
    id_query: Option<pb::IdQuery>,
) -> Result<Filter, Status> {
    let mut f = Filter::default();
    for q in label_query {
        let mut terms = Vec::new();
        for t in q.terms {
            let op = Op::from_i32(t.op).ok_or_else(|| {
                Status::unimplemented(format!("unsupported label query operator: {}", t.op))
            })?;
            terms.push(Term {
                key: t.key,
                op,
                values: t.value,
                invert: t.invert,
            });
        }
        f.label_queries.push(terms);
    }
    if let Some(q) = id_query {
        if !q.regexp.is_empty() {
            let re = regex::Regex::new(&q.regexp)
                .map_err(|e| Status::invalid_argument(format!("failed to compile regexp: {e}")))?;
            f.id_regexp = Some(re);
        }
    }
    Ok(f)
}

/// The `cosi.resource.State` service.
#[derive(Clone)]
pub struct StateService {
    core: Arc<Core>,
}

impl StateService {
    /// Wraps the shared core.
    pub fn new(core: Arc<Core>) -> StateService {
        StateService { core }
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

fn opt_owner<T: Default>(o: Option<T>) -> T {
    o.unwrap_or_default()
}

fn event(
    kind: pb::EventType,
    res: pb::Resource,
    old: Option<pb::Resource>,
    bookmark: Vec<u8>,
) -> pb::Event {
    pb::Event {
        resource: Some(res),
        event_type: kind as i32,
        old,
        error: None,
        bookmark: Some(bookmark),
    }
}

/// Translates a store event for a watcher, applying the query rewrite rules of §1.8 item 4.
fn translate(ev: &Ev, filter: &Filter, bookmark: Vec<u8>) -> Option<pb::Event> {
    let now = filter.matches(&ev.res);
    match ev.kind {
        EvKind::Created => {
            now.then(|| event(pb::EventType::Created, to_pb(&ev.res), None, bookmark))
        }
        EvKind::Destroyed => {
            now.then(|| event(pb::EventType::Destroyed, to_pb(&ev.res), None, bookmark))
        }
        EvKind::Updated => {
            let before = ev.old.as_ref().is_some_and(|o| filter.matches(o));
            match (before, now) {
                (true, true) => Some(event(
                    pb::EventType::Updated,
                    to_pb(&ev.res),
                    ev.old.as_ref().map(|o| to_pb(o)),
                    bookmark,
                )),
                (false, true) => Some(event(
                    pb::EventType::Created,
                    to_pb(&ev.res),
                    None,
                    bookmark,
                )),
                (true, false) => Some(event(
                    pb::EventType::Destroyed,
                    to_pb(&ev.res),
                    None,
                    bookmark,
                )),
                (false, false) => None,
            }
        }
    }
}

#[tonic::async_trait]
impl pb::state_server::State for StateService {
    async fn get(&self, req: Request<pb::GetRequest>) -> Result<Response<pb::GetResponse>, Status> {
        let who = identity(&req)?;
        let r = req.into_inner();
        self.core.authorize(&who, AccessOp::Read, &r.r#type)?;
        match self.core.store.get_cached(&r.namespace, &r.r#type, &r.id) {
            Some(res) => Ok(Response::new(pb::GetResponse {
                resource: Some(to_pb(&res)),
            })),
            None => Err(store_status(StoreError::NotFound(
                crate::model::Pointer {
                    typ: &r.r#type,
                    ns: &r.namespace,
                    id: &r.id,
                    version: 0,
                }
                .to_string(),
            ))),
        }
    }

    type ListStream = BoxStream<pb::ListResponse>;

    async fn list(
        &self,
        req: Request<pb::ListRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        let who = identity(&req)?;
        let r = req.into_inner();
        self.core.authorize(&who, AccessOp::Read, &r.r#type)?;
        let o = r.options.unwrap_or_default();
        let filter = filter_of(o.label_query, o.id_query)?;
        let items = self
            .core
            .store
            .list_cached(&r.namespace, &r.r#type, &filter);
        let stream = futures::stream::iter(items.into_iter().map(|res| {
            Ok(pb::ListResponse {
                resource: Some(to_pb(&res)),
            })
        }));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn create(
        &self,
        req: Request<pb::CreateRequest>,
    ) -> Result<Response<pb::CreateResponse>, Status> {
        let who = identity(&req)?;
        let r = req.into_inner();
        let res = from_pb(r.resource)?;
        let owner = opt_owner(r.options).owner;
        let stored = self.core.create(&who, res, &owner).await?;
        Ok(Response::new(pb::CreateResponse {
            resource: Some(to_pb(&stored)),
        }))
    }

    async fn update(
        &self,
        req: Request<pb::UpdateRequest>,
    ) -> Result<Response<pb::UpdateResponse>, Status> {
        let who = identity(&req)?;
        let r = req.into_inner();
        let res = from_pb(r.new_resource)?;
        let o = opt_owner(r.options);
        let expected = match o.expected_phase {
            None => None,
            Some(p) => Some(
                Phase::parse(&p).ok_or_else(|| Status::unknown(format!("unknown phase {p:?}")))?,
            ),
        };
        let stored = self.core.update(&who, res, &o.owner, expected).await?;
        Ok(Response::new(pb::UpdateResponse {
            resource: Some(to_pb(&stored)),
        }))
    }

    async fn destroy(
        &self,
        req: Request<pb::DestroyRequest>,
    ) -> Result<Response<pb::DestroyResponse>, Status> {
        let who = identity(&req)?;
        let r = req.into_inner();
        let owner = opt_owner(r.options).owner;
        self.core
            .destroy(&who, &r.namespace, &r.r#type, &r.id, &owner)
            .await?;
        Ok(Response::new(pb::DestroyResponse {}))
    }

    type WatchStream = BoxStream<pb::WatchResponse>;

    async fn watch(
        &self,
        req: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let who = identity(&req)?;
        let r = req.into_inner();
        self.core.authorize(&who, AccessOp::Read, &r.r#type)?;
        let o = r.options.unwrap_or_default();
        if r.id.is_some() && (o.bootstrap_contents || !o.label_query.is_empty()) {
            return Err(Status::unimplemented(
                "bootstrap contents and label queries are not supported for single resource watch",
            ));
        }
        if o.bootstrap_contents && (o.tail_events > 0 || o.start_from_bookmark.is_some()) {
            return Err(Status::invalid_argument(
                "bootstrap contents cannot be combined with tail events or bookmarks",
            ));
        }
        let filter = filter_of(o.label_query, o.id_query)?;
        let sub = self
            .core
            .store
            .watch(&WatchSpec {
                ns: &r.namespace,
                typ: &r.r#type,
                id: r.id.as_deref(),
                filter: &filter,
                bootstrap: o.bootstrap_contents,
                tail_events: o.tail_events,
                from_bookmark: o.start_from_bookmark.as_deref(),
            })
            .map_err(|WatchStartError::BadBookmark| {
                Status::failed_precondition("invalid bookmark")
            })?;
        let (tx, rx) = mpsc::channel::<Result<pb::WatchResponse, Status>>(256);
        let store = self.core.store.clone();
        let ns = r.namespace.clone();
        let typ = r.r#type.clone();
        let id = r.id.clone();
        let api_v1 = r.api_version >= 1;
        let aggregated = o.aggregated;
        let resume = o.tail_events > 0 || o.start_from_bookmark.is_some();
        let bootstrap_bookmark = o.bootstrap_bookmark;
        let bootstrap = o.bootstrap_contents;
        tokio::spawn(async move {
            let send = |evs: Vec<pb::Event>| {
                let tx = tx.clone();
                async move {
                    if evs.is_empty() {
                        return true;
                    }
                    if aggregated {
                        tx.send(Ok(pb::WatchResponse { event: evs })).await.is_ok()
                    } else {
                        for e in evs {
                            if tx
                                .send(Ok(pb::WatchResponse { event: vec![e] }))
                                .await
                                .is_err()
                            {
                                return false;
                            }
                        }
                        true
                    }
                }
            };
            // "Watch established" marker (§1.8 item 1).
            if tx
                .send(Ok(pb::WatchResponse { event: vec![] }))
                .await
                .is_err()
            {
                return;
            }
            let mut first = Vec::new();
            if let Some(i) = &id {
                if !resume {
                    match sub.initial.first() {
                        Some(res) => first.push(event(
                            pb::EventType::Created,
                            to_pb(res),
                            None,
                            sub.bookmark.clone(),
                        )),
                        None => first.push(event(
                            pb::EventType::Destroyed,
                            tombstone(&ns, &typ, i),
                            None,
                            sub.bookmark.clone(),
                        )),
                    }
                }
            } else if bootstrap {
                for res in &sub.initial {
                    first.push(event(
                        pb::EventType::Created,
                        to_pb(res),
                        None,
                        sub.bookmark.clone(),
                    ));
                }
                if api_v1 {
                    first.push(event(
                        pb::EventType::Bootstrapped,
                        tombstone(&ns, &typ, ""),
                        None,
                        sub.bookmark.clone(),
                    ));
                }
            } else if bootstrap_bookmark {
                first.push(event(
                    pb::EventType::Noop,
                    tombstone(&ns, &typ, ""),
                    None,
                    sub.bookmark.clone(),
                ));
            }
            for ev in &sub.replay {
                if let Some(e) = translate(ev, &filter, store.bookmark(ev.pos)) {
                    first.push(e);
                }
            }
            if !send(first).await {
                return;
            }
            let mut rx = sub.rx;
            loop {
                let ev = match rx.recv().await {
                    Ok(ev) => ev,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        if api_v1 {
                            let _ = tx
                                .send(Ok(pb::WatchResponse {
                                    event: vec![pb::Event {
                                        resource: None,
                                        event_type: pb::EventType::Errored as i32,
                                        old: None,
                                        error: Some(format!("buffer overrun: lost {n} events")),
                                        bookmark: None,
                                    }],
                                }))
                                .await;
                        }
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let mut batch = Vec::new();
                let mut push = |ev: &Ev| {
                    if ev.res.namespace == ns
                        && ev.res.typ == typ
                        && id.as_ref().is_none_or(|i| *i == ev.res.id)
                    {
                        if let Some(e) = translate(ev, &filter, store.bookmark(ev.pos)) {
                            batch.push(e);
                        }
                    }
                };
                push(&ev);
                if aggregated {
                    while let Ok(ev) = rx.try_recv() {
                        push(&ev);
                    }
                }
                if !send(batch).await {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn teardown(
        &self,
        req: Request<pb::TeardownRequest>,
    ) -> Result<Response<pb::TeardownResponse>, Status> {
        let who = identity(&req)?;
        let r = req.into_inner();
        let owner = opt_owner(r.options).owner;
        let ready = self
            .core
            .teardown(&who, &r.namespace, &r.r#type, &r.id, &owner)
            .await?;
        Ok(Response::new(pb::TeardownResponse {
            destroy_ready: ready,
        }))
    }

    async fn teardown_and_destroy(
        &self,
        req: Request<pb::TeardownAndDestroyRequest>,
    ) -> Result<Response<pb::TeardownAndDestroyResponse>, Status> {
        let who = identity(&req)?;
        let r = req.into_inner();
        let owner = opt_owner(r.options).owner;
        self.core
            .teardown_and_destroy(&who, &r.namespace, &r.r#type, &r.id, &owner)
            .await?;
        Ok(Response::new(pb::TeardownAndDestroyResponse {}))
    }
}
