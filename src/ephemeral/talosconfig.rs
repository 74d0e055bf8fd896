//! `omni_talosconfig` (ephemeral): a talosconfig from Omni's management API, never written to
//! plan or state (omni-api.md §6 `Talosconfig`). Shared with the `omni_talosconfig` data source.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use talos_machinery::yaml::{self, Value as Yaml};
use tfplugin::{
    async_trait, Attribute, AttributePath, Ctx, Diagnostic, Diagnostics, EphemeralResource,
    PrivateState, Result, Schema, Type, Value,
};

use crate::common;

const DESCRIPTION: &str = "\
Fetches a talosconfig from Omni **without storing it**: the value exists only while Terraform \
runs and never reaches the plan or the state (Terraform 1.10 or newer, OpenTofu 1.11 or newer).

Omni's talosconfig points `talosctl` at Omni itself, which proxies the Talos API and \
authenticates the caller with their Omni identity. Without `cluster` it covers the whole \
instance; with `cluster` its context is that cluster's.";

/// Configuration and result (shared with the data source).
#[derive(Clone, Serialize, Deserialize)]
pub struct TalosconfigState {
    /// Cluster name, or null for the instance.
    pub cluster: Value<String>,
    /// The talosconfig YAML.
    pub talosconfig_raw: Value<String>,
    /// Its current context.
    pub context: Value<String>,
    /// Endpoints of the current context.
    pub endpoints: Value<Vec<String>>,
}

impl std::fmt::Debug for TalosconfigState {
    // Hand-written: the talosconfig must never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TalosconfigState")
            .field("cluster", &self.cluster)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

/// The schema; `all_sensitive` marks every output sensitive (data source).
pub fn schema(description: &str, all_sensitive: bool) -> Schema {
    let out = |a: Attribute| if all_sensitive { a.sensitive() } else { a };
    Schema::new(description)
        .attribute(Attribute::string("cluster").optional().description(
            "Cluster name; without it the talosconfig covers the whole Omni instance.",
        ))
        .attribute(
            Attribute::string("talosconfig_raw")
                .computed()
                .sensitive()
                .description("The talosconfig as YAML."),
        )
        .attribute(out(Attribute::string("context")
            .computed()
            .description("Name of the talosconfig's current context.")))
        .attribute(out(Attribute::list("endpoints", Type::String)
            .computed()
            .description("Endpoints of the current context (Omni's API URL).")))
}

fn get<'a>(map: &'a Yaml, key: &str) -> Option<&'a Yaml> {
    match map {
        Yaml::Map(entries) => entries
            .iter()
            .find(|(k, _)| matches!(k, Yaml::String(s) if s == key))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// The current context and its endpoints.
pub fn parse_talosconfig(text: &str) -> std::result::Result<(String, Vec<String>), String> {
    let docs = yaml::parse_documents(text, Some(1)).map_err(|e| e.0)?;
    let doc = yaml::to_value(docs.first().ok_or("the talosconfig is empty")?).map_err(|e| e.0)?;
    let Some(Yaml::String(context)) = get(&doc, "context") else {
        return Err("the talosconfig has no current context".into());
    };
    let endpoints = get(&doc, "contexts")
        .and_then(|cs| get(cs, context))
        .and_then(|c| get(c, "endpoints"))
        .map(|e| match e {
            Yaml::Seq(items) => items
                .iter()
                .filter_map(|i| match i {
                    Yaml::String(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        })
        .unwrap_or_default();
    Ok((context.clone(), endpoints))
}

/// Fetches the talosconfig and fills every output of `c`.
pub async fn fetch(ctx: &Ctx, mut c: TalosconfigState) -> Result<TalosconfigState> {
    let cluster = c.cluster.clone().known();
    let client = common::client(ctx)?;
    let bytes = client
        .talosconfig(cluster.as_deref(), false)
        .await
        .map_err(|e| {
            let what = match &cluster {
                Some(name) => format!("getting the talosconfig of cluster {name:?}"),
                None => "getting the talosconfig".to_string(),
            };
            common::omni_error_at(&what, e, AttributePath::new("cluster"))
        })?
        .into_inner();
    let raw = String::from_utf8(bytes).map_err(|_| {
        Diagnostics::from(Diagnostic::error(
            "Invalid talosconfig",
            "Omni returned a talosconfig that is not UTF-8 text.",
        ))
    })?;
    let (context, endpoints) = parse_talosconfig(&raw).map_err(|e| {
        Diagnostics::from(Diagnostic::error(
            "Invalid talosconfig",
            format!("Omni returned a talosconfig that cannot be read: {e}"),
        ))
    })?;
    c.context = Value::Known(context);
    c.endpoints = Value::Known(endpoints);
    c.talosconfig_raw = Value::Known(raw);
    Ok(c)
}

/// The `omni_talosconfig` ephemeral resource.
pub struct TalosconfigEphemeral;

#[async_trait]
impl EphemeralResource for TalosconfigEphemeral {
    const TYPE_NAME: &'static str = "omni_talosconfig";
    type State = TalosconfigState;

    fn schema(&self) -> Schema {
        schema(DESCRIPTION, false)
    }

    async fn open(
        &self,
        ctx: &Ctx,
        config: TalosconfigState,
        _private: &mut PrivateState,
    ) -> Result<(TalosconfigState, Option<SystemTime>)> {
        Ok((fetch(ctx, config).await?, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_and_endpoints_are_read() {
        let text = "context: acme-lab\ncontexts:\n  acme-lab:\n    endpoints:\n      - https://acme.omni.example\n    auth:\n      siderov1:\n        identity: ci@example.com\n    cluster: lab\n";
        let (ctx, eps) = parse_talosconfig(text).unwrap();
        assert_eq!(ctx, "acme-lab");
        assert_eq!(eps, ["https://acme.omni.example"]);
        assert!(parse_talosconfig("contexts: {}\n").is_err());
        assert!(parse_talosconfig("").is_err());
    }

    #[test]
    fn debug_hides_the_talosconfig() {
        let c = TalosconfigState {
            cluster: Value::Null,
            talosconfig_raw: "secret-bits".into(),
            context: Value::Null,
            endpoints: Value::Null,
        };
        assert!(!format!("{c:?}").contains("secret-bits"));
    }
}
