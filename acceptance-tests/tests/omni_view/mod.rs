//! What Omni holds, read with the typed client (a second opinion next to the Terraform state).
#![allow(dead_code)]

use acceptance_tests::Omni;
use anyhow::Result;
use omni_client::{Api, Client, ListParams, ResourceKind, ServiceAccountKey};

/// A client signed with the harness's service-account key (build it inside [`block_on`]).
pub fn client(omni: &Omni) -> Result<Client> {
    Ok(Client::builder(omni.endpoint.clone())
        .service_account(ServiceAccountKey::from_base64(&omni.service_account_key)?)
        .build()?)
}

/// Runs one future to completion on a fresh current-thread runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

/// IDs of every `K` in its default namespace, sorted.
pub fn ids<K: ResourceKind>(omni: &Omni) -> Result<Vec<String>> {
    // The client's channel needs a running runtime from the moment it is built.
    let objects = block_on(async {
        let api: Api<K> = Api::new(client(omni)?);
        anyhow::Ok(api.list(&ListParams::default()).await?)
    })?;
    let mut ids: Vec<String> = objects.into_iter().map(|o| o.metadata.id).collect();
    ids.sort();
    Ok(ids)
}

/// IDs of every `K` starting with `prefix`.
pub fn ids_with_prefix<K: ResourceKind>(omni: &Omni, prefix: &str) -> Result<Vec<String>> {
    Ok(ids::<K>(omni)?
        .into_iter()
        .filter(|id| id.starts_with(prefix))
        .collect())
}
