//! The resource store: COSI storage semantics (omni-api.md §1.5–§1.8) over [`Res`].
//!
//! One mutex guards the data, the event history and the log queue, so the order of writes, of
//! watch events and of log records is the same. Writers release the lock before they wait for
//! the log's fsync, so many writes share one fsync (group commit).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::broadcast;

use crate::model::{Phase, Pointer, Res, Time};
use crate::query::Filter;
use crate::wal::{self, Record, Wal};

/// Errors of storage operations; each maps to one gRPC code (§1.7).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// NotFound.
    #[error("resource {0} doesn't exist")]
    NotFound(String),
    /// AlreadyExists.
    #[error("resource {0} already exists")]
    AlreadyExists(String),
    /// FailedPrecondition: version mismatch on update.
    #[error(
        "resource {ptr} update conflict: expected version {expected:?}, actual version {actual:?}"
    )]
    VersionConflict {
        /// Pointer text.
        ptr: String,
        /// Version the client sent.
        expected: String,
        /// Stored version.
        actual: String,
    },
    /// FailedPrecondition: Destroy with finalizers.
    #[error("resource {0} has pending finalizers {1}")]
    PendingFinalizers(String, String),
    /// PermissionDenied: owner mismatch.
    #[error("resource {0} is owned by {1:?}")]
    OwnerConflict(String, String),
    /// InvalidArgument: expected phase mismatch.
    #[error("resource {0} is not in phase {1}")]
    PhaseConflict(String, String),
    /// Internal: the durable log failed.
    #[error("storage failure: {0}")]
    Io(String),
}

/// Kind of a change event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvKind {
    /// Created.
    Created,
    /// Updated.
    Updated,
    /// Destroyed.
    Destroyed,
}

/// One change, as seen by watchers.
#[derive(Debug)]
pub struct Ev {
    /// Position in the store's event sequence (used in bookmarks).
    pub pos: u64,
    /// Kind.
    pub kind: EvKind,
    /// New state (last state for Destroyed).
    pub res: Arc<Res>,
    /// Previous state, for Updated.
    pub old: Option<Arc<Res>>,
}

const HISTORY: usize = 8192;
const BROADCAST: usize = 1 << 16;

type Kind = (String, String);

struct Inner {
    data: HashMap<Kind, BTreeMap<String, Arc<Res>>>,
    wal: Option<Wal>,
    history: VecDeque<Arc<Ev>>,
    pos: u64,
}

/// The store. Cheap to share behind an `Arc`.
pub struct Store {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Arc<Ev>>,
    durable: Option<tokio::sync::watch::Receiver<u64>>,
    /// Random per-process bookmark cookie (bookmarks do not survive a restart).
    cookie: u64,
    read_lag: Duration,
    lagged: Mutex<HashMap<Kind, BTreeMap<String, Arc<Res>>>>,
}

/// What a new watch starts with.
pub struct Subscription {
    /// Current matching resources (only when bootstrap was asked for), sorted by ID.
    pub initial: Vec<Arc<Res>>,
    /// Replayed history events (tail / bookmark).
    pub replay: Vec<Arc<Ev>>,
    /// Live events.
    pub rx: broadcast::Receiver<Arc<Ev>>,
    /// Bookmark of the position the watch starts at.
    pub bookmark: Vec<u8>,
}

/// Parameters of a watch.
#[derive(Clone, Copy)]
pub struct WatchSpec<'a> {
    /// Namespace.
    pub ns: &'a str,
    /// Type.
    pub typ: &'a str,
    /// Single-resource watch ID.
    pub id: Option<&'a str>,
    /// Label / ID filter (kind watches).
    pub filter: &'a Filter,
    /// Send the current contents first.
    pub bootstrap: bool,
    /// Replay this many past events.
    pub tail_events: i32,
    /// Resume after this bookmark.
    pub from_bookmark: Option<&'a [u8]>,
}

impl<'a> WatchSpec<'a> {
    /// A kind watch with no options.
    pub fn kind(ns: &'a str, typ: &'a str, filter: &'a Filter) -> WatchSpec<'a> {
        WatchSpec {
            ns,
            typ,
            id: None,
            filter,
            bootstrap: false,
            tail_events: 0,
            from_bookmark: None,
        }
    }
}

/// Why a watch could not start.
#[derive(Debug)]
pub enum WatchStartError {
    /// The bookmark is unknown or too old.
    BadBookmark,
}

impl Inner {
    /// The stored resource `ns/typ/id`, which `owner` must own to change it (§1.5); `gone`
    /// names it in the NotFound error.
    fn owned(
        &self,
        ns: &str,
        typ: &str,
        id: &str,
        owner: &str,
        gone: impl FnOnce() -> String,
    ) -> Result<Arc<Res>, StoreError> {
        let cur = self
            .data
            .get(&(ns.to_string(), typ.to_string()))
            .and_then(|m| m.get(id))
            .cloned()
            .ok_or_else(|| StoreError::NotFound(gone()))?;
        if cur.owner != owner {
            return Err(StoreError::OwnerConflict(
                cur.pointer().to_string(),
                cur.owner.clone(),
            ));
        }
        Ok(cur)
    }
}

impl Store {
    /// A store without persistence (for unit tests).
    pub fn in_memory() -> Arc<Store> {
        Self::build(BTreeMap::new(), None, Duration::ZERO)
    }

    /// Opens (or creates) the persistent store in `dir`.
    pub fn open(dir: &Path, read_lag: Duration) -> std::io::Result<Arc<Store>> {
        let (state, wal) = wal::open(dir)?;
        Ok(Self::build(state, Some(wal), read_lag))
    }

    fn build(state: BTreeMap<wal::Key, Res>, wal: Option<Wal>, read_lag: Duration) -> Arc<Store> {
        let mut data: HashMap<Kind, BTreeMap<String, Arc<Res>>> = HashMap::new();
        for ((ns, typ, id), r) in state {
            data.entry((ns, typ)).or_default().insert(id, Arc::new(r));
        }
        let (events, _) = broadcast::channel(BROADCAST);
        let durable = wal.as_ref().map(Wal::durable);
        let lagged = data.clone();
        let store = Arc::new(Store {
            inner: Mutex::new(Inner {
                data,
                wal,
                history: VecDeque::with_capacity(HISTORY),
                pos: 0,
            }),
            events,
            durable,
            cookie: rand::random(),
            read_lag,
            lagged: Mutex::new(lagged),
        });
        if !read_lag.is_zero() {
            store.start_lagged_view();
        }
        store
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-operation; the map itself is
        // always left consistent because every mutation is a single insert/remove.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies the eventually consistent read cache of §1.9: reads see writes `read_lag` late.
    ///
    /// Like Omni's cache, which is fed by one watch, events are applied one at a time in the
    /// order they were written, each `read_lag` after it happened. (Applying each event on its
    /// own timer let a Destroy overtake the Teardown just before it, which left a ghost.)
    fn start_lagged_view(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let mut rx = self.events.subscribe();
        let lag = self.read_lag;
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (due_tx, mut due_rx) =
            tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Arc<Ev>)>();
        handle.spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => {
                        if due_tx
                            .send((tokio::time::Instant::now() + lag, ev))
                            .is_err()
                        {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                }
            }
        });
        handle.spawn(async move {
            while let Some((due, ev)) = due_rx.recv().await {
                tokio::time::sleep_until(due).await;
                let Some(store) = weak.upgrade() else { return };
                let mut l = store.lagged.lock().unwrap_or_else(|e| e.into_inner());
                let m = l
                    .entry((ev.res.namespace.clone(), ev.res.typ.clone()))
                    .or_default();
                match ev.kind {
                    EvKind::Destroyed => {
                        if m.get(&ev.res.id)
                            .is_some_and(|c| c.version <= ev.res.version)
                        {
                            m.remove(&ev.res.id);
                        }
                    }
                    _ => {
                        if m.get(&ev.res.id).is_none_or(|c| c.version < ev.res.version) {
                            m.insert(ev.res.id.clone(), ev.res.clone());
                        }
                    }
                }
            }
        });
    }

    /// Reads one resource from the primary store.
    pub fn get(&self, ns: &str, typ: &str, id: &str) -> Option<Arc<Res>> {
        let g = self.lock();
        g.data
            .get(&(ns.to_string(), typ.to_string()))
            .and_then(|m| m.get(id).cloned())
    }

    /// Reads one resource the way a client sees it (through the lagging cache when enabled).
    pub fn get_cached(&self, ns: &str, typ: &str, id: &str) -> Option<Arc<Res>> {
        if self.read_lag.is_zero() {
            return self.get(ns, typ, id);
        }
        let l = self.lagged.lock().unwrap_or_else(|e| e.into_inner());
        l.get(&(ns.to_string(), typ.to_string()))
            .and_then(|m| m.get(id).cloned())
    }

    /// Lists matching resources sorted by ID.
    pub fn list(&self, ns: &str, typ: &str, filter: &Filter) -> Vec<Arc<Res>> {
        let g = self.lock();
        g.data
            .get(&(ns.to_string(), typ.to_string()))
            .map(|m| m.values().filter(|r| filter.matches(r)).cloned().collect())
            .unwrap_or_default()
    }

    /// Lists the way a client sees it (through the lagging cache when enabled).
    pub fn list_cached(&self, ns: &str, typ: &str, filter: &Filter) -> Vec<Arc<Res>> {
        if self.read_lag.is_zero() {
            return self.list(ns, typ, filter);
        }
        let l = self.lagged.lock().unwrap_or_else(|e| e.into_inner());
        l.get(&(ns.to_string(), typ.to_string()))
            .map(|m| m.values().filter(|r| filter.matches(r)).cloned().collect())
            .unwrap_or_default()
    }

    /// Number of stored resources (all kinds).
    pub fn len(&self) -> usize {
        self.lock().data.values().map(BTreeMap::len).sum()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn commit(&self, g: &mut Inner, kind: EvKind, res: Arc<Res>, old: Option<Arc<Res>>) -> u64 {
        let key = (res.namespace.clone(), res.typ.clone());
        let seq = match &mut g.wal {
            Some(w) => {
                let rec = if kind == EvKind::Destroyed {
                    Record::delete(&res.namespace, &res.typ, &res.id)
                } else {
                    Record::put(&res)
                };
                w.append(&rec)
            }
            None => 0,
        };
        let m = g.data.entry(key).or_default();
        if kind == EvKind::Destroyed {
            m.remove(&res.id);
        } else {
            m.insert(res.id.clone(), res.clone());
        }
        g.pos += 1;
        let ev = Arc::new(Ev {
            pos: g.pos,
            kind,
            res,
            old,
        });
        if g.history.len() == HISTORY {
            g.history.pop_front();
        }
        g.history.push_back(ev.clone());
        let _ = self.events.send(ev);
        seq
    }

    async fn durable(&self, seq: u64) -> Result<(), StoreError> {
        match &self.durable {
            Some(rx) if seq > 0 => wal::wait_durable(rx.clone(), seq)
                .await
                .map_err(|e| StoreError::Io(e.to_string())),
            _ => Ok(()),
        }
    }

    /// Create (§1.5): fails if the ID exists; version 1, created = updated = now, owner from
    /// the options.
    pub async fn create(&self, mut r: Res, owner: &str) -> Result<Arc<Res>, StoreError> {
        let (res, seq) = {
            let mut g = self.lock();
            let key = (r.namespace.clone(), r.typ.clone());
            if let Some(cur) = g.data.get(&key).and_then(|m| m.get(&r.id)) {
                return Err(StoreError::AlreadyExists(cur.pointer().to_string()));
            }
            let now = Time::now();
            r.version = 1;
            r.created = now;
            r.updated = now;
            r.owner = owner.to_string();
            let res = Arc::new(r);
            let seq = self.commit(&mut g, EvKind::Created, res.clone(), None);
            (res, seq)
        };
        self.durable(seq).await?;
        Ok(res)
    }

    /// Update (§1.5): whole metadata replaced, version checked and bumped, created preserved.
    pub async fn update(
        &self,
        mut r: Res,
        owner: &str,
        expected_phase: Option<Phase>,
    ) -> Result<Arc<Res>, StoreError> {
        let (res, seq) = {
            let mut g = self.lock();
            let cur = g.owned(&r.namespace, &r.typ, &r.id, owner, || {
                r.pointer().to_string()
            })?;
            if cur.version != r.version {
                return Err(StoreError::VersionConflict {
                    ptr: cur.pointer().to_string(),
                    expected: r.version_str(),
                    actual: cur.version_str(),
                });
            }
            if let Some(p) = expected_phase {
                if cur.phase != p {
                    return Err(StoreError::PhaseConflict(
                        cur.pointer().to_string(),
                        p.as_str().to_string(),
                    ));
                }
            }
            r.version = cur.version + 1;
            r.created = cur.created;
            r.updated = Time::now();
            r.owner = cur.owner.clone();
            let res = Arc::new(r);
            let seq = self.commit(&mut g, EvKind::Updated, res.clone(), Some(cur));
            (res, seq)
        };
        self.durable(seq).await?;
        Ok(res)
    }

    /// Destroy (§1.5): owner must match and no finalizers may remain.
    pub async fn destroy(
        &self,
        ns: &str,
        typ: &str,
        id: &str,
        owner: &str,
    ) -> Result<(), StoreError> {
        let seq = {
            let mut g = self.lock();
            let cur = g.owned(ns, typ, id, owner, || missing(ns, typ, id))?;
            if !cur.finalizers.is_empty() {
                return Err(StoreError::PendingFinalizers(
                    cur.pointer().to_string(),
                    format!("[{}]", cur.finalizers.join(" ")),
                ));
            }
            self.commit(&mut g, EvKind::Destroyed, cur, None)
        };
        self.durable(seq).await
    }

    /// Teardown (§1.5): phase → tearingDown (idempotent); returns whether no finalizers remain.
    pub async fn teardown(
        &self,
        ns: &str,
        typ: &str,
        id: &str,
        owner: &str,
    ) -> Result<bool, StoreError> {
        let (ready, seq) = {
            let mut g = self.lock();
            let cur = g.owned(ns, typ, id, owner, || missing(ns, typ, id))?;
            let ready = cur.finalizers.is_empty();
            if cur.phase == Phase::TearingDown {
                (ready, 0)
            } else {
                let mut r = (*cur).clone();
                r.phase = Phase::TearingDown;
                r.version += 1;
                r.updated = Time::now();
                let seq = self.commit(&mut g, EvKind::Updated, Arc::new(r), Some(cur));
                (ready, seq)
            }
        };
        self.durable(seq).await?;
        Ok(ready)
    }

    /// Read-modify-write helper for controllers: applies `f` to the current state and updates
    /// it if `f` returns true. Retries on version conflicts. Returns the new state, or `None`
    /// if the resource is gone.
    pub async fn modify(
        &self,
        ns: &str,
        typ: &str,
        id: &str,
        mut f: impl FnMut(&mut Res) -> bool,
    ) -> Result<Option<Arc<Res>>, StoreError> {
        loop {
            let Some(cur) = self.get(ns, typ, id) else {
                return Ok(None);
            };
            let mut r = (*cur).clone();
            if !f(&mut r) {
                return Ok(Some(cur));
            }
            let owner = cur.owner.clone();
            match self.update(r, &owner, None).await {
                Ok(r) => return Ok(Some(r)),
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(StoreError::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Subscribes to every event (controllers filter themselves).
    pub fn subscribe_all(&self) -> broadcast::Receiver<Arc<Ev>> {
        self.events.subscribe()
    }

    /// Starts a watch: takes the bootstrap snapshot and history replay atomically with the
    /// subscription, so no event is lost or duplicated (§1.8).
    pub fn watch(&self, w: &WatchSpec<'_>) -> Result<Subscription, WatchStartError> {
        let WatchSpec {
            ns,
            typ,
            id,
            filter,
            bootstrap,
            tail_events,
            from_bookmark,
        } = *w;
        let g = self.lock();
        let rx = self.events.subscribe();
        let wanted =
            |e: &Ev| e.res.namespace == ns && e.res.typ == typ && id.is_none_or(|i| e.res.id == i);
        let mut replay = Vec::new();
        if let Some(bm) = from_bookmark {
            let pos = self
                .parse_bookmark(bm)
                .ok_or(WatchStartError::BadBookmark)?;
            if pos > g.pos {
                return Err(WatchStartError::BadBookmark);
            }
            let oldest = g.history.front().map(|e| e.pos).unwrap_or(g.pos + 1);
            if pos + 1 < oldest && pos < g.pos {
                return Err(WatchStartError::BadBookmark);
            }
            replay = g
                .history
                .iter()
                .filter(|e| e.pos > pos && wanted(e))
                .cloned()
                .collect();
        } else if tail_events > 0 {
            let mut v: Vec<Arc<Ev>> = g
                .history
                .iter()
                .rev()
                .filter(|e| wanted(e))
                .take(tail_events as usize)
                .cloned()
                .collect();
            v.reverse();
            replay = v;
        }
        let mut initial = Vec::new();
        if bootstrap || id.is_some() {
            if let Some(m) = g.data.get(&(ns.to_string(), typ.to_string())) {
                match id {
                    Some(i) => initial.extend(m.get(i).cloned()),
                    None => initial.extend(m.values().filter(|r| filter.matches(r)).cloned()),
                }
            }
        }
        Ok(Subscription {
            initial,
            replay,
            rx,
            bookmark: self.bookmark(g.pos),
        })
    }

    /// Opaque bookmark for a position: 8-byte cookie + 8-byte big-endian position.
    pub fn bookmark(&self, pos: u64) -> Vec<u8> {
        let mut v = self.cookie.to_be_bytes().to_vec();
        v.extend_from_slice(&pos.to_be_bytes());
        v
    }

    fn parse_bookmark(&self, bm: &[u8]) -> Option<u64> {
        if bm.len() != 16 || bm[..8] != self.cookie.to_be_bytes() {
            return None;
        }
        let mut p = [0u8; 8];
        p.copy_from_slice(&bm[8..]);
        Some(u64::from_be_bytes(p))
    }
}

fn missing(ns: &str, typ: &str, id: &str) -> String {
    Pointer {
        typ,
        ns,
        id,
        version: 0,
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(id: &str) -> Res {
        Res::new("default", "Things.test", id, b"spec".to_vec())
    }

    #[tokio::test]
    async fn create_update_destroy_rules() {
        let s = Store::in_memory();
        let a = s.create(res("a"), "").await.unwrap();
        assert_eq!(a.version, 1);
        assert!(matches!(
            s.create(res("a"), "").await,
            Err(StoreError::AlreadyExists(_))
        ));
        let mut u = (*a).clone();
        u.finalizers.push("F".into());
        let u2 = s.update(u.clone(), "", Some(Phase::Running)).await.unwrap();
        assert_eq!(u2.version, 2);
        assert_eq!(u2.created, a.created);
        let err = s.update(u.clone(), "", None).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "resource Things.test(default/a@2) update conflict: expected version \"1\", actual version \"2\""
        );
        assert!(matches!(
            s.update((*u2).clone(), "ctrl", None).await,
            Err(StoreError::OwnerConflict(..))
        ));
        let err = s
            .destroy("default", "Things.test", "a", "")
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "resource Things.test(default/a@2) has pending finalizers [F]"
        );
        assert!(!s.teardown("default", "Things.test", "a", "").await.unwrap());
        let cur = s.get("default", "Things.test", "a").unwrap();
        assert_eq!(cur.phase, Phase::TearingDown);
        assert_eq!(cur.version, 3);
        // idempotent
        assert!(!s.teardown("default", "Things.test", "a", "").await.unwrap());
        assert_eq!(s.get("default", "Things.test", "a").unwrap().version, 3);
        assert!(matches!(
            s.update((*cur).clone(), "", Some(Phase::Running)).await,
            Err(StoreError::PhaseConflict(..))
        ));
        let mut c = (*cur).clone();
        c.finalizers.clear();
        s.update(c, "", None).await.unwrap();
        s.destroy("default", "Things.test", "a", "").await.unwrap();
        let err = s
            .destroy("default", "Things.test", "a", "")
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "resource Things.test(default/a@undefined) doesn't exist"
        );
    }

    #[tokio::test]
    async fn list_sorted_and_watch_replay() {
        let s = Store::in_memory();
        for id in ["c", "a", "b"] {
            s.create(res(id), "").await.unwrap();
        }
        let f = Filter::default();
        let ids: Vec<_> = s
            .list("default", "Things.test", &Filter::default())
            .iter()
            .map(|r| r.id.clone())
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);
        let sub = s
            .watch(&WatchSpec {
                bootstrap: true,
                ..WatchSpec::kind("default", "Things.test", &f)
            })
            .unwrap();
        assert_eq!(sub.initial.len(), 3);
        let sub2 = s
            .watch(&WatchSpec {
                tail_events: 2,
                ..WatchSpec::kind("default", "Things.test", &f)
            })
            .unwrap();
        assert_eq!(sub2.replay.len(), 2);
        s.create(res("d"), "").await.unwrap();
        let sub3 = s
            .watch(&WatchSpec {
                from_bookmark: Some(&sub.bookmark),
                ..WatchSpec::kind("default", "Things.test", &f)
            })
            .unwrap();
        assert_eq!(sub3.replay.len(), 1);
        assert!(s
            .watch(&WatchSpec {
                from_bookmark: Some(b"junk"),
                ..WatchSpec::kind("default", "Things.test", &f)
            })
            .is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lagged_reads_apply_writes_in_order_and_leave_no_ghosts() {
        // Teardown then Destroy in quick succession: the lagged view must end without the
        // resource. Applying the two events out of order would resurrect it for good.
        let lag = Duration::from_millis(50);
        let s = Store::build(BTreeMap::new(), None, lag);
        for i in 0..40 {
            let id = format!("r{i}");
            s.create(res(&id), "").await.unwrap();
            s.teardown("default", "Things.test", &id, "").await.unwrap();
            s.destroy("default", "Things.test", &id, "").await.unwrap();
        }
        let keep = s.create(res("kept"), "").await.unwrap();
        assert!(
            s.get_cached("default", "Things.test", "kept").is_none(),
            "reads lag"
        );
        tokio::time::sleep(lag * 4).await;
        let seen: Vec<String> = s
            .list_cached("default", "Things.test", &Filter::default())
            .iter()
            .map(|r| r.id.clone())
            .collect();
        assert_eq!(seen, vec!["kept".to_string()]);
        assert_eq!(
            s.get_cached("default", "Things.test", "kept")
                .map(|r| r.version),
            Some(keep.version)
        );
    }
}
