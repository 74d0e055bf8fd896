//! The traits providers implement: [`Provider`], [`Resource`], [`DataSource`],
//! [`EphemeralResource`] and [`Function`], plus the per-call [`Ctx`] and the
//! typed [`PrivateState`].

use std::any::Any;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::diag::{AttributePath, Diagnostic, Diagnostics};
use crate::schema::{FunctionDefinition, IdentitySchema, Schema};
use crate::value::Dynamic;

/// The result of every provider method: errors are [`Diagnostics`].
pub type Result<T, E = Diagnostics> = std::result::Result<T, E>;

/// Per-call context: who is being called, the configured provider data,
/// a place for warnings, and the stop signal.
pub struct Ctx {
    pub(crate) type_name: String,
    pub(crate) rpc: &'static str,
    pub(crate) data: Option<Arc<dyn Any + Send + Sync>>,
    pub(crate) extra: Mutex<Diagnostics>,
    pub(crate) stop: tokio::sync::watch::Receiver<bool>,
}

impl Ctx {
    /// The resource/data source/function name this call is for.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The protocol RPC being served, e.g. `ApplyResourceChange`.
    pub fn rpc(&self) -> &'static str {
        self.rpc
    }

    /// The value the provider's `configure` returned.
    ///
    /// Errors (as a diagnostic) when the provider is not configured yet, which
    /// happens for calls Terraform makes before ConfigureProvider, e.g. validation.
    pub fn provider_data<T: Any + Send + Sync>(&self) -> Result<&T> {
        self.data
            .as_deref()
            .and_then(|d| d.downcast_ref::<T>())
            .ok_or_else(|| {
                Diagnostic::error(
                    "Provider not configured",
                    format!(
                        "{} needs the configured provider, but ConfigureProvider has not run \
                         in this provider process.",
                        self.type_name
                    ),
                )
                .into()
            })
    }

    /// Adds a warning (or any diagnostic) to the response, also on success.
    pub fn diagnostic(&self, d: Diagnostic) {
        if let Ok(mut g) = self.extra.lock() {
            g.push(d);
        }
    }

    /// Adds a warning to the response.
    pub fn warn(&self, summary: impl Into<String>, detail: impl Into<String>) {
        self.diagnostic(Diagnostic::warning(summary, detail));
    }

    /// Adds a warning about one attribute.
    pub fn warn_at(
        &self,
        path: AttributePath,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.diagnostic(Diagnostic::warning(summary, detail).at(path));
    }

    /// True once Terraform asked the provider to stop (Ctrl-C).
    pub fn is_stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Completes when Terraform asks the provider to stop; `select!` on it in
    /// long waits so Ctrl-C interrupts them cleanly.
    pub async fn stopping(&self) {
        let mut rx = self.stop.clone();
        // An error means the sender is gone: the server is shutting down.
        let _ = rx.wait_for(|stopped| *stopped).await;
    }

    pub(crate) fn take_diagnostics(&self) -> Diagnostics {
        self.extra
            .lock()
            .map(|mut g| std::mem::take(&mut *g))
            .unwrap_or_default()
    }
}

/// Opaque per-instance data kept by Terraform next to the state but never
/// shown to users, read and written by key with any serde type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrivateState(serde_json::Map<String, serde_json::Value>);

impl PrivateState {
    /// Empty private state.
    pub fn new() -> Self {
        Self::default()
    }
    /// Reads `key` as `T`; `None` if absent or of another shape.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.0
            .get(key)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }
    /// Stores `value` under `key`.
    pub fn set<T: Serialize>(&mut self, key: &str, value: &T) -> Result<()> {
        let v = serde_json::to_value(value)?;
        self.0.insert(key.to_string(), v);
        Ok(())
    }
    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        self.0.remove(key);
    }
    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        let map = serde_json::from_slice(bytes).map_err(|e| {
            Diagnostics::from(Diagnostic::error(
                "Invalid private state",
                format!("The stored private state is not a JSON object: {e}"),
            ))
        })?;
        Ok(PrivateState(map))
    }
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        if self.0.is_empty() {
            Vec::new()
        } else {
            serde_json::to_vec(&self.0).unwrap_or_default()
        }
    }
}

/// A configured Terraform provider.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The provider block's configuration.
    type Config: DeserializeOwned + Send + 'static;
    /// What `configure` produces and resources read with [`Ctx::provider_data`].
    type Data: Send + Sync + 'static;

    /// The provider block schema.
    fn schema(&self) -> Schema;

    /// Checks the provider configuration (values may be unknown).
    async fn validate(&self, _ctx: &Ctx, _config: &Self::Config) -> Result<()> {
        Ok(())
    }

    /// Resolves the configuration (environment fallbacks, clients).
    async fn configure(
        &self,
        ctx: &Ctx,
        terraform_version: &str,
        config: Self::Config,
    ) -> Result<Self::Data>;

    /// Managed resources; build each with [`crate::resource`].
    fn resources(&self) -> Vec<Arc<dyn crate::DynResource>>;

    /// Data sources; build each with [`crate::data_source`].
    fn data_sources(&self) -> Vec<Arc<dyn crate::DynDataSource>> {
        Vec::new()
    }

    /// Ephemeral resources; build each with [`crate::ephemeral_resource`].
    fn ephemeral_resources(&self) -> Vec<Arc<dyn crate::DynEphemeralResource>> {
        Vec::new()
    }

    /// Functions; build each with [`crate::function`].
    fn functions(&self) -> Vec<Arc<dyn crate::DynFunction>> {
        Vec::new()
    }
}

/// Where a `moved {}` block moves state from (MoveResourceState).
#[derive(Debug, Clone)]
pub struct MoveSource {
    /// Provider address of the source resource.
    pub provider_address: String,
    /// Source resource type.
    pub type_name: String,
    /// Source schema version.
    pub schema_version: i64,
    /// The source state as JSON.
    pub state: serde_json::Value,
    /// The source private state.
    pub private: PrivateState,
}

/// A managed resource with a typed state.
///
/// The framework does the protocol chores around these methods: it marks
/// computed attributes that are not configured as unknown on create, nulls
/// write-only attributes in plan and state, rejects configuration of
/// computed-only attributes, adds `requires_replace` for attributes declared
/// with [`crate::Attribute::requires_replace`], checks that apply leaves no
/// unknowns, and turns panics into error diagnostics.
#[async_trait]
pub trait Resource: Send + Sync + 'static {
    /// Full type name, e.g. `omni_cluster`.
    const TYPE_NAME: &'static str;
    /// The state/config/plan struct; use [`crate::Value`] for its fields.
    type State: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// The schema (called once at start).
    fn schema(&self) -> Schema;

    /// Identity schema (Terraform ≥1.12); `None` for no identity.
    fn identity_schema(&self) -> Option<IdentitySchema> {
        None
    }

    /// The identity of an instance, an object matching [`Self::identity_schema`].
    fn identity(&self, _state: &Self::State) -> Option<Dynamic> {
        None
    }

    /// Extra configuration checks (values may be unknown).
    async fn validate(&self, _ctx: &Ctx, _config: &Self::State) -> Result<()> {
        Ok(())
    }

    /// Refreshes `state` from the remote system; `Ok(None)` means it is gone
    /// and Terraform will plan to create it again.
    async fn read(
        &self,
        ctx: &Ctx,
        state: Self::State,
        private: &mut PrivateState,
    ) -> Result<Option<Self::State>>;

    /// Plans a create. `plan` is the proposed state with unconfigured computed
    /// attributes already unknown; fill in what is known early.
    async fn plan_create(
        &self,
        _ctx: &Ctx,
        plan: Self::State,
        _config: &Self::State,
        _private: &mut PrivateState,
    ) -> Result<Self::State> {
        Ok(plan)
    }

    /// Plans an update. `plan` is Terraform's proposal: configured values,
    /// prior values for unconfigured computed attributes. Set computed values
    /// that will change to [`crate::Value::Unknown`] and push extra replacement
    /// paths to `requires_replace`.
    async fn plan_update(
        &self,
        _ctx: &Ctx,
        _prior: &Self::State,
        plan: Self::State,
        _config: &Self::State,
        _private: &mut PrivateState,
        _requires_replace: &mut Vec<AttributePath>,
    ) -> Result<Self::State> {
        Ok(plan)
    }

    /// Called when a destroy is planned (may veto with an error).
    async fn plan_destroy(
        &self,
        _ctx: &Ctx,
        _prior: &Self::State,
        _private: &mut PrivateState,
    ) -> Result<()> {
        Ok(())
    }

    /// Creates the object; returns the full state with no unknowns.
    async fn create(
        &self,
        ctx: &Ctx,
        plan: Self::State,
        config: &Self::State,
        private: &mut PrivateState,
    ) -> Result<Self::State>;

    /// Updates in place; returns the full state with no unknowns.
    async fn update(
        &self,
        ctx: &Ctx,
        prior: Self::State,
        plan: Self::State,
        config: &Self::State,
        private: &mut PrivateState,
    ) -> Result<Self::State>;

    /// Deletes the object.
    async fn delete(&self, ctx: &Ctx, prior: Self::State, private: &PrivateState) -> Result<()>;

    /// Imports by the user's ID. Return at least what `read` needs; Terraform
    /// calls `read` right after.
    async fn import(&self, _ctx: &Ctx, _id: &str) -> Result<Self::State> {
        Err(Diagnostic::error(
            "Import not supported",
            format!("{} cannot be imported.", Self::TYPE_NAME),
        )
        .into())
    }

    /// Imports by identity (Terraform ≥1.12). The default takes the first
    /// string attribute of the identity as the import ID.
    async fn import_by_identity(&self, ctx: &Ctx, identity: Dynamic) -> Result<Self::State> {
        let id = match &identity {
            Dynamic::Map(m) => m.values().find_map(|v| v.as_str().map(str::to_owned)),
            _ => None,
        };
        match id {
            Some(id) => self.import(ctx, &id).await,
            None => Err(Diagnostic::error(
                "Import by identity not supported",
                format!(
                    "{} has no string identity attribute to import by.",
                    Self::TYPE_NAME
                ),
            )
            .into()),
        }
    }

    /// Upgrades a state stored with an older schema `version` (raw JSON).
    async fn upgrade_state(
        &self,
        _ctx: &Ctx,
        version: i64,
        _raw: serde_json::Value,
    ) -> Result<Self::State> {
        Err(Diagnostic::error(
            "State upgrade not supported",
            format!(
                "{} cannot upgrade state from schema version {version}.",
                Self::TYPE_NAME
            ),
        )
        .into())
    }

    /// Moves state from another resource type (`moved {}` across types).
    async fn move_state(&self, _ctx: &Ctx, source: MoveSource) -> Result<Self::State> {
        Err(Diagnostic::error(
            "Move not supported",
            format!(
                "{} cannot take over state from {}.",
                Self::TYPE_NAME,
                source.type_name
            ),
        )
        .into())
    }
}

/// A data source with a typed state.
#[async_trait]
pub trait DataSource: Send + Sync + 'static {
    /// Full type name, e.g. `omni_cluster_status`.
    const TYPE_NAME: &'static str;
    /// The config/state struct.
    type State: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The schema.
    fn schema(&self) -> Schema;
    /// Extra configuration checks.
    async fn validate(&self, _ctx: &Ctx, _config: &Self::State) -> Result<()> {
        Ok(())
    }
    /// Reads the data; computed attributes must be filled.
    async fn read(&self, ctx: &Ctx, config: Self::State) -> Result<Self::State>;
}

/// An ephemeral resource (Terraform ≥1.10): a value that is never stored.
#[async_trait]
pub trait EphemeralResource: Send + Sync + 'static {
    /// Full type name.
    const TYPE_NAME: &'static str;
    /// The config/result struct.
    type State: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The schema.
    fn schema(&self) -> Schema;
    /// Extra configuration checks.
    async fn validate(&self, _ctx: &Ctx, _config: &Self::State) -> Result<()> {
        Ok(())
    }
    /// Opens: returns the result and, optionally, when to call `renew`.
    async fn open(
        &self,
        ctx: &Ctx,
        config: Self::State,
        private: &mut PrivateState,
    ) -> Result<(Self::State, Option<SystemTime>)>;
    /// Renews; returns the next renewal time.
    async fn renew(&self, _ctx: &Ctx, _private: &mut PrivateState) -> Result<Option<SystemTime>> {
        Ok(None)
    }
    /// Releases whatever `open` acquired.
    async fn close(&self, _ctx: &Ctx, _private: &PrivateState) -> Result<()> {
        Ok(())
    }
}

/// An error from a provider function, optionally blaming one argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    /// Message.
    pub text: String,
    /// Zero-based index of the offending argument.
    pub argument: Option<i64>,
}

impl FunctionError {
    /// An error about the call as a whole.
    pub fn new(text: impl Into<String>) -> Self {
        FunctionError {
            text: text.into(),
            argument: None,
        }
    }
    /// An error about argument `index`.
    pub fn argument(index: usize, text: impl Into<String>) -> Self {
        FunctionError {
            text: text.into(),
            argument: Some(index as i64),
        }
    }
}

/// The arguments of a function call.
#[derive(Debug, Clone)]
pub struct Arguments(pub Vec<Dynamic>);

impl Arguments {
    /// Argument `index` as `T`.
    pub fn get<T: DeserializeOwned>(&self, index: usize) -> std::result::Result<T, FunctionError> {
        let v = self
            .0
            .get(index)
            .cloned()
            .ok_or_else(|| FunctionError::argument(index, "missing argument"))?;
        crate::value::from_dynamic(v).map_err(|e| FunctionError::argument(index, e.to_string()))
    }
    /// Number of arguments.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A provider function, called as `provider::<name>::<function>(...)`.
#[async_trait]
pub trait Function: Send + Sync + 'static {
    /// The function name (not prefixed).
    const NAME: &'static str;
    /// Signature and docs.
    fn definition(&self) -> FunctionDefinition;
    /// Computes the result; use [`crate::value::to_dynamic`] for typed results.
    async fn call(&self, ctx: &Ctx, args: Arguments)
        -> std::result::Result<Dynamic, FunctionError>;
}
