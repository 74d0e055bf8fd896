//! Refresh reads in bulk. Terraform refreshes every instance with its own ReadResource, so a
//! plan over 500 config patches makes 500 signed Gets, each a round trip to Omni. After
//! [`GETS_BEFORE_LIST`] reads of one kind in this provider process, the next read makes one List
//! of that kind instead, and the reads that follow within [`SNAPSHOT_TTL`] are answered from it.
//!
//! What keeps this as correct as single Gets:
//! - a snapshot stands only while the client's write epoch is the one seen before the List
//!   started: any create, update or delete through this provider's client (during the List or
//!   after it) retires it;
//! - an ID the snapshot does not hold is read with a Get (with its NotFound confirmation,
//!   omni-api.md §1.9), so an object created after the List is still found;
//! - a List that fails is not an error: the reads fall back to Gets for the rest of the process.
//!
//! A snapshot can be as old as the TTL, which is no older than what a plan of that length sees
//! anyway: Terraform's refresh is not one atomic read either.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use omni_client::{Api, Error, ListParams, Object, ResourceKind};

/// Reads of one kind answered by single Gets before the provider switches to a List. Small
/// configurations never list; large refreshes list once.
pub const GETS_BEFORE_LIST: usize = 16;

/// How long a List may stand in for Gets.
pub const SNAPSHOT_TTL: Duration = Duration::from_secs(10);

/// Per-process state of bulk reads, one entry per resource kind.
#[derive(Default)]
pub struct ReadCache {
    kinds: Mutex<HashMap<&'static str, Arc<KindCache>>>,
}

impl std::fmt::Debug for ReadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadCache").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct KindCache {
    reads: AtomicUsize,
    /// A List failed: Gets only from now on.
    disabled: AtomicBool,
    /// Held while a List runs, so concurrent reads wait for it instead of listing too.
    snapshot: tokio::sync::Mutex<Option<Snapshot>>,
}

struct Snapshot {
    taken: Instant,
    epoch: u64,
    /// `HashMap<String, Object<K>>` for the kind this entry belongs to.
    objects: Arc<dyn Any + Send + Sync>,
}

impl ReadCache {
    fn kind(&self, name: &'static str) -> Arc<KindCache> {
        let mut kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        kinds.entry(name).or_default().clone()
    }

    /// Reads `id` for a refresh: `None` when it does not exist.
    pub async fn get<K: ResourceKind>(
        &self,
        api: &Api<K>,
        id: &str,
    ) -> Result<Option<Object<K>>, Error> {
        let kind = self.kind(K::TYPE);
        let n = kind.reads.fetch_add(1, Ordering::Relaxed);
        if n < GETS_BEFORE_LIST || kind.disabled.load(Ordering::Relaxed) {
            return api.get_opt(id).await;
        }
        match kind.objects::<K>(api).await {
            Some(objects) => match objects.get(id) {
                Some(obj) => Ok(Some(obj.clone())),
                None => api.get_opt(id).await,
            },
            None => api.get_opt(id).await,
        }
    }
}

impl KindCache {
    /// The current snapshot of kind `K`, listing when there is none, it is too old, or a write
    /// ran since. `None` when listing failed (and Gets should be used).
    async fn objects<K: ResourceKind>(
        &self,
        api: &Api<K>,
    ) -> Option<Arc<HashMap<String, Object<K>>>> {
        let mut slot = self.snapshot.lock().await;
        let epoch = api.client().write_epoch();
        if let Some(s) = slot.as_ref() {
            if s.epoch == epoch && s.taken.elapsed() < SNAPSHOT_TTL {
                return s.objects.clone().downcast().ok();
            }
        }
        *slot = None;
        let started = Instant::now();
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                let objects: HashMap<String, Object<K>> =
                    list.into_iter().map(|o| (o.id().to_string(), o)).collect();
                tracing::debug!(
                    kind = K::TYPE,
                    count = objects.len(),
                    took_ms = started.elapsed().as_millis() as u64,
                    "refresh reads served from one List"
                );
                let objects = Arc::new(objects);
                // A write that started or ended while the List ran makes it unusable.
                if api.client().write_epoch() == epoch {
                    *slot = Some(Snapshot {
                        taken: started,
                        epoch,
                        objects: objects.clone(),
                    });
                    Some(objects)
                } else {
                    None
                }
            }
            Err(e) => {
                tracing::debug!(kind = K::TYPE, error = %e, "List failed; reading with Gets");
                self.disabled.store(true, Ordering::Relaxed);
                None
            }
        }
    }
}
