//! The tfptest provider (shared by the binary and the benchmark example).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tfplugin::{
    async_trait, Arguments, Attribute, AttributePath, Ctx, DataSource, Diagnostic, Dynamic,
    EphemeralResource, Function, FunctionDefinition, FunctionError, IdentityAttribute,
    IdentitySchema, Nesting, Parameter, PrivateState, Provider, Resource, Result, Schema, Type,
    Value,
};

/// The provider.
pub struct TestProvider;

/// Provider configuration.
#[derive(Deserialize)]
pub struct Config {
    dir: Value<String>,
}

/// What resources get from `configure`.
pub struct Data {
    dir: PathBuf,
}

#[async_trait]
impl Provider for TestProvider {
    type Config = Config;
    type Data = Data;

    fn schema(&self) -> Schema {
        Schema::new("Test provider backed by JSON files.").attribute(
            Attribute::string("dir")
                .required()
                .description("Directory holding one JSON file per object."),
        )
    }

    async fn validate(&self, _ctx: &Ctx, config: &Config) -> Result<()> {
        if config.dir.as_str() == Some("") {
            return Err(Diagnostic::error("Empty dir", "`dir` must not be empty.")
                .at(AttributePath::new("dir"))
                .into());
        }
        Ok(())
    }

    async fn configure(&self, _ctx: &Ctx, _tf: &str, config: Config) -> Result<Data> {
        let dir = PathBuf::from(config.dir.unwrap_or_default());
        std::fs::create_dir_all(&dir)?;
        Ok(Data { dir })
    }

    fn resources(&self) -> Vec<Arc<dyn tfplugin::DynResource>> {
        vec![
            tfplugin::resource(FileResource),
            tfplugin::resource(EchoResource),
            tfplugin::resource(NullResource),
        ]
    }

    fn data_sources(&self) -> Vec<Arc<dyn tfplugin::DynDataSource>> {
        vec![tfplugin::data_source(FileDataSource)]
    }

    fn ephemeral_resources(&self) -> Vec<Arc<dyn tfplugin::DynEphemeralResource>> {
        vec![tfplugin::ephemeral_resource(TokenEphemeral)]
    }

    fn functions(&self) -> Vec<Arc<dyn tfplugin::DynFunction>> {
        vec![
            tfplugin::function(UpperFunction),
            tfplugin::function(SumFunction),
        ]
    }
}

/// `tfptest_file` state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FileState {
    id: Value<String>,
    name: Value<String>,
    content: Value<String>,
    size: Value<i64>,
    secret: Value<String>,
    password_wo: Value<String>,
    labels: Value<BTreeMap<String, String>>,
    mode: Value<String>,
    rules: Value<Vec<Rule>>,
    revision: Value<i64>,
}

/// One element of `rules`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Rule {
    port: Value<i64>,
    protocol: Value<String>,
}

/// What is stored on disk per object.
#[derive(Serialize, Deserialize, Default)]
struct Stored {
    content: String,
    secret: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    rules: Option<Vec<StoredRule>>,
    revision: i64,
    /// FNV-1a of the write-only password, proving it arrived without storing it.
    password_hash: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredRule {
    port: i64,
    protocol: String,
}

fn fnv(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn file_path(dir: &Path, name: &str) -> Result<PathBuf> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(Diagnostic::error(
            "Invalid name",
            format!("{name:?} is not a valid file name."),
        )
        .at(AttributePath::new("name"))
        .into());
    }
    Ok(dir.join(format!("{name}.json")))
}

fn load(dir: &Path, name: &str) -> Result<Option<Stored>> {
    match std::fs::read(file_path(dir, name)?) {
        Ok(b) => Ok(Some(serde_json::from_slice(&b)?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn store(dir: &Path, name: &str, s: &Stored) -> Result<()> {
    std::fs::write(file_path(dir, name)?, serde_json::to_vec_pretty(s)?)?;
    Ok(())
}

fn default_rules(rules: &mut Value<Vec<Rule>>) {
    if let Some(rules) = rules.as_option_mut() {
        for r in rules {
            if !r.protocol.is_known() {
                r.protocol = Value::Known("tcp".into());
            }
        }
    }
}

impl FileState {
    fn to_stored(&self, revision: i64, password: &Value<String>) -> Stored {
        Stored {
            content: self.content.as_str().unwrap_or_default().to_string(),
            secret: self.secret.clone().known(),
            labels: self.labels.clone().known(),
            rules: self.rules.as_option().map(|rs| {
                rs.iter()
                    .map(|r| StoredRule {
                        port: r.port.clone().unwrap_or(0),
                        protocol: r.protocol.clone().unwrap_or_else_tcp(),
                    })
                    .collect()
            }),
            revision,
            password_hash: password.as_str().map(fnv),
        }
    }

    fn apply_stored(&mut self, s: Stored) {
        self.size = Value::Known(s.content.len() as i64);
        self.content = Value::Known(s.content);
        self.secret = s.secret.into();
        self.labels = s.labels.into();
        self.rules = s
            .rules
            .map(|rs| {
                rs.into_iter()
                    .map(|r| Rule {
                        port: r.port.into(),
                        protocol: r.protocol.into(),
                    })
                    .collect()
            })
            .into();
        self.revision = Value::Known(s.revision);
    }
}

trait TcpDefault {
    fn unwrap_or_else_tcp(self) -> String;
}
impl TcpDefault for Value<String> {
    fn unwrap_or_else_tcp(self) -> String {
        self.known().unwrap_or_else(|| "tcp".into())
    }
}

/// `tfptest_file`: a JSON file in the configured directory.
pub struct FileResource;

#[async_trait]
impl Resource for FileResource {
    const TYPE_NAME: &'static str = "tfptest_file";
    type State = FileState;

    fn schema(&self) -> Schema {
        let rule = vec![
            Attribute::number("port").required().description("Port."),
            Attribute::string("protocol")
                .optional_computed()
                .description("Protocol; defaults to `tcp`."),
        ];
        Schema::new("A JSON file named after `name`.")
            .attribute(
                Attribute::string("id")
                    .computed()
                    .description("Same as `name`."),
            )
            .attribute(
                Attribute::string("name")
                    .required()
                    .requires_replace()
                    .description("File name; changing it replaces the file."),
            )
            .attribute(
                Attribute::string("content")
                    .required()
                    .description("Content."),
            )
            .attribute(
                Attribute::number("size")
                    .computed()
                    .description("Length of `content`."),
            )
            .attribute(
                Attribute::string("secret")
                    .optional()
                    .sensitive()
                    .description("A secret."),
            )
            .attribute(
                Attribute::string("password_wo")
                    .optional()
                    .write_only()
                    .sensitive()
                    .description("Write-only password; only its hash is stored."),
            )
            .attribute(
                Attribute::map("labels", Type::String)
                    .optional()
                    .description("Labels."),
            )
            .attribute(
                Attribute::string("mode")
                    .default_value("standard")
                    .description("Mode; defaults to `standard`."),
            )
            .attribute(
                Attribute::nested("rules", Nesting::List, rule)
                    .optional()
                    .description("Rules."),
            )
            .attribute(
                Attribute::number("revision")
                    .computed()
                    .description("Bumped on every update."),
            )
    }

    fn identity_schema(&self) -> Option<IdentitySchema> {
        Some(IdentitySchema {
            version: 0,
            attributes: vec![IdentityAttribute::required_string("name", "File name.")],
        })
    }

    fn identity(&self, state: &FileState) -> Option<Dynamic> {
        let name = state.name.as_str()?;
        Some(Dynamic::object([("name", Dynamic::from(name))]))
    }

    async fn validate(&self, _ctx: &Ctx, config: &FileState) -> Result<()> {
        if let Some(labels) = config.labels.as_option() {
            if labels.contains_key("forbidden") {
                return Err(Diagnostic::error(
                    "Forbidden label",
                    "The label `forbidden` is reserved.",
                )
                .at(AttributePath::new("labels").key("forbidden"))
                .into());
            }
        }
        Ok(())
    }

    async fn read(
        &self,
        ctx: &Ctx,
        mut state: FileState,
        _p: &mut PrivateState,
    ) -> Result<Option<FileState>> {
        let data: &Data = ctx.provider_data()?;
        let Some(name) = state.name.clone().known() else {
            return Ok(None);
        };
        let Some(stored) = load(&data.dir, &name)? else {
            return Ok(None);
        };
        state.id = Value::Known(name);
        state.apply_stored(stored);
        Ok(Some(state))
    }

    async fn plan_create(
        &self,
        _ctx: &Ctx,
        mut plan: FileState,
        _c: &FileState,
        private: &mut PrivateState,
    ) -> Result<FileState> {
        if let Some(c) = plan.content.as_str() {
            plan.size = Value::Known(c.len() as i64);
        }
        if let Some(n) = plan.name.as_str() {
            plan.id = Value::Known(n.to_string());
        }
        default_rules(&mut plan.rules);
        private.set("planned_by", &"plan_create")?;
        Ok(plan)
    }

    async fn plan_update(
        &self,
        _ctx: &Ctx,
        prior: &FileState,
        mut plan: FileState,
        _c: &FileState,
        _private: &mut PrivateState,
        _replace: &mut Vec<AttributePath>,
    ) -> Result<FileState> {
        default_rules(&mut plan.rules);
        plan.size = match plan.content.as_str() {
            Some(c) => Value::Known(c.len() as i64),
            None => Value::Unknown,
        };
        let changed = prior.content != plan.content
            || prior.secret != plan.secret
            || prior.labels != plan.labels
            || prior.mode != plan.mode
            || prior.rules != plan.rules;
        if changed {
            plan.revision = Value::Unknown;
        }
        Ok(plan)
    }

    async fn create(
        &self,
        ctx: &Ctx,
        mut plan: FileState,
        config: &FileState,
        private: &mut PrivateState,
    ) -> Result<FileState> {
        let data: &Data = ctx.provider_data()?;
        if plan.content.as_str() == Some("PANIC") {
            panic!("tfptest was asked to panic");
        }
        if plan.content.as_str() == Some("SLOW") {
            // A long operation that honours Ctrl-C (StopProvider).
            tokio::select! {
                _ = ctx.stopping() => {
                    return Err(Diagnostic::error("Interrupted", "Stopped by Terraform.").into());
                }
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
        }
        let name = plan.name.as_str().unwrap_or_default().to_string();
        store(&data.dir, &name, &plan.to_stored(1, &config.password_wo))?;
        plan.id = Value::Known(name);
        plan.revision = Value::Known(1);
        plan.size = Value::Known(plan.content.as_str().unwrap_or_default().len() as i64);
        private.set("created_by_pid", &std::process::id())?;
        Ok(plan)
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: FileState,
        mut plan: FileState,
        config: &FileState,
        _p: &mut PrivateState,
    ) -> Result<FileState> {
        let data: &Data = ctx.provider_data()?;
        let revision = match plan.revision {
            Value::Known(r) => r,
            _ => prior.revision.unwrap_or(0) + 1,
        };
        let name = plan.name.as_str().unwrap_or_default().to_string();
        store(
            &data.dir,
            &name,
            &plan.to_stored(revision, &config.password_wo),
        )?;
        plan.revision = Value::Known(revision);
        plan.size = Value::Known(plan.content.as_str().unwrap_or_default().len() as i64);
        Ok(plan)
    }

    async fn delete(&self, ctx: &Ctx, prior: FileState, _p: &PrivateState) -> Result<()> {
        let data: &Data = ctx.provider_data()?;
        if let Some(name) = prior.name.as_str() {
            match std::fs::remove_file(file_path(&data.dir, name)?) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }

    async fn import(&self, _ctx: &Ctx, id: &str) -> Result<FileState> {
        Ok(FileState {
            id: id.into(),
            name: id.into(),
            content: Value::Null,
            size: Value::Null,
            secret: Value::Null,
            password_wo: Value::Null,
            labels: Value::Null,
            mode: Value::Null,
            rules: Value::Null,
            revision: Value::Null,
        })
    }
}

/// `tfptest_file` data source state.
#[derive(Serialize, Deserialize)]
pub struct FileData {
    name: Value<String>,
    content: Value<String>,
    size: Value<i64>,
}

/// Data source reading a file.
pub struct FileDataSource;

#[async_trait]
impl DataSource for FileDataSource {
    const TYPE_NAME: &'static str = "tfptest_file";
    type State = FileData;

    fn schema(&self) -> Schema {
        Schema::new("Reads a file.")
            .attribute(
                Attribute::string("name")
                    .required()
                    .description("File name."),
            )
            .attribute(
                Attribute::string("content")
                    .computed()
                    .description("Content."),
            )
            .attribute(Attribute::number("size").computed().description("Length."))
    }

    async fn read(&self, ctx: &Ctx, mut config: FileData) -> Result<FileData> {
        let data: &Data = ctx.provider_data()?;
        let name = config.name.as_str().unwrap_or_default().to_string();
        let Some(stored) = load(&data.dir, &name)? else {
            return Err(
                Diagnostic::error("Not found", format!("No file named {name:?}."))
                    .at(AttributePath::new("name"))
                    .into(),
            );
        };
        config.size = Value::Known(stored.content.len() as i64);
        config.content = Value::Known(stored.content);
        Ok(config)
    }
}

/// `tfptest_token` state.
#[derive(Serialize, Deserialize)]
pub struct Token {
    length: Value<i64>,
    value: Value<String>,
}

static TOKENS: AtomicU64 = AtomicU64::new(0);

/// Ephemeral token; open and close are recorded in `ephemeral.log`.
pub struct TokenEphemeral;

#[async_trait]
impl EphemeralResource for TokenEphemeral {
    const TYPE_NAME: &'static str = "tfptest_token";
    type State = Token;

    fn schema(&self) -> Schema {
        Schema::new("A short-lived token.")
            .attribute(
                Attribute::number("length")
                    .optional()
                    .description("Length (default 16)."),
            )
            .attribute(
                Attribute::string("value")
                    .computed()
                    .sensitive()
                    .description("The token."),
            )
    }

    async fn open(
        &self,
        ctx: &Ctx,
        mut config: Token,
        private: &mut PrivateState,
    ) -> Result<(Token, Option<SystemTime>)> {
        let data: &Data = ctx.provider_data()?;
        let len = config.length.clone().unwrap_or(16).clamp(4, 64) as usize;
        let n = TOKENS.fetch_add(1, Ordering::Relaxed);
        let seed = format!("{}{}", std::process::id(), n);
        let mut token = String::from("tok-");
        while token.len() < len {
            token.push_str(&fnv(&format!("{seed}{}", token.len())));
        }
        token.truncate(len);
        let id = format!("t{n}");
        append_log(&data.dir, &format!("open {id}"))?;
        private.set("id", &id)?;
        config.value = Value::Known(token);
        Ok((config, Some(SystemTime::now() + Duration::from_secs(3600))))
    }

    async fn close(&self, ctx: &Ctx, private: &PrivateState) -> Result<()> {
        let data: &Data = ctx.provider_data()?;
        let id: String = private.get("id").unwrap_or_default();
        append_log(&data.dir, &format!("close {id}"))
    }
}

fn append_log(dir: &Path, line: &str) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("ephemeral.log"))?;
    writeln!(f, "{line}")?;
    Ok(())
}

/// `provider::tfptest::upper(s)`.
pub struct UpperFunction;

#[async_trait]
impl Function for UpperFunction {
    const NAME: &'static str = "upper";
    fn definition(&self) -> FunctionDefinition {
        FunctionDefinition::new(Type::String, "Upper-cases a string.").parameter(Parameter::new(
            "s",
            Type::String,
            "The input.",
        ))
    }
    async fn call(
        &self,
        _ctx: &Ctx,
        args: Arguments,
    ) -> std::result::Result<Dynamic, FunctionError> {
        let s: String = args.get(0)?;
        if s == "fail" {
            return Err(FunctionError::argument(
                0,
                "refusing to upper-case \"fail\"",
            ));
        }
        Ok(Dynamic::from(s.to_uppercase()))
    }
}

/// `provider::tfptest::sum(numbers...)`: exact for integers, floats otherwise.
pub struct SumFunction;

#[async_trait]
impl Function for SumFunction {
    const NAME: &'static str = "sum";
    fn definition(&self) -> FunctionDefinition {
        FunctionDefinition::new(Type::Number, "Adds numbers.").variadic(Parameter::new(
            "n",
            Type::Number,
            "Numbers to add.",
        ))
    }
    async fn call(
        &self,
        _ctx: &Ctx,
        args: Arguments,
    ) -> std::result::Result<Dynamic, FunctionError> {
        let mut int: Option<i64> = Some(0);
        let mut float = 0.0;
        for (i, a) in args.0.iter().enumerate() {
            let Dynamic::Number(n) = a else {
                return Err(FunctionError::argument(i, "a number is required"));
            };
            float += n.as_f64();
            int = match (int, n.as_i64()) {
                (Some(acc), Some(v)) => acc.checked_add(v),
                _ => None,
            };
        }
        Ok(match int {
            Some(i) => Dynamic::from(i),
            None => Dynamic::from(float),
        })
    }
}

/// `tfptest_echo` state: the shape of Terraform's built-in `terraform_data`.
#[derive(Serialize, Deserialize)]
pub struct EchoState {
    id: Value<String>,
    input: Value<Dynamic>,
    output: Value<Dynamic>,
}

static ECHO_IDS: AtomicU64 = AtomicU64::new(0);

/// `tfptest_echo`: no backing store; mirrors `terraform_data` so the
/// benchmark can separate protocol cost from resource work.
pub struct EchoResource;

#[async_trait]
impl Resource for EchoResource {
    const TYPE_NAME: &'static str = "tfptest_echo";
    type State = EchoState;

    fn schema(&self) -> Schema {
        Schema::new("Stores `input` and echoes it as `output`.")
            .attribute(Attribute::string("id").computed().description("Unique ID."))
            .attribute(
                Attribute::dynamic("input")
                    .optional()
                    .description("Any value."),
            )
            .attribute(
                Attribute::dynamic("output")
                    .computed()
                    .description("Copy of `input`."),
            )
    }

    async fn read(
        &self,
        _ctx: &Ctx,
        state: EchoState,
        _p: &mut PrivateState,
    ) -> Result<Option<EchoState>> {
        Ok(Some(state))
    }

    async fn plan_create(
        &self,
        _ctx: &Ctx,
        mut plan: EchoState,
        _c: &EchoState,
        _p: &mut PrivateState,
    ) -> Result<EchoState> {
        plan.output = plan.input.clone();
        Ok(plan)
    }

    async fn plan_update(
        &self,
        _ctx: &Ctx,
        _prior: &EchoState,
        mut plan: EchoState,
        _c: &EchoState,
        _p: &mut PrivateState,
        _replace: &mut Vec<AttributePath>,
    ) -> Result<EchoState> {
        plan.output = plan.input.clone();
        Ok(plan)
    }

    async fn create(
        &self,
        _ctx: &Ctx,
        mut plan: EchoState,
        _c: &EchoState,
        _p: &mut PrivateState,
    ) -> Result<EchoState> {
        let n = ECHO_IDS.fetch_add(1, Ordering::Relaxed);
        plan.id = Value::Known(format!("{}-{n}", std::process::id()));
        plan.output = plan.input.clone();
        Ok(plan)
    }

    async fn update(
        &self,
        _ctx: &Ctx,
        _prior: EchoState,
        mut plan: EchoState,
        _c: &EchoState,
        _p: &mut PrivateState,
    ) -> Result<EchoState> {
        plan.output = plan.input.clone();
        Ok(plan)
    }

    async fn delete(&self, _ctx: &Ctx, _prior: EchoState, _p: &PrivateState) -> Result<()> {
        Ok(())
    }
}

/// `tfptest_null` state: the shape of the classic `null_resource`.
#[derive(Serialize, Deserialize)]
pub struct NullState {
    id: Value<String>,
    triggers: Value<BTreeMap<String, Value<String>>>,
}

static NULL_IDS: AtomicU64 = AtomicU64::new(0);

/// `tfptest_null`: `null_resource`'s shape (an ID and a map of strings that
/// forces replacement), with no backing store. The benchmark compares it
/// with `null_resource` served by other plugin libraries.
pub struct NullResource;

#[async_trait]
impl Resource for NullResource {
    const TYPE_NAME: &'static str = "tfptest_null";
    type State = NullState;

    fn schema(&self) -> Schema {
        Schema::new("Does nothing; `triggers` forces replacement.")
            .attribute(Attribute::string("id").computed().description("Unique ID."))
            .attribute(
                Attribute::map("triggers", Type::String)
                    .optional()
                    .requires_replace()
                    .description("Any strings; a change replaces the resource."),
            )
    }

    async fn read(
        &self,
        _ctx: &Ctx,
        state: NullState,
        _p: &mut PrivateState,
    ) -> Result<Option<NullState>> {
        Ok(Some(state))
    }

    async fn plan_create(
        &self,
        _ctx: &Ctx,
        plan: NullState,
        _c: &NullState,
        _p: &mut PrivateState,
    ) -> Result<NullState> {
        Ok(plan)
    }

    async fn plan_update(
        &self,
        _ctx: &Ctx,
        _prior: &NullState,
        plan: NullState,
        _c: &NullState,
        _p: &mut PrivateState,
        _replace: &mut Vec<AttributePath>,
    ) -> Result<NullState> {
        Ok(plan)
    }

    async fn create(
        &self,
        _ctx: &Ctx,
        mut plan: NullState,
        _c: &NullState,
        _p: &mut PrivateState,
    ) -> Result<NullState> {
        let n = NULL_IDS.fetch_add(1, Ordering::Relaxed);
        plan.id = Value::Known(format!("{}-{n}", std::process::id()));
        Ok(plan)
    }

    async fn update(
        &self,
        _ctx: &Ctx,
        _prior: NullState,
        plan: NullState,
        _c: &NullState,
        _p: &mut PrivateState,
    ) -> Result<NullState> {
        Ok(plan)
    }

    async fn delete(&self, _ctx: &Ctx, _prior: NullState, _p: &PrivateState) -> Result<()> {
        Ok(())
    }
}
