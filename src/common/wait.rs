//! Event-driven, bounded waits: a single-resource Watch (never a sleep loop), a deadline, and on
//! timeout a message that says what we waited for and what we last saw.

use std::time::Duration;

use futures::StreamExt;
use omni_client::{Api, Object, ResourceKind, WatchEvent, WatchParams};
use tfplugin::{Ctx, Diagnostic, Result};

use super::errors::omni_error;

/// What a wait's check decided about the latest state.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitDecision {
    /// The condition holds: stop waiting.
    Done,
    /// Not yet.
    Pending,
    /// It will not hold: fail with this text (e.g. Omni's upgrade error).
    Failed(String),
}

/// How often progress is logged at INFO while waiting.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Waits until `check` says [`WaitDecision::Done`] for resource `id` of kind `K` (`None` = the
/// resource does not exist), bounded by `timeout` and by Terraform's stop signal.
///
/// `describe` renders the latest state for progress logs and the timeout message.
pub async fn wait_for<K: ResourceKind>(
    ctx: &Ctx,
    api: &Api<K>,
    id: &str,
    timeout: Duration,
    what: &str,
    mut check: impl FnMut(Option<&Object<K>>) -> WaitDecision + Send,
    describe: impl Fn(Option<&Object<K>>) -> String + Send,
) -> Result<Option<Object<K>>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last: Option<Object<K>> = None;
    let mut seen_any = false;
    let mut last_logged = String::new();
    let mut progress = tokio::time::interval(PROGRESS_EVERY);
    progress.tick().await; // the first tick is immediate
    let mut stream = api.watch(WatchParams::single(id));
    loop {
        tokio::select! {
            event = stream.next() => {
                match event {
                    Some(Ok(WatchEvent::Created(obj))) | Some(Ok(WatchEvent::Updated { new: obj, .. })) => {
                        last = Some(obj);
                    }
                    Some(Ok(WatchEvent::Destroyed(_))) => last = None,
                    Some(Ok(WatchEvent::Bootstrapped)) => continue,
                    Some(Err(err)) => {
                        return Err(omni_error(&format!("waiting for {what}"), err));
                    }
                    None => {
                        // The client already reconnects with backoff; a closed stream means the
                        // server ended it. Open a fresh one (it starts with the current state).
                        stream = api.watch(WatchParams::single(id));
                        continue;
                    }
                }
                seen_any = true;
                match check(last.as_ref()) {
                    WaitDecision::Done => return Ok(last),
                    WaitDecision::Pending => {}
                    WaitDecision::Failed(reason) => {
                        return Err(Diagnostic::error(
                            format!("Failed waiting for {what}"),
                            reason,
                        )
                        .into());
                    }
                }
            }
            _ = progress.tick() => {
                let now = describe(last.as_ref());
                if seen_any && now != last_logged {
                    tracing::info!(target: "omni", waiting_for = what, status = now.as_str(), "still waiting");
                    last_logged = now;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                let seen = if seen_any { describe(last.as_ref()) } else { "no answer from Omni yet".to_string() };
                return Err(Diagnostic::error(
                    format!("Timed out waiting for {what}"),
                    format!(
                        "Gave up after {} waiting for {what}. Last seen: {seen}. \
                         Raise the limit with the `timeouts` attribute if this is expected to take longer.",
                        super::timeouts::format_duration(timeout)
                    ),
                )
                .into());
            }
            _ = ctx.stopping() => {
                return Err(Diagnostic::error(
                    format!("Interrupted while waiting for {what}"),
                    "Terraform asked the provider to stop. The change may still complete in Omni; \
                     the next plan shows where it got to.",
                )
                .into());
            }
        }
    }
}
