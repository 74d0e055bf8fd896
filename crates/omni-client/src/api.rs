//! `Api<K>`: typed operations on one resource kind, in the kube-rs style.

use std::{collections::VecDeque, marker::PhantomData, pin::Pin};

use futures::{Stream, StreamExt};
use omni_api::cosi::resource::{self as cosi, EventType};

use crate::{
    client::Client,
    error::{Error, Result},
    object::{requests, ListParams, Object, Phase, WatchParams},
    resources::{annotations::MANAGED_BY_GITOPS_TOOLS, ResourceKind},
};

/// A change seen by [`Api::watch`].
#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent<K: ResourceKind> {
    /// The resource appeared (or, on a bootstrap/single watch, already existed).
    Created(Object<K>),
    /// The resource changed; `old` is the previous state when the server sent it.
    Updated {
        /// New state.
        new: Object<K>,
        /// Previous state (boxed: most consumers only look at `new`).
        old: Option<Box<Object<K>>>,
    },
    /// The resource is gone. For a single-resource watch of a missing resource this is a
    /// tombstone: metadata only, default spec (omni-api.md §1.8).
    Destroyed(Object<K>),
    /// Kind watch with bootstrap: every existing resource has been sent.
    Bootstrapped,
}

/// A boxed stream of watch events.
pub type WatchStream<K> = Pin<Box<dyn Stream<Item = Result<WatchEvent<K>>> + Send>>;

/// Typed access to resources of kind `K` in one namespace.
pub struct Api<K: ResourceKind> {
    client: Client,
    namespace: String,
    _kind: PhantomData<fn() -> K>,
}

impl<K: ResourceKind> Clone for Api<K> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            namespace: self.namespace.clone(),
            _kind: PhantomData,
        }
    }
}

impl<K: ResourceKind> std::fmt::Debug for Api<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("type", &K::TYPE)
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// How many times `update` re-reads and re-applies after a version conflict.
const MAX_CONFLICT_RETRIES: u32 = 10;

/// How long a read waits for a watch to confirm a NotFound before trusting the Get.
const CONFIRM_NOT_FOUND: std::time::Duration = std::time::Duration::from_secs(5);

impl<K: ResourceKind> Api<K> {
    /// Resources of kind `K` in its usual namespace.
    pub fn new(client: Client) -> Self {
        Self::namespaced(client, K::NAMESPACE)
    }

    /// Resources of kind `K` in `namespace`.
    pub fn namespaced(client: Client, namespace: &str) -> Self {
        Self {
            client,
            namespace: namespace.to_string(),
            _kind: PhantomData,
        }
    }

    /// The namespace this API works in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The client this API calls through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Decodes a wire resource and, if its data came back compressed, recovers the text from
    /// `yaml_spec` or else through the JSON ResourceService (omni-api.md §1.11, §11).
    async fn decode(&self, resource: Option<cosi::Resource>) -> Result<Object<K>> {
        let resource = resource.ok_or_else(|| Error::Decode("response without resource".into()))?;
        let (mut obj, yaml) = Object::<K>::from_proto(resource)?;
        if K::is_compressed(&obj.spec) {
            let text = match data_from_yaml(&yaml) {
                Some(text) => text,
                None => {
                    self.client
                        .uncompressed_data_via_json(&self.namespace, K::TYPE, obj.id())
                        .await?
                }
            };
            K::set_uncompressed(&mut obj.spec, text);
        }
        Ok(obj)
    }

    /// Reads one resource. A missing one is [`Error::NotFound`].
    ///
    /// Omni serves Get from a cache that can lag behind a write just made (omni-api.md §1.9),
    /// so a NotFound is confirmed with a single-resource Watch before it is reported: the
    /// watch's first event is the server's current state, or a tombstone when the resource is
    /// really missing (§1.8). A resource created a moment ago is therefore found. When the
    /// watch cannot answer (an error, or no first event within a few seconds), the Get's
    /// NotFound stands. Note that a lagging Get can still return the *previous* version; writes
    /// that send it fail with a version conflict, which [`Api::update`] retries.
    pub async fn get(&self, id: &str) -> Result<Object<K>> {
        match self.get_uncached(id).await {
            Err(Error::NotFound(msg)) => match self.current_state(id).await {
                Some(obj) => Ok(obj),
                None => Err(Error::NotFound(msg)),
            },
            other => other,
        }
    }

    /// One Get RPC (with transient retries), answered by the server's possibly lagging cache.
    async fn get_uncached(&self, id: &str) -> Result<Object<K>> {
        let req = requests::get(&self.namespace, K::TYPE, id);
        let resp = self
            .client
            .retry_idempotent("Get", || async {
                Ok(self.client.state().get(req.clone()).await?.into_inner())
            })
            .await?;
        self.decode(resp.resource).await
    }

    /// The current state of `id` as the first event of a single-resource Watch reports it
    /// (omni-api.md §1.8 item 2): `Some` when it exists, `None` for a tombstone or when the
    /// watch gives no answer, in which case the caller keeps the Get's answer.
    async fn current_state(&self, id: &str) -> Option<Object<K>> {
        let first = async {
            let mut events = self.watch(WatchParams::single(id));
            while let Some(event) = events.next().await {
                match event? {
                    WatchEvent::Created(obj) | WatchEvent::Updated { new: obj, .. } => {
                        return Ok(Some(obj))
                    }
                    WatchEvent::Destroyed(_) => return Ok(None),
                    WatchEvent::Bootstrapped => {}
                }
            }
            Ok::<_, Error>(None)
        };
        match tokio::time::timeout(CONFIRM_NOT_FOUND, first).await {
            Ok(Ok(found)) => {
                if found.is_some() {
                    tracing::debug!(r#type = K::TYPE, %id, "Get said NotFound, the watch found it (read lag)");
                }
                found
            }
            Ok(Err(e)) => {
                tracing::debug!(r#type = K::TYPE, %id, error = %e, "could not confirm NotFound with a watch");
                None
            }
            Err(_) => {
                tracing::debug!(r#type = K::TYPE, %id, "no watch answer in time to confirm NotFound");
                None
            }
        }
    }

    /// Reads one resource; missing is `None` (what a Terraform read needs). Like [`Api::get`],
    /// a NotFound is confirmed with a watch, so a lagging read cache does not make a resource
    /// that was just written look gone.
    pub async fn get_opt(&self, id: &str) -> Result<Option<Object<K>>> {
        match self.get(id).await {
            Ok(obj) => Ok(Some(obj)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Lists resources, sorted by ID by the server. A broken stream restarts the whole list.
    pub async fn list(&self, params: &ListParams) -> Result<Vec<Object<K>>> {
        let req = requests::list(&self.namespace, K::TYPE, params);
        let raw = self
            .client
            .retry_idempotent("List", || async {
                let mut stream = self.client.state().list(req.clone()).await?.into_inner();
                let mut out = Vec::new();
                while let Some(item) = stream.message().await? {
                    out.push(item.resource);
                }
                Ok(out)
            })
            .await?;
        let mut objects = Vec::with_capacity(raw.len());
        for resource in raw {
            objects.push(self.decode(resource).await?);
        }
        Ok(objects)
    }

    fn stamp(&self, obj: &mut Object<K>) {
        if let Some(tool) = self.client.gitops_tool() {
            obj.metadata
                .annotations
                .insert(MANAGED_BY_GITOPS_TOOLS.to_string(), tool.to_string());
        }
    }

    /// Creates a resource. Owner, version, phase and finalizers are set as Omni expects; the
    /// returned object carries the stored metadata. A call that failed in transit is checked
    /// with a Get before being retried, so a Create is never duplicated: if the resource is
    /// there with our content, that is success; with other content, AlreadyExists.
    pub async fn create(&self, obj: Object<K>) -> Result<Object<K>> {
        let _writing = self.client.writing();
        let mut obj = obj;
        obj.metadata.namespace = self.namespace.clone();
        self.stamp(&mut obj);
        let req = requests::create(&self.namespace, &obj);
        let policy = self.client.retry_policy().clone();
        let mut maybe_landed = false;
        let mut attempt = 0;
        loop {
            let err = match self.client.state().create(req.clone()).await {
                Ok(resp) => return self.decode(resp.into_inner().resource).await,
                Err(status) => Error::from(status),
            };
            match err {
                e if e.is_transient() && attempt + 1 < policy.max_attempts => {
                    maybe_landed = true;
                    tokio::time::sleep(policy.delay(attempt)).await;
                    attempt += 1;
                    match self.get_opt(obj.id()).await? {
                        Some(found) => return self.created_by_us(found, &obj),
                        None => continue,
                    }
                }
                Error::AlreadyExists(msg) if maybe_landed => {
                    return match self.get_opt(obj.id()).await? {
                        Some(found) => self.created_by_us(found, &obj),
                        None => Err(Error::AlreadyExists(msg)),
                    };
                }
                e => return Err(e),
            }
        }
    }

    fn created_by_us(&self, found: Object<K>, sent: &Object<K>) -> Result<Object<K>> {
        let same = found.spec == sent.spec
            && found.metadata.labels == sent.metadata.labels
            && found.metadata.annotations == sent.metadata.annotations;
        if same {
            Ok(found)
        } else {
            Err(Error::AlreadyExists(format!(
                "{} {} exists with different content",
                K::TYPE,
                sent.id()
            )))
        }
    }

    /// Get-modify-Update (omni-api.md §1.5): reads the resource, applies `mutate`, and sends it
    /// with the version it read and `expected_phase: running`. Finalizers, phase, owner and
    /// timestamps always come from the read, so controllers' finalizers survive. Nothing is sent
    /// when `mutate` changed nothing. A version conflict (or a transient failure) re-reads and
    /// re-applies `mutate`. The read is [`Api::get`], so a resource created a moment ago is not
    /// reported missing by a lagging read cache (omni-api.md §1.9).
    pub async fn update<F>(&self, id: &str, mut mutate: F) -> Result<Object<K>>
    where
        F: FnMut(&mut Object<K>),
    {
        let _writing = self.client.writing();
        let policy = self.client.retry_policy().clone();
        let mut retry = 0;
        loop {
            let current = self.get(id).await?;
            let mut desired = current.clone();
            mutate(&mut desired);
            {
                let (d, c) = (&mut desired.metadata, &current.metadata);
                d.id.clone_from(&c.id);
                d.namespace.clone_from(&c.namespace);
                d.version = c.version;
                d.owner.clone_from(&c.owner);
                d.phase = c.phase;
                d.finalizers.clone_from(&c.finalizers);
                d.created = c.created;
                d.updated = c.updated;
            }
            if desired == current {
                return Ok(current);
            }
            self.stamp(&mut desired);
            let req = requests::update(&self.namespace, &desired, Some(Phase::Running));
            let err = match self.client.state().update(req).await {
                Ok(resp) => return self.decode(resp.into_inner().resource).await,
                Err(status) => Error::from(status),
            };
            let retryable = matches!(err, Error::Conflict(_)) || err.is_transient();
            if !retryable || retry + 1 >= MAX_CONFLICT_RETRIES.max(policy.max_attempts) {
                return Err(err);
            }
            tracing::debug!(r#type = K::TYPE, %id, retry, error = %err, "re-reading after failed update");
            tokio::time::sleep(policy.delay(retry.min(4))).await;
            retry += 1;
        }
    }

    /// Starts tearing the resource down. Returns `destroy_ready` (no finalizers left). On servers
    /// without the Teardown RPC, does what the Go adapter does (omni-api.md §1.5): Get (with
    /// the NotFound confirmation of [`Api::get`]), then an Update to phase `tearingDown` with the
    /// version read and `expected_phase: running`.
    pub async fn teardown(&self, id: &str) -> Result<bool> {
        let _writing = self.client.writing();
        if !self.client.teardown_unimplemented() {
            let req = requests::teardown(&self.namespace, K::TYPE, id);
            let res = self
                .client
                .retry_idempotent("Teardown", || async {
                    Ok(self
                        .client
                        .state()
                        .teardown(req.clone())
                        .await?
                        .into_inner())
                })
                .await;
            match res {
                Ok(resp) => return Ok(resp.destroy_ready),
                Err(Error::Unimplemented(_)) => self.client.set_teardown_unimplemented(),
                Err(e) => return Err(e),
            }
        }
        let policy = self.client.retry_policy().clone();
        let mut retry = 0;
        loop {
            let current = self.get(id).await?;
            if current.is_tearing_down() {
                return Ok(current.metadata.finalizers.is_empty());
            }
            let mut next = current.clone();
            next.metadata.phase = Phase::TearingDown;
            let req = requests::update(&self.namespace, &next, Some(Phase::Running));
            match self.client.state().update(req).await.map_err(Error::from) {
                Ok(resp) => {
                    let stored = self.decode(resp.into_inner().resource).await?;
                    return Ok(stored.metadata.finalizers.is_empty());
                }
                Err(e)
                    if (matches!(e, Error::Conflict(_)) || e.is_transient())
                        && retry + 1 < MAX_CONFLICT_RETRIES =>
                {
                    tokio::time::sleep(policy.delay(retry.min(4))).await;
                    retry += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Destroys the resource. Fails with Conflict while finalizers remain. A retried call that
    /// finds the resource gone counts as success.
    pub async fn destroy(&self, id: &str) -> Result<()> {
        let _writing = self.client.writing();
        let req = requests::destroy(&self.namespace, K::TYPE, id);
        let mut retried = false;
        let res = self
            .client
            .retry_idempotent("Destroy", || {
                let first = !retried;
                retried = true;
                let req = req.clone();
                async move {
                    match self.client.state().destroy(req).await {
                        Ok(_) => Ok(()),
                        Err(s) => match Error::from(s) {
                            Error::NotFound(_) if !first => Ok(()),
                            e => Err(e),
                        },
                    }
                }
            })
            .await;
        res
    }

    /// Tears down and destroys, waiting until the resource is gone; a missing resource counts as
    /// done. Uses the TeardownAndDestroy RPC; on servers without it (UNIMPLEMENTED) it falls back
    /// to Teardown + watch + Destroy, as omnictl does (omni-api.md §1.5, §5.2). The wait can be
    /// long (a cluster waits for every machine to be wiped): wrap it in a timeout if needed.
    pub async fn teardown_and_destroy(&self, id: &str) -> Result<()> {
        let _writing = self.client.writing();
        if !self.client.teardown_and_destroy_unimplemented() {
            let req = requests::teardown_and_destroy(&self.namespace, K::TYPE, id);
            let res = self
                .client
                .retry_idempotent("TeardownAndDestroy", || async {
                    Ok(self
                        .client
                        .state()
                        .teardown_and_destroy(req.clone())
                        .await?
                        .into_inner())
                })
                .await;
            match res {
                Ok(_) | Err(Error::NotFound(_)) => return Ok(()),
                Err(Error::Unimplemented(_)) => {
                    self.client.set_teardown_and_destroy_unimplemented()
                }
                Err(e) => return Err(e),
            }
        }
        self.teardown_watch_destroy(id).await
    }

    async fn teardown_watch_destroy(&self, id: &str) -> Result<()> {
        let ready = match self.teardown(id).await {
            Ok(ready) => ready,
            Err(Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if ready && self.try_destroy(id).await? {
            return Ok(());
        }
        // Omni may also destroy it by itself once finalizers are gone (auto-destroy, §1.5).
        let mut events = self.watch(WatchParams::single(id));
        while let Some(event) = events.next().await {
            let obj = match event? {
                WatchEvent::Destroyed(_) => return Ok(()),
                WatchEvent::Created(obj) | WatchEvent::Updated { new: obj, .. } => obj,
                WatchEvent::Bootstrapped => continue,
            };
            if obj.is_tearing_down()
                && obj.metadata.finalizers.is_empty()
                && self.try_destroy(id).await?
            {
                return Ok(());
            }
        }
        Err(Error::Unavailable(format!(
            "watch of {} {id} ended before it was destroyed",
            K::TYPE
        )))
    }

    /// Destroy that reports `false` while finalizers remain and `true` when gone.
    async fn try_destroy(&self, id: &str) -> Result<bool> {
        match self.destroy(id).await {
            Ok(()) | Err(Error::NotFound(_)) => Ok(true),
            Err(Error::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Watches one resource or the whole kind (`api_version: 1`). A broken stream reconnects
    /// with backoff from the last bookmark (or re-opens the original watch if none was seen
    /// yet, which may repeat events). An ERRORED event ends the stream with
    /// [`Error::WatchErrored`]; re-watch to continue.
    pub fn watch(&self, params: WatchParams) -> WatchStream<K> {
        let state = WatchState {
            api: self.clone(),
            request: requests::watch(&self.namespace, K::TYPE, &params),
            bookmark: None,
            stream: None,
            pending: VecDeque::new(),
            failures: 0,
            done: false,
        };
        Box::pin(futures::stream::unfold(state, |mut st| async move {
            let item = st.next_event().await?;
            Some((item, st))
        }))
    }
}

struct WatchState<K: ResourceKind> {
    api: Api<K>,
    request: cosi::WatchRequest,
    bookmark: Option<Vec<u8>>,
    stream: Option<tonic::Streaming<cosi::WatchResponse>>,
    pending: VecDeque<cosi::Event>,
    failures: u32,
    done: bool,
}

impl<K: ResourceKind> WatchState<K> {
    fn reconnect_request(&self) -> cosi::WatchRequest {
        let mut req = self.request.clone();
        if let Some(bookmark) = &self.bookmark {
            // Resume exactly like the Go adapter: from the bookmark, no bootstrap, no tail.
            let opts = req.options.get_or_insert_with(Default::default);
            opts.start_from_bookmark = Some(bookmark.clone());
            opts.bootstrap_contents = false;
            opts.bootstrap_bookmark = false;
            opts.tail_events = 0;
        }
        req
    }

    /// Counts a failure; `None` when the stream should give up with the error.
    async fn backoff(&mut self, err: Error) -> Option<Error> {
        let policy = self.api.client.retry_policy().clone();
        if !err.is_transient() || self.failures + 1 >= policy.max_attempts {
            return Some(err);
        }
        tracing::debug!(r#type = K::TYPE, failures = self.failures, error = %err, "watch reconnecting");
        tokio::time::sleep(policy.delay(self.failures)).await;
        self.failures += 1;
        None
    }

    async fn next_event(&mut self) -> Option<Result<WatchEvent<K>>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(event) = self.pending.pop_front() {
                if let Some(b) = &event.bookmark {
                    self.bookmark = Some(b.clone());
                }
                match self.convert(event).await {
                    Ok(Some(ev)) => return Some(Ok(ev)),
                    Ok(None) => continue,
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
            }
            let Some(stream) = self.stream.as_mut() else {
                let req = self.reconnect_request();
                match self.api.client.state().watch(req).await {
                    Ok(resp) => self.stream = Some(resp.into_inner()),
                    Err(status) => {
                        if let Some(err) = self.backoff(status.into()).await {
                            self.done = true;
                            return Some(Err(err));
                        }
                    }
                }
                continue;
            };
            match stream.message().await {
                Ok(Some(resp)) => {
                    self.failures = 0;
                    self.pending.extend(resp.event);
                }
                Ok(None) => {
                    // The server closed the stream: reconnect.
                    self.stream = None;
                    if let Some(err) = self
                        .backoff(Error::Unavailable("watch stream closed".into()))
                        .await
                    {
                        self.done = true;
                        return Some(Err(err));
                    }
                }
                Err(status) => {
                    self.stream = None;
                    if let Some(err) = self.backoff(status.into()).await {
                        self.done = true;
                        return Some(Err(err));
                    }
                }
            }
        }
    }

    async fn convert(&self, event: cosi::Event) -> Result<Option<WatchEvent<K>>> {
        let kind = EventType::try_from(event.event_type)
            .map_err(|_| Error::Decode(format!("unknown event type {}", event.event_type)))?;
        Ok(Some(match kind {
            EventType::Created => WatchEvent::Created(self.api.decode(event.resource).await?),
            EventType::Updated => WatchEvent::Updated {
                new: self.api.decode(event.resource).await?,
                old: match event.old {
                    Some(old) => Some(Box::new(self.api.decode(Some(old)).await?)),
                    None => None,
                },
            },
            EventType::Destroyed => {
                // The last state, or a tombstone: decode without the compressed-data lookup,
                // since the resource no longer exists to be read.
                let resource = event
                    .resource
                    .ok_or_else(|| Error::Decode("DESTROYED without resource".into()))?;
                WatchEvent::Destroyed(Object::<K>::from_proto(resource)?.0)
            }
            EventType::Bootstrapped => WatchEvent::Bootstrapped,
            EventType::Noop => return Ok(None),
            EventType::Errored => {
                return Err(Error::WatchErrored(
                    event.error.unwrap_or_else(|| "unknown watch error".into()),
                ))
            }
        }))
    }
}

/// Pulls `data` out of the server's YAML rendering of a spec, where Go shows compressed fields
/// decompressed (omni-api.md §1.11).
fn data_from_yaml(yaml: &str) -> Option<String> {
    if yaml.trim().is_empty() {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct WithData {
        data: Option<String>,
    }
    serde_norway::from_str::<WithData>(yaml).ok()?.data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_spec_data_is_extracted() {
        assert_eq!(
            data_from_yaml("data: |\n  machine:\n    network: {}\n").as_deref(),
            Some("machine:\n  network: {}\n")
        );
        assert_eq!(data_from_yaml(""), None);
        assert_eq!(data_from_yaml("compresseddata: abc\n"), None);
        assert_eq!(data_from_yaml(": : not yaml ["), None);
    }
}
