//! Delete = Teardown, then wait until the resource is gone (issue 5's bar), bounded by the
//! resource's `timeouts.delete`.

use std::time::Duration;

use futures::StreamExt;
use omni_client::{Api, Error, Object, ResourceKind, WatchEvent, WatchParams};
use tfplugin::{Ctx, Result};

use super::errors::omni_error;
use super::wait::{wait_for, WaitDecision};

/// Tears down `id` and waits (event-driven, bounded by `timeout`) until Omni has destroyed it.
///
/// A missing resource is success. When Teardown reports no finalizers left, the resource is
/// destroyed right away; otherwise Omni's auto-destroy removes it once its controllers let go
/// (omni-api.md §1.5 "Auto-destroy"), which is what the wait observes.
pub async fn teardown_and_wait<K: ResourceKind>(
    ctx: &Ctx,
    api: &Api<K>,
    id: &str,
    timeout: Duration,
    what: &str,
) -> Result<()> {
    let ready = match api.teardown(id).await {
        Ok(ready) => ready,
        Err(Error::NotFound(_)) => return Ok(()),
        Err(e) => return Err(omni_error(&format!("deleting {what}"), e)),
    };
    if ready {
        match api.destroy(id).await {
            Ok(()) | Err(Error::NotFound(_)) => return Ok(()),
            // A controller added a finalizer in between: wait for auto-destroy below.
            Err(Error::Conflict(_)) => {}
            Err(e) => return Err(omni_error(&format!("deleting {what}"), e)),
        }
    }
    wait_for(
        ctx,
        api,
        id,
        timeout,
        &format!("{what} to be deleted"),
        |obj| match obj {
            None => WaitDecision::Done,
            Some(_) => WaitDecision::Pending,
        },
        |obj| match obj {
            None => "gone".to_string(),
            Some(o) if o.metadata.finalizers.is_empty() => {
                format!("phase {}", o.metadata.phase.as_str())
            }
            Some(o) => format!(
                "phase {}, held by {}",
                o.metadata.phase.as_str(),
                o.metadata.finalizers.join(", ")
            ),
        },
    )
    .await?;
    Ok(())
}

/// Creates `obj`; when an object with its ID is still on its way out (tearing down, e.g. the
/// one Terraform just replaced or one Omni's cascade is removing, omni-api.md §5.1), waits up to
/// `timeout` for it to be gone and creates again. Any other AlreadyExists is returned as is.
pub async fn create_replacing_dying<K: ResourceKind>(
    ctx: &Ctx,
    api: &Api<K>,
    obj: Object<K>,
    timeout: Duration,
    what: &str,
) -> std::result::Result<Object<K>, Error> {
    let first = api.create(obj.clone()).await;
    let Err(Error::AlreadyExists(msg)) = first else {
        return first;
    };
    match api.get_opt(obj.id()).await? {
        Some(existing) if existing.is_tearing_down() => {}
        _ => return Err(Error::AlreadyExists(msg)),
    }
    tracing::info!(target: "omni", id = obj.id(), "waiting for the previous {what} to be destroyed");
    let gone = async {
        let mut events = api.watch(WatchParams::single(obj.id()));
        while let Some(ev) = events.next().await {
            if let WatchEvent::Destroyed(_) = ev? {
                return Ok(());
            }
        }
        Err(Error::Unavailable(format!(
            "watch of {what} {} ended",
            obj.id()
        )))
    };
    tokio::select! {
        r = tokio::time::timeout(timeout, gone) => match r {
            Ok(r) => r?,
            Err(_) => return Err(Error::DeadlineExceeded(format!(
                "{what} {} is still being destroyed by Omni after {}",
                obj.id(),
                super::timeouts::format_duration(timeout)
            ))),
        },
        _ = ctx.stopping() => return Err(Error::Unavailable("interrupted by Terraform".into())),
    }
    api.create(obj).await
}

/// What [`create_or_adopt`] did.
#[derive(Debug)]
pub enum Adoption<K: ResourceKind> {
    /// The object was missing (or dying) and is now created from ours.
    Created,
    /// Omni already held a live object with this ID, as read before creating anything.
    Found(Box<Object<K>>),
    /// Omni created the object between our read and our create; it was not read.
    Raced,
}

/// Creates `obj` unless Omni already holds a live object with its ID, for the per-machine
/// objects Omni may make itself (KernelArgs, MachineLabels: omni-api.md §3.3), which a resource
/// adopts instead of failing. A dying predecessor is waited out as in [`create_replacing_dying`].
pub async fn create_or_adopt<K: ResourceKind>(
    ctx: &Ctx,
    api: &Api<K>,
    obj: Object<K>,
    timeout: Duration,
    what: &str,
) -> std::result::Result<Adoption<K>, Error> {
    if let Some(existing) = api.get_opt(obj.id()).await? {
        if !existing.is_tearing_down() {
            return Ok(Adoption::Found(Box::new(existing)));
        }
    }
    // Missing, or on its way out (e.g. just deleted): create, waiting out the old one.
    match create_replacing_dying(ctx, api, obj, timeout, what).await {
        Ok(_) => Ok(Adoption::Created),
        Err(Error::AlreadyExists(_)) => Ok(Adoption::Raced),
        Err(e) => Err(e),
    }
}

/// Reads `id` for a Terraform refresh; missing is `None`. Omni serves Get from a cache that can
/// lag behind a write just made (omni-api.md §1.9); `Api::get_opt` confirms a NotFound with a
/// single-resource Watch, so an object created a moment ago is not dropped from the state and
/// planned for creation again. Large refreshes read through one List per kind
/// ([`super::read_cache`]).
pub async fn get_for_read<K: ResourceKind>(
    ctx: &Ctx,
    api: &Api<K>,
    id: &str,
) -> std::result::Result<Option<Object<K>>, Error> {
    match super::configured(ctx) {
        Ok(configured) => configured.reads.get(api, id).await,
        Err(_) => api.get_opt(id).await,
    }
}
