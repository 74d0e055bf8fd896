//! The gRPC services: tfplugin6.Provider dispatching to the registered
//! resources, plus go-plugin's GRPCController, GRPCStdio and health.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use futures::FutureExt;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::adapter::{decode_typed, DynDataSource, DynEphemeralResource, DynFunction, DynResource};
use crate::diag::{AttributePath, Diagnostic, Diagnostics, PathStep, Severity};
use crate::schema::{
    Attribute, AttributeType, Block, BlockNesting, FunctionDefinition, IdentitySchema, Nesting,
    Parameter, Schema,
};
use crate::traits::{Arguments, Ctx, FunctionError, MoveSource, PrivateState, Provider};
use crate::value::{self, Dynamic, Type};

/// Generated protocol types (tfplugin6, go-plugin, gRPC health).
#[allow(missing_docs, clippy::all)]
pub mod proto {
    /// Terraform plugin protocol 6.9.
    pub mod tfplugin6 {
        tonic::include_proto!("tfplugin6");
    }
    /// go-plugin side services.
    pub mod plugin {
        tonic::include_proto!("plugin");
    }
    /// gRPC health checking.
    pub mod health {
        tonic::include_proto!("grpc.health.v1");
    }
}

use proto::tfplugin6 as pb;

/// Largest message accepted or sent: Terraform's own limit (256 MiB).
pub const MAX_MESSAGE_SIZE: usize = 256 << 20;

/// Shared state of one provider process.
pub(crate) struct Server<P: Provider> {
    provider: P,
    provider_schema: Schema,
    provider_type: Type,
    resources: HashMap<String, Arc<dyn DynResource>>,
    data_sources: HashMap<String, Arc<dyn DynDataSource>>,
    ephemerals: HashMap<String, Arc<dyn DynEphemeralResource>>,
    functions: HashMap<String, Arc<dyn DynFunction>>,
    schema_response: pb::get_provider_schema::Response,
    data: RwLock<Option<Arc<dyn Any + Send + Sync>>>,
    stop_tx: watch::Sender<bool>,
    /// Fires the graceful shutdown of the whole server.
    pub(crate) shutdown_tx: watch::Sender<Shutdown>,
    /// In debug mode StopProvider (Ctrl-C in a terraform run) must not end the
    /// long-lived server the user attached to.
    pub(crate) stop_ends_server: bool,
}

/// Server life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shutdown {
    /// Serving.
    Running,
    /// StopProvider: graceful, waiting for in-flight calls without limit.
    AfterInFlight,
    /// GRPCController.Shutdown or SIGTERM: graceful, with a deadline.
    Now,
}

/// Handle given to tonic; cheap to clone.
pub(crate) struct ProviderService<P: Provider>(pub Arc<Server<P>>);

impl<P: Provider> Server<P> {
    pub(crate) fn new(provider: P) -> Self {
        let provider_schema = provider.schema();
        let provider_type = provider_schema.value_type();
        let resources: HashMap<_, _> = provider
            .resources()
            .into_iter()
            .map(|r| (r.type_name().to_string(), r))
            .collect();
        let data_sources: HashMap<_, _> = provider
            .data_sources()
            .into_iter()
            .map(|r| (r.type_name().to_string(), r))
            .collect();
        let ephemerals: HashMap<_, _> = provider
            .ephemeral_resources()
            .into_iter()
            .map(|r| (r.type_name().to_string(), r))
            .collect();
        let functions: HashMap<_, _> = provider
            .functions()
            .into_iter()
            .map(|f| (f.name().to_string(), f))
            .collect();
        let schema_response = pb::get_provider_schema::Response {
            provider: Some(schema_to_proto(&provider_schema)),
            resource_schemas: resources
                .iter()
                .map(|(k, r)| (k.clone(), schema_to_proto(r.schema())))
                .collect(),
            data_source_schemas: data_sources
                .iter()
                .map(|(k, r)| (k.clone(), schema_to_proto(r.schema())))
                .collect(),
            diagnostics: Vec::new(),
            provider_meta: None,
            server_capabilities: Some(capabilities()),
            functions: functions
                .iter()
                .map(|(k, f)| (k.clone(), function_to_proto(f.definition())))
                .collect(),
            ephemeral_resource_schemas: ephemerals
                .iter()
                .map(|(k, r)| (k.clone(), schema_to_proto(r.schema())))
                .collect(),
        };
        Server {
            provider,
            provider_schema,
            provider_type,
            resources,
            data_sources,
            ephemerals,
            functions,
            schema_response,
            data: RwLock::new(None),
            stop_tx: watch::channel(false).0,
            shutdown_tx: watch::channel(Shutdown::Running).0,
            stop_ends_server: true,
        }
    }

    fn ctx(&self, type_name: &str, rpc: &'static str) -> Ctx {
        Ctx {
            type_name: type_name.to_string(),
            rpc,
            data: self.data.read().ok().and_then(|d| d.clone()),
            extra: Mutex::new(Diagnostics::new()),
            stop: self.stop_tx.subscribe(),
        }
    }
}

fn capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        plan_destroy: true,
        // The schema never changes within a binary, so Terraform may cache it
        // instead of asking every provider process (one RPC per start saved).
        get_provider_schema_optional: true,
        move_resource_state: true,
    }
}

/// Runs a handler future, turning a panic into an error diagnostic that names
/// the resource and RPC; the panic hook has already logged it.
async fn guarded<T>(ctx: &Ctx, fut: impl Future<Output = crate::Result<T>>) -> crate::Result<T> {
    let start = std::time::Instant::now();
    let outcome = AssertUnwindSafe(fut).catch_unwind().await;
    // Field names follow the Go SDK (tf_rpc, tf_resource_type); never values.
    tracing::debug!(
        tf_rpc = ctx.rpc(),
        tf_resource_type = ctx.type_name(),
        duration_us = start.elapsed().as_micros() as u64,
        ok = matches!(outcome, Ok(Ok(_))),
        "served"
    );
    match outcome {
        Ok(r) => r,
        Err(payload) => {
            let msg = panic_message(payload.as_ref());
            tracing::error!(
                tf_rpc = ctx.rpc(),
                tf_resource_type = ctx.type_name(),
                "provider panicked: {msg}"
            );
            Err(Diagnostic::error(
                "Provider panicked",
                format!(
                    "The provider panicked in {} for {}: {msg}\n\nThis is a bug in the provider; \
                     please report it.",
                    ctx.rpc(),
                    ctx.type_name()
                ),
            )
            .into())
        }
    }
}

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// Collects the result's diagnostics plus the ones added through the ctx.
fn finish<T>(ctx: &Ctx, r: crate::Result<T>) -> (Option<T>, Vec<pb::Diagnostic>) {
    let mut diags = ctx.take_diagnostics();
    let value = match r {
        Ok(v) => Some(v),
        Err(d) => {
            diags.extend(d);
            if !diags.has_errors() {
                // An Err without any error inside would otherwise look like success.
                diags.error("Internal error", "The provider failed without saying why.");
            }
            None
        }
    };
    (value, diags_to_proto(&diags))
}

fn unknown_type(kind: &str, name: &str) -> Vec<pb::Diagnostic> {
    diags_to_proto(
        &Diagnostic::error(
            format!("Unknown {kind}"),
            format!("This provider has no {kind} named {name:?}."),
        )
        .into(),
    )
}

fn decode_dv(dv: Option<&pb::DynamicValue>, ty: &Type, what: &str) -> crate::Result<Dynamic> {
    let Some(dv) = dv else {
        return Ok(Dynamic::Null);
    };
    let r = if !dv.msgpack.is_empty() {
        value::decode(&dv.msgpack, ty)
    } else if !dv.json.is_empty() {
        value::dynamic_from_json_bytes(&dv.json, ty)
    } else {
        Ok(Dynamic::Null)
    };
    r.map_err(|e| {
        Diagnostic::error(
            format!("Invalid {what}"),
            format!("Terraform sent a {what} the provider could not decode: {e}"),
        )
        .into()
    })
}

fn encode_dv(v: &Dynamic, ty: &Type, what: &str) -> crate::Result<pb::DynamicValue> {
    let msgpack = value::encode(v, ty).map_err(|e| {
        Diagnostics::from(Diagnostic::error(
            format!("Invalid {what}"),
            format!("The provider produced a {what} that does not match its schema: {e}"),
        ))
    })?;
    Ok(pb::DynamicValue {
        msgpack,
        json: Vec::new(),
    })
}

fn identity_to_proto(
    identity: Option<Dynamic>,
    schema: Option<&IdentitySchema>,
) -> crate::Result<Option<pb::ResourceIdentityData>> {
    match (identity, schema) {
        (Some(v), Some(s)) => Ok(Some(pb::ResourceIdentityData {
            identity_data: Some(encode_dv(&v, &s.value_type(), "identity")?),
        })),
        _ => Ok(None),
    }
}

fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

type Rpc<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl<P: Provider> pb::provider_server::Provider for ProviderService<P> {
    async fn get_metadata(
        &self,
        _: Request<pb::get_metadata::Request>,
    ) -> Rpc<pb::get_metadata::Response> {
        let s = &self.0;
        Ok(Response::new(pb::get_metadata::Response {
            server_capabilities: Some(capabilities()),
            diagnostics: Vec::new(),
            data_sources: s
                .data_sources
                .keys()
                .map(|k| pb::get_metadata::DataSourceMetadata {
                    type_name: k.clone(),
                })
                .collect(),
            resources: s
                .resources
                .keys()
                .map(|k| pb::get_metadata::ResourceMetadata {
                    type_name: k.clone(),
                })
                .collect(),
            functions: s
                .functions
                .keys()
                .map(|k| pb::get_metadata::FunctionMetadata { name: k.clone() })
                .collect(),
            ephemeral_resources: s
                .ephemerals
                .keys()
                .map(|k| pb::get_metadata::EphemeralMetadata {
                    type_name: k.clone(),
                })
                .collect(),
        }))
    }

    async fn get_provider_schema(
        &self,
        _: Request<pb::get_provider_schema::Request>,
    ) -> Rpc<pb::get_provider_schema::Response> {
        Ok(Response::new(self.0.schema_response.clone()))
    }

    async fn get_resource_identity_schemas(
        &self,
        _: Request<pb::get_resource_identity_schemas::Request>,
    ) -> Rpc<pb::get_resource_identity_schemas::Response> {
        let identity_schemas = self
            .0
            .resources
            .iter()
            .filter_map(|(k, r)| {
                r.identity_schema()
                    .map(|s| (k.clone(), identity_schema_to_proto(s)))
            })
            .collect();
        Ok(Response::new(pb::get_resource_identity_schemas::Response {
            identity_schemas,
            diagnostics: Vec::new(),
        }))
    }

    async fn validate_provider_config(
        &self,
        req: Request<pb::validate_provider_config::Request>,
    ) -> Rpc<pb::validate_provider_config::Response> {
        let req = req.into_inner();
        let s = &self.0;
        let ctx = s.ctx("provider", "ValidateProviderConfig");
        let r = guarded(&ctx, async {
            let config = decode_dv(
                req.config.as_ref(),
                &s.provider_type,
                "provider configuration",
            )?;
            let mut diags = Diagnostics::new();
            crate::adapter::check_unconfigurable(
                &s.provider_schema.block,
                &config,
                &AttributePath::root(),
                &mut diags,
            );
            diags.into_result()?;
            let typed: P::Config = decode_typed("provider configuration", config)?;
            s.provider.validate(&ctx, &typed).await
        })
        .await;
        let (_, diagnostics) = finish(&ctx, r);
        Ok(Response::new(pb::validate_provider_config::Response {
            diagnostics,
        }))
    }

    async fn validate_resource_config(
        &self,
        req: Request<pb::validate_resource_config::Request>,
    ) -> Rpc<pb::validate_resource_config::Response> {
        let req = req.into_inner();
        let Some(res) = self.0.resources.get(&req.type_name).cloned() else {
            return Ok(Response::new(pb::validate_resource_config::Response {
                diagnostics: unknown_type("resource type", &req.type_name),
            }));
        };
        let ctx = self.0.ctx(&req.type_name, "ValidateResourceConfig");
        let r = guarded(&ctx, async {
            let config = decode_dv(req.config.as_ref(), res.value_type(), "configuration")?;
            res.validate(&ctx, config).await
        })
        .await;
        let (_, diagnostics) = finish(&ctx, r);
        Ok(Response::new(pb::validate_resource_config::Response {
            diagnostics,
        }))
    }

    async fn validate_data_resource_config(
        &self,
        req: Request<pb::validate_data_resource_config::Request>,
    ) -> Rpc<pb::validate_data_resource_config::Response> {
        let req = req.into_inner();
        let Some(ds) = self.0.data_sources.get(&req.type_name).cloned() else {
            return Ok(Response::new(pb::validate_data_resource_config::Response {
                diagnostics: unknown_type("data source", &req.type_name),
            }));
        };
        let ctx = self.0.ctx(&req.type_name, "ValidateDataResourceConfig");
        let r = guarded(&ctx, async {
            let config = decode_dv(req.config.as_ref(), ds.value_type(), "configuration")?;
            ds.validate(&ctx, config).await
        })
        .await;
        let (_, diagnostics) = finish(&ctx, r);
        Ok(Response::new(pb::validate_data_resource_config::Response {
            diagnostics,
        }))
    }

    async fn upgrade_resource_state(
        &self,
        req: Request<pb::upgrade_resource_state::Request>,
    ) -> Rpc<pb::upgrade_resource_state::Response> {
        let req = req.into_inner();
        let Some(res) = self.0.resources.get(&req.type_name).cloned() else {
            return Ok(Response::new(pb::upgrade_resource_state::Response {
                upgraded_state: None,
                diagnostics: unknown_type("resource type", &req.type_name),
            }));
        };
        let ctx = self.0.ctx(&req.type_name, "UpgradeResourceState");
        let r = guarded(&ctx, async {
            let raw = req.raw_state.unwrap_or_default();
            if raw.json.is_empty() && !raw.flatmap.is_empty() {
                return Err(Diagnostic::error(
                    "Legacy state format",
                    "This provider cannot read flatmap states from Terraform 0.11 and older.",
                )
                .into());
            }
            let v = res.upgrade(&ctx, req.version, &raw.json).await?;
            encode_dv(&v, res.value_type(), "upgraded state")
        })
        .await;
        let (upgraded_state, diagnostics) = finish(&ctx, r);
        Ok(Response::new(pb::upgrade_resource_state::Response {
            upgraded_state,
            diagnostics,
        }))
    }

    async fn upgrade_resource_identity(
        &self,
        req: Request<pb::upgrade_resource_identity::Request>,
    ) -> Rpc<pb::upgrade_resource_identity::Response> {
        let req = req.into_inner();
        let schema = self
            .0
            .resources
            .get(&req.type_name)
            .and_then(|r| r.identity_schema().cloned());
        let ctx = self.0.ctx(&req.type_name, "UpgradeResourceIdentity");
        let r: crate::Result<pb::ResourceIdentityData> = (|| {
            let Some(schema) = schema else {
                return Err(Diagnostic::error(
                    "No identity",
                    format!("{} has no resource identity.", req.type_name),
                )
                .into());
            };
            if req.version != schema.version {
                return Err(Diagnostic::error(
                    "Identity upgrade not supported",
                    format!(
                        "{} cannot upgrade identity version {} to {}.",
                        req.type_name, req.version, schema.version
                    ),
                )
                .into());
            }
            let v = value::dynamic_from_json_bytes(&req.raw_identity, &schema.value_type())
                .map_err(|e| {
                    Diagnostics::from(Diagnostic::error("Invalid identity", e.to_string()))
                })?;
            Ok(pb::ResourceIdentityData {
                identity_data: Some(encode_dv(&v, &schema.value_type(), "identity")?),
            })
        })();
        let (upgraded_identity, diagnostics) = finish(&ctx, r);
        Ok(Response::new(pb::upgrade_resource_identity::Response {
            upgraded_identity,
            diagnostics,
        }))
    }

    async fn configure_provider(
        &self,
        req: Request<pb::configure_provider::Request>,
    ) -> Rpc<pb::configure_provider::Response> {
        let req = req.into_inner();
        let s = &self.0;
        let ctx = s.ctx("provider", "ConfigureProvider");
        let r = guarded(&ctx, async {
            let config = decode_dv(
                req.config.as_ref(),
                &s.provider_type,
                "provider configuration",
            )?;
            let typed: P::Config = decode_typed("provider configuration", config)?;
            let data = s
                .provider
                .configure(&ctx, &req.terraform_version, typed)
                .await?;
            if let Ok(mut slot) = s.data.write() {
                *slot = Some(Arc::new(data));
            }
            tracing::info!(
                terraform_version = req.terraform_version.as_str(),
                "provider configured"
            );
            Ok(())
        })
        .await;
        let (_, diagnostics) = finish(&ctx, r);
        Ok(Response::new(pb::configure_provider::Response {
            diagnostics,
        }))
    }

    async fn read_resource(
        &self,
        req: Request<pb::read_resource::Request>,
    ) -> Rpc<pb::read_resource::Response> {
        let req = req.into_inner();
        let Some(res) = self.0.resources.get(&req.type_name).cloned() else {
            return Ok(Response::new(pb::read_resource::Response {
                diagnostics: unknown_type("resource type", &req.type_name),
                ..Default::default()
            }));
        };
        let ctx = self.0.ctx(&req.type_name, "ReadResource");
        let r = guarded(&ctx, async {
            let ty = res.value_type();
            let state = decode_dv(req.current_state.as_ref(), ty, "state")?;
            let mut private = PrivateState::from_bytes(&req.private)?;
            let (new, identity) = res.read(&ctx, state, &mut private).await?;
            Ok((
                encode_dv(&new, ty, "state")?,
                private.to_bytes(),
                identity_to_proto(identity, res.identity_schema())?,
            ))
        })
        .await;
        let (out, diagnostics) = finish(&ctx, r);
        let mut resp = pb::read_resource::Response {
            diagnostics,
            ..Default::default()
        };
        match out {
            Some((state, private, identity)) => {
                resp.new_state = Some(state);
                resp.private = private;
                resp.new_identity = identity;
            }
            None => {
                // On error keep what Terraform had, as the Go SDKs do.
                resp.new_state = req.current_state;
                resp.private = req.private;
                resp.new_identity = req.current_identity;
            }
        }
        Ok(Response::new(resp))
    }

    async fn plan_resource_change(
        &self,
        req: Request<pb::plan_resource_change::Request>,
    ) -> Rpc<pb::plan_resource_change::Response> {
        let req = req.into_inner();
        let Some(res) = self.0.resources.get(&req.type_name).cloned() else {
            return Ok(Response::new(pb::plan_resource_change::Response {
                diagnostics: unknown_type("resource type", &req.type_name),
                ..Default::default()
            }));
        };
        let ctx = self.0.ctx(&req.type_name, "PlanResourceChange");
        let r = guarded(&ctx, async {
            let ty = res.value_type();
            let prior = decode_dv(req.prior_state.as_ref(), ty, "prior state")?;
            let proposed = decode_dv(req.proposed_new_state.as_ref(), ty, "proposed state")?;
            let config = decode_dv(req.config.as_ref(), ty, "configuration")?;
            let mut private = PrivateState::from_bytes(&req.prior_private)?;
            let outcome = res
                .plan(&ctx, prior, proposed, config, &mut private)
                .await?;
            Ok(pb::plan_resource_change::Response {
                planned_state: Some(encode_dv(&outcome.planned, ty, "planned state")?),
                requires_replace: outcome.requires_replace.iter().map(path_to_proto).collect(),
                planned_private: private.to_bytes(),
                diagnostics: Vec::new(),
                legacy_type_system: false,
                deferred: None,
                planned_identity: identity_to_proto(outcome.identity, res.identity_schema())?,
            })
        })
        .await;
        let (out, diagnostics) = finish(&ctx, r);
        let mut resp = out.unwrap_or_default();
        resp.diagnostics = diagnostics;
        Ok(Response::new(resp))
    }

    async fn apply_resource_change(
        &self,
        req: Request<pb::apply_resource_change::Request>,
    ) -> Rpc<pb::apply_resource_change::Response> {
        let req = req.into_inner();
        let Some(res) = self.0.resources.get(&req.type_name).cloned() else {
            return Ok(Response::new(pb::apply_resource_change::Response {
                diagnostics: unknown_type("resource type", &req.type_name),
                ..Default::default()
            }));
        };
        let ctx = self.0.ctx(&req.type_name, "ApplyResourceChange");
        let r = guarded(&ctx, async {
            let ty = res.value_type();
            let prior = decode_dv(req.prior_state.as_ref(), ty, "prior state")?;
            let planned = decode_dv(req.planned_state.as_ref(), ty, "planned state")?;
            let config = decode_dv(req.config.as_ref(), ty, "configuration")?;
            let mut private = PrivateState::from_bytes(&req.planned_private)?;
            let (new, identity) = res
                .apply(&ctx, prior, planned, config, &mut private)
                .await?;
            Ok(pb::apply_resource_change::Response {
                new_state: Some(encode_dv(&new, ty, "new state")?),
                private: private.to_bytes(),
                diagnostics: Vec::new(),
                legacy_type_system: false,
                new_identity: identity_to_proto(identity, res.identity_schema())?,
            })
        })
        .await;
        let (out, diagnostics) = finish(&ctx, r);
        let resp = match out {
            Some(mut resp) => {
                resp.diagnostics = diagnostics;
                resp
            }
            None => pb::apply_resource_change::Response {
                // On a failed apply Terraform keeps the prior state if we return it.
                new_state: req.prior_state,
                diagnostics,
                ..Default::default()
            },
        };
        Ok(Response::new(resp))
    }

    async fn import_resource_state(
        &self,
        req: Request<pb::import_resource_state::Request>,
    ) -> Rpc<pb::import_resource_state::Response> {
        let req = req.into_inner();
        let Some(res) = self.0.resources.get(&req.type_name).cloned() else {
            return Ok(Response::new(pb::import_resource_state::Response {
                diagnostics: unknown_type("resource type", &req.type_name),
                ..Default::default()
            }));
        };
        let ctx = self.0.ctx(&req.type_name, "ImportResourceState");
        let r = guarded(&ctx, async {
            let ty = res.value_type();
            let identity = match (req.identity.as_ref(), res.identity_schema()) {
                (Some(ident), Some(schema)) => Some(decode_dv(
                    ident.identity_data.as_ref(),
                    &schema.value_type(),
                    "identity",
                )?),
                _ => None,
            };
            let (state, identity) = res.import(&ctx, &req.id, identity).await?;
            Ok(pb::import_resource_state::ImportedResource {
                type_name: req.type_name.clone(),
                state: Some(encode_dv(&state, ty, "imported state")?),
                private: Vec::new(),
                identity: identity_to_proto(identity, res.identity_schema())?,
            })
        })
        .await;
        let (out, diagnostics) = finish(&ctx, r);
        Ok(Response::new(pb::import_resource_state::Response {
            imported_resources: out.into_iter().collect(),
            diagnostics,
            deferred: None,
        }))
    }

    async fn move_resource_state(
        &self,
        req: Request<pb::move_resource_state::Request>,
    ) -> Rpc<pb::move_resource_state::Response> {
        let req = req.into_inner();
        let Some(res) = self.0.resources.get(&req.target_type_name).cloned() else {
            return Ok(Response::new(pb::move_resource_state::Response {
                diagnostics: unknown_type("resource type", &req.target_type_name),
                ..Default::default()
            }));
        };
        let ctx = self.0.ctx(&req.target_type_name, "MoveResourceState");
        let r = guarded(&ctx, async {
            let raw = req.source_state.unwrap_or_default();
            let state: serde_json::Value = if raw.json.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::from_slice(&raw.json)?
            };
            let source = MoveSource {
                provider_address: req.source_provider_address.clone(),
                type_name: req.source_type_name.clone(),
                schema_version: req.source_schema_version,
                state,
                private: PrivateState::from_bytes(&req.source_private)?,
            };
            let (state, private) = res.move_state(&ctx, source).await?;
            Ok((
                encode_dv(&state, res.value_type(), "moved state")?,
                private.to_bytes(),
            ))
        })
        .await;
        let (out, diagnostics) = finish(&ctx, r);
        let (target_state, target_private) = match out {
            Some((s, p)) => (Some(s), p),
            None => (None, Vec::new()),
        };
        Ok(Response::new(pb::move_resource_state::Response {
            target_state,
            diagnostics,
            target_private,
            target_identity: None,
        }))
    }

    async fn read_data_source(
        &self,
        req: Request<pb::read_data_source::Request>,
    ) -> Rpc<pb::read_data_source::Response> {
        let req = req.into_inner();
        let Some(ds) = self.0.data_sources.get(&req.type_name).cloned() else {
            return Ok(Response::new(pb::read_data_source::Response {
                diagnostics: unknown_type("data source", &req.type_name),
                ..Default::default()
            }));
        };
        let ctx = self.0.ctx(&req.type_name, "ReadDataSource");
        let r = guarded(&ctx, async {
            let ty = ds.value_type();
            let config = decode_dv(req.config.as_ref(), ty, "configuration")?;
            let state = ds.read(&ctx, config).await?;
            encode_dv(&state, ty, "data source state")
        })
        .await;
        let (state, diagnostics) = finish(&ctx, r);
        Ok(Response::new(pb::read_data_source::Response {
            state,
            diagnostics,
            deferred: None,
        }))
    }

    async fn validate_ephemeral_resource_config(
        &self,
        req: Request<pb::validate_ephemeral_resource_config::Request>,
    ) -> Rpc<pb::validate_ephemeral_resource_config::Response> {
        let req = req.into_inner();
        let Some(e) = self.0.ephemerals.get(&req.type_name).cloned() else {
            return Ok(Response::new(
                pb::validate_ephemeral_resource_config::Response {
                    diagnostics: unknown_type("ephemeral resource", &req.type_name),
                },
            ));
        };
        let ctx = self
            .0
            .ctx(&req.type_name, "ValidateEphemeralResourceConfig");
        let r = guarded(&ctx, async {
            let config = decode_dv(req.config.as_ref(), e.value_type(), "configuration")?;
            e.validate(&ctx, config).await
        })
        .await;
        let (_, diagnostics) = finish(&ctx, r);
        Ok(Response::new(
            pb::validate_ephemeral_resource_config::Response { diagnostics },
        ))
    }

    async fn open_ephemeral_resource(
        &self,
        req: Request<pb::open_ephemeral_resource::Request>,
    ) -> Rpc<pb::open_ephemeral_resource::Response> {
        let req = req.into_inner();
        let Some(e) = self.0.ephemerals.get(&req.type_name).cloned() else {
            return Ok(Response::new(pb::open_ephemeral_resource::Response {
                diagnostics: unknown_type("ephemeral resource", &req.type_name),
                ..Default::default()
            }));
        };
        let ctx = self.0.ctx(&req.type_name, "OpenEphemeralResource");
        let r = guarded(&ctx, async {
            let ty = e.value_type();
            let config = decode_dv(req.config.as_ref(), ty, "configuration")?;
            let mut private = PrivateState::new();
            let (result, renew_at) = e.open(&ctx, config, &mut private).await?;
            Ok(pb::open_ephemeral_resource::Response {
                diagnostics: Vec::new(),
                renew_at: renew_at.map(timestamp),
                result: Some(encode_dv(&result, ty, "ephemeral result")?),
                private: Some(private.to_bytes()),
                deferred: None,
            })
        })
        .await;
        let (out, diagnostics) = finish(&ctx, r);
        let mut resp = out.unwrap_or_default();
        resp.diagnostics = diagnostics;
        Ok(Response::new(resp))
    }

    async fn renew_ephemeral_resource(
        &self,
        req: Request<pb::renew_ephemeral_resource::Request>,
    ) -> Rpc<pb::renew_ephemeral_resource::Response> {
        let req = req.into_inner();
        let Some(e) = self.0.ephemerals.get(&req.type_name).cloned() else {
            return Ok(Response::new(pb::renew_ephemeral_resource::Response {
                diagnostics: unknown_type("ephemeral resource", &req.type_name),
                ..Default::default()
            }));
        };
        let ctx = self.0.ctx(&req.type_name, "RenewEphemeralResource");
        let r = guarded(&ctx, async {
            let mut private = PrivateState::from_bytes(req.private.as_deref().unwrap_or_default())?;
            let renew_at = e.renew(&ctx, &mut private).await?;
            Ok((renew_at, private.to_bytes()))
        })
        .await;
        let (out, diagnostics) = finish(&ctx, r);
        let (renew_at, private) = match out {
            Some((r, p)) => (r.map(timestamp), Some(p)),
            None => (None, req.private),
        };
        Ok(Response::new(pb::renew_ephemeral_resource::Response {
            diagnostics,
            renew_at,
            private,
        }))
    }

    async fn close_ephemeral_resource(
        &self,
        req: Request<pb::close_ephemeral_resource::Request>,
    ) -> Rpc<pb::close_ephemeral_resource::Response> {
        let req = req.into_inner();
        let Some(e) = self.0.ephemerals.get(&req.type_name).cloned() else {
            return Ok(Response::new(pb::close_ephemeral_resource::Response {
                diagnostics: unknown_type("ephemeral resource", &req.type_name),
            }));
        };
        let ctx = self.0.ctx(&req.type_name, "CloseEphemeralResource");
        let r = guarded(&ctx, async {
            let private = PrivateState::from_bytes(req.private.as_deref().unwrap_or_default())?;
            e.close(&ctx, &private).await
        })
        .await;
        let (_, diagnostics) = finish(&ctx, r);
        Ok(Response::new(pb::close_ephemeral_resource::Response {
            diagnostics,
        }))
    }

    async fn get_functions(
        &self,
        _: Request<pb::get_functions::Request>,
    ) -> Rpc<pb::get_functions::Response> {
        Ok(Response::new(pb::get_functions::Response {
            functions: self.0.schema_response.functions.clone(),
            diagnostics: Vec::new(),
        }))
    }

    async fn call_function(
        &self,
        req: Request<pb::call_function::Request>,
    ) -> Rpc<pb::call_function::Response> {
        let req = req.into_inner();
        let Some(f) = self.0.functions.get(&req.name).cloned() else {
            return Ok(Response::new(pb::call_function::Response {
                result: None,
                error: Some(pb::FunctionError {
                    text: format!("This provider has no function named {:?}.", req.name),
                    function_argument: None,
                }),
            }));
        };
        let ctx = self.0.ctx(&req.name, "CallFunction");
        let def = f.definition();
        let mut args = Vec::with_capacity(req.arguments.len());
        for (i, a) in req.arguments.iter().enumerate() {
            let ty = def
                .parameters
                .get(i)
                .or(def.variadic.as_ref())
                .map(|p| p.ty.clone())
                .unwrap_or(Type::Dynamic);
            match decode_dv(Some(a), &ty, "argument") {
                Ok(v) => args.push(v),
                Err(d) => {
                    return Ok(Response::new(pb::call_function::Response {
                        result: None,
                        error: Some(pb::FunctionError {
                            text: d
                                .iter()
                                .map(|d| d.detail.clone())
                                .collect::<Vec<_>>()
                                .join("; "),
                            function_argument: Some(i as i64),
                        }),
                    }))
                }
            }
        }
        let call = AssertUnwindSafe(f.call(&ctx, Arguments(args)))
            .catch_unwind()
            .await;
        let result = match call {
            Ok(Ok(v)) => encode_dv(&v, &def.return_type, "function result").map_err(|d| {
                FunctionError::new(
                    d.iter()
                        .map(|d| d.detail.clone())
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            }),
            Ok(Err(e)) => Err(e),
            Err(p) => Err(FunctionError::new(format!(
                "The provider panicked in CallFunction for {}: {}. This is a bug in the provider.",
                req.name,
                panic_message(p.as_ref())
            ))),
        };
        Ok(Response::new(match result {
            Ok(v) => pb::call_function::Response {
                result: Some(v),
                error: None,
            },
            Err(e) => pb::call_function::Response {
                result: None,
                error: Some(pb::FunctionError {
                    text: e.text,
                    function_argument: e.argument,
                }),
            },
        }))
    }

    async fn stop_provider(
        &self,
        _: Request<pb::stop_provider::Request>,
    ) -> Rpc<pb::stop_provider::Response> {
        tracing::info!("StopProvider received");
        let _ = self.0.stop_tx.send(true);
        if self.0.stop_ends_server {
            // Stop accepting work, but let in-flight operations (told through
            // Ctx::stopping) finish however long they take.
            self.0.shutdown_tx.send_if_modified(|s| {
                if *s == Shutdown::Running {
                    *s = Shutdown::AfterInFlight;
                    true
                } else {
                    false
                }
            });
        }
        Ok(Response::new(pb::stop_provider::Response {
            error: String::new(),
        }))
    }
}

// ---- go-plugin services ---------------------------------------------------

use proto::health as hpb;
use proto::plugin as ppb;

/// GRPCController: Shutdown ends the server gracefully.
pub(crate) struct Controller(pub watch::Sender<Shutdown>);

#[tonic::async_trait]
impl ppb::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(&self, _: Request<ppb::Empty>) -> Rpc<ppb::Empty> {
        tracing::debug!("GRPCController.Shutdown received");
        let _ = self.0.send(Shutdown::Now);
        Ok(Response::new(ppb::Empty {}))
    }
}

/// GRPCStdio: we never route stdout/stderr through it (logs go to real
/// stderr), so the stream stays empty and ends at shutdown.
pub(crate) struct Stdio(pub watch::Receiver<Shutdown>);

type StdioStream = Pin<Box<dyn futures::Stream<Item = Result<ppb::StdioData, Status>> + Send>>;

#[tonic::async_trait]
impl ppb::grpc_stdio_server::GrpcStdio for Stdio {
    type StreamStdioStream = StdioStream;
    async fn stream_stdio(&self, _: Request<ppb::Empty>) -> Rpc<StdioStream> {
        let mut rx = self.0.clone();
        let s = futures::stream::once(async move {
            let _ = rx.wait_for(|v| *v != Shutdown::Running).await;
        })
        .filter_map(|_| async { None });
        Ok(Response::new(Box::pin(s)))
    }
}

use futures::StreamExt;

/// gRPC health: go-plugin pings service "plugin".
pub(crate) struct Health;

#[tonic::async_trait]
impl hpb::health_server::Health for Health {
    async fn check(&self, _: Request<hpb::HealthCheckRequest>) -> Rpc<hpb::HealthCheckResponse> {
        Ok(Response::new(hpb::HealthCheckResponse {
            status: hpb::health_check_response::ServingStatus::Serving as i32,
        }))
    }
}

// ---- conversions ----------------------------------------------------------

pub(crate) fn diags_to_proto(d: &Diagnostics) -> Vec<pb::Diagnostic> {
    d.iter()
        .map(|d| pb::Diagnostic {
            severity: match d.severity {
                Severity::Error => pb::diagnostic::Severity::Error as i32,
                Severity::Warning => pb::diagnostic::Severity::Warning as i32,
            },
            summary: d.summary.clone(),
            detail: d.detail.clone(),
            attribute: d.path.as_ref().map(path_to_proto),
        })
        .collect()
}

fn path_to_proto(p: &AttributePath) -> pb::AttributePath {
    use pb::attribute_path::step::Selector;
    pb::AttributePath {
        steps: p
            .0
            .iter()
            .map(|s| pb::attribute_path::Step {
                selector: Some(match s {
                    PathStep::Attribute(a) => Selector::AttributeName(a.clone()),
                    PathStep::Key(k) => Selector::ElementKeyString(k.clone()),
                    PathStep::Index(i) => Selector::ElementKeyInt(*i),
                }),
            })
            .collect(),
    }
}

const MARKDOWN: i32 = pb::StringKind::Markdown as i32;

pub(crate) fn schema_to_proto(s: &Schema) -> pb::Schema {
    pb::Schema {
        version: s.version,
        block: Some(block_to_proto(&s.block, s.version)),
    }
}

fn block_to_proto(b: &Block, version: i64) -> pb::schema::Block {
    // Sorted so generated docs and schema dumps are stable.
    let mut attrs: Vec<&Attribute> = b.attributes.iter().collect();
    attrs.sort_by(|a, b| a.name.cmp(&b.name));
    let mut blocks: Vec<_> = b.blocks.iter().collect();
    blocks.sort_by(|a, b| a.name.cmp(&b.name));
    pb::schema::Block {
        version,
        attributes: attrs.into_iter().map(attribute_to_proto).collect(),
        block_types: blocks
            .into_iter()
            .map(|nb| pb::schema::NestedBlock {
                type_name: nb.name.clone(),
                block: Some(block_to_proto(&nb.block, 0)),
                nesting: match nb.nesting {
                    BlockNesting::Single => pb::schema::nested_block::NestingMode::Single,
                    BlockNesting::Group => pb::schema::nested_block::NestingMode::Group,
                    BlockNesting::List => pb::schema::nested_block::NestingMode::List,
                    BlockNesting::Set => pb::schema::nested_block::NestingMode::Set,
                    BlockNesting::Map => pb::schema::nested_block::NestingMode::Map,
                } as i32,
                min_items: nb.min_items,
                max_items: nb.max_items,
            })
            .collect(),
        description: b.description.clone(),
        description_kind: MARKDOWN,
        deprecated: b.deprecated,
    }
}

fn attribute_to_proto(a: &Attribute) -> pb::schema::Attribute {
    let (ty, nested_type) = match &a.ty {
        AttributeType::Type(t) => (t.to_json_bytes(), None),
        AttributeType::Nested(nesting, attrs) => {
            let mut sorted: Vec<&Attribute> = attrs.iter().collect();
            sorted.sort_by(|a, b| a.name.cmp(&b.name));
            (
                Vec::new(),
                Some(pb::schema::Object {
                    attributes: sorted.into_iter().map(attribute_to_proto).collect(),
                    nesting: match nesting {
                        Nesting::Single => pb::schema::object::NestingMode::Single,
                        Nesting::List => pb::schema::object::NestingMode::List,
                        Nesting::Set => pb::schema::object::NestingMode::Set,
                        Nesting::Map => pb::schema::object::NestingMode::Map,
                    } as i32,
                    min_items: 0,
                    max_items: 0,
                }),
            )
        }
    };
    pb::schema::Attribute {
        name: a.name.clone(),
        r#type: ty,
        nested_type,
        description: a.description.clone(),
        required: a.required,
        optional: a.optional,
        computed: a.computed,
        sensitive: a.sensitive,
        description_kind: MARKDOWN,
        deprecated: a.deprecated,
        write_only: a.write_only,
    }
}

fn identity_schema_to_proto(s: &IdentitySchema) -> pb::ResourceIdentitySchema {
    pb::ResourceIdentitySchema {
        version: s.version,
        identity_attributes: s
            .attributes
            .iter()
            .map(|a| pb::resource_identity_schema::IdentityAttribute {
                name: a.name.clone(),
                r#type: a.ty.to_json_bytes(),
                required_for_import: a.required_for_import,
                optional_for_import: a.optional_for_import,
                description: a.description.clone(),
            })
            .collect(),
    }
}

fn parameter_to_proto(p: &Parameter) -> pb::function::Parameter {
    pb::function::Parameter {
        name: p.name.clone(),
        r#type: p.ty.to_json_bytes(),
        allow_null_value: p.allow_null,
        allow_unknown_values: p.allow_unknown,
        description: p.description.clone(),
        description_kind: MARKDOWN,
    }
}

fn function_to_proto(f: &FunctionDefinition) -> pb::Function {
    pb::Function {
        parameters: f.parameters.iter().map(parameter_to_proto).collect(),
        variadic_parameter: f.variadic.as_ref().map(parameter_to_proto),
        r#return: Some(pb::function::Return {
            r#type: f.return_type.to_json_bytes(),
        }),
        summary: f.summary.clone(),
        description: f.description.clone(),
        description_kind: MARKDOWN,
        deprecation_message: f.deprecation_message.clone().unwrap_or_default(),
    }
}
