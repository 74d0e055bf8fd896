//! The object-safe layer the server dispatches to ([`DynResource`] and
//! friends) and the adapters that put typed implementations behind it. The
//! schema-driven protocol chores live here, so every resource gets them.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::diag::{AttributePath, Diagnostic, Diagnostics};
use crate::schema::{
    AttributeType, Block, BlockNesting, FunctionDefinition, IdentitySchema, Nesting, Schema,
};
use crate::traits::{
    Arguments, Ctx, DataSource, EphemeralResource, Function, FunctionError, MoveSource,
    PrivateState, Resource, Result,
};
use crate::value::{from_dynamic, to_dynamic, Dynamic, Type};

/// What planning produced.
#[derive(Debug, Clone)]
pub struct PlanOutcome {
    /// Planned state.
    pub planned: Dynamic,
    /// Attributes whose change forces replacement.
    pub requires_replace: Vec<AttributePath>,
    /// Planned identity.
    pub identity: Option<Dynamic>,
}

/// An object-safe managed resource working on [`Dynamic`] values.
#[async_trait]
pub trait DynResource: Send + Sync + 'static {
    /// Full type name.
    fn type_name(&self) -> &str;
    /// Schema (cached).
    fn schema(&self) -> &Schema;
    /// The state's cty type (cached).
    fn value_type(&self) -> &Type;
    /// Identity schema (cached).
    fn identity_schema(&self) -> Option<&IdentitySchema>;
    /// ValidateResourceConfig.
    async fn validate(&self, ctx: &Ctx, config: Dynamic) -> Result<()>;
    /// ReadResource; `Dynamic::Null` means gone.
    async fn read(
        &self,
        ctx: &Ctx,
        state: Dynamic,
        private: &mut PrivateState,
    ) -> Result<(Dynamic, Option<Dynamic>)>;
    /// PlanResourceChange.
    async fn plan(
        &self,
        ctx: &Ctx,
        prior: Dynamic,
        proposed: Dynamic,
        config: Dynamic,
        private: &mut PrivateState,
    ) -> Result<PlanOutcome>;
    /// ApplyResourceChange; returns new state (null after delete) and identity.
    async fn apply(
        &self,
        ctx: &Ctx,
        prior: Dynamic,
        planned: Dynamic,
        config: Dynamic,
        private: &mut PrivateState,
    ) -> Result<(Dynamic, Option<Dynamic>)>;
    /// ImportResourceState by ID or identity.
    async fn import(
        &self,
        ctx: &Ctx,
        id: &str,
        identity: Option<Dynamic>,
    ) -> Result<(Dynamic, Option<Dynamic>)>;
    /// UpgradeResourceState from JSON.
    async fn upgrade(&self, ctx: &Ctx, version: i64, raw: &[u8]) -> Result<Dynamic>;
    /// MoveResourceState.
    async fn move_state(&self, ctx: &Ctx, source: MoveSource) -> Result<(Dynamic, PrivateState)>;
}

/// An object-safe data source.
#[async_trait]
pub trait DynDataSource: Send + Sync + 'static {
    /// Full type name.
    fn type_name(&self) -> &str;
    /// Schema (cached).
    fn schema(&self) -> &Schema;
    /// Value type (cached).
    fn value_type(&self) -> &Type;
    /// ValidateDataResourceConfig.
    async fn validate(&self, ctx: &Ctx, config: Dynamic) -> Result<()>;
    /// ReadDataSource.
    async fn read(&self, ctx: &Ctx, config: Dynamic) -> Result<Dynamic>;
}

/// An object-safe ephemeral resource.
#[async_trait]
pub trait DynEphemeralResource: Send + Sync + 'static {
    /// Full type name.
    fn type_name(&self) -> &str;
    /// Schema (cached).
    fn schema(&self) -> &Schema;
    /// Value type (cached).
    fn value_type(&self) -> &Type;
    /// ValidateEphemeralResourceConfig.
    async fn validate(&self, ctx: &Ctx, config: Dynamic) -> Result<()>;
    /// OpenEphemeralResource.
    async fn open(
        &self,
        ctx: &Ctx,
        config: Dynamic,
        private: &mut PrivateState,
    ) -> Result<(Dynamic, Option<SystemTime>)>;
    /// RenewEphemeralResource.
    async fn renew(&self, ctx: &Ctx, private: &mut PrivateState) -> Result<Option<SystemTime>>;
    /// CloseEphemeralResource.
    async fn close(&self, ctx: &Ctx, private: &PrivateState) -> Result<()>;
}

/// An object-safe function.
#[async_trait]
pub trait DynFunction: Send + Sync + 'static {
    /// Name.
    fn name(&self) -> &str;
    /// Definition (cached).
    fn definition(&self) -> &FunctionDefinition;
    /// CallFunction.
    async fn call(&self, ctx: &Ctx, args: Arguments)
        -> std::result::Result<Dynamic, FunctionError>;
}

/// Wraps a typed [`Resource`] for registration in [`crate::Provider::resources`].
pub fn resource<R: Resource>(r: R) -> Arc<dyn DynResource> {
    let schema = r.schema();
    let ty = schema.value_type();
    let identity = r.identity_schema();
    Arc::new(TypedResource {
        inner: r,
        schema,
        ty,
        identity,
    })
}

/// Wraps a typed [`DataSource`].
pub fn data_source<D: DataSource>(d: D) -> Arc<dyn DynDataSource> {
    let schema = d.schema();
    let ty = schema.value_type();
    Arc::new(TypedDataSource {
        inner: d,
        schema,
        ty,
    })
}

/// Wraps a typed [`EphemeralResource`].
pub fn ephemeral_resource<E: EphemeralResource>(e: E) -> Arc<dyn DynEphemeralResource> {
    let schema = e.schema();
    let ty = schema.value_type();
    Arc::new(TypedEphemeral {
        inner: e,
        schema,
        ty,
    })
}

/// Wraps a typed [`Function`].
pub fn function<F: Function>(f: F) -> Arc<dyn DynFunction> {
    let definition = f.definition();
    Arc::new(TypedFunction {
        inner: f,
        definition,
    })
}

struct TypedResource<R> {
    inner: R,
    schema: Schema,
    ty: Type,
    identity: Option<IdentitySchema>,
}

struct TypedDataSource<D> {
    inner: D,
    schema: Schema,
    ty: Type,
}

struct TypedEphemeral<E> {
    inner: E,
    schema: Schema,
    ty: Type,
}

struct TypedFunction<F> {
    inner: F,
    definition: FunctionDefinition,
}

/// Dynamic → typed, with an error diagnostic that names what failed.
pub(crate) fn decode_typed<T: DeserializeOwned>(what: &str, v: Dynamic) -> Result<T> {
    from_dynamic(v).map_err(|e| {
        Diagnostic::error(
            format!("Invalid {what}"),
            format!("The provider could not read the {what}: {e}"),
        )
        .into()
    })
}

/// Typed → Dynamic, failing with a provider-bug diagnostic.
pub(crate) fn encode_typed<T: Serialize>(what: &str, v: &T) -> Result<Dynamic> {
    to_dynamic(v).map_err(|e| {
        Diagnostic::error(
            format!("Invalid {what}"),
            format!("The provider produced an invalid {what}: {e}. This is a bug in the provider."),
        )
        .into()
    })
}

#[async_trait]
impl<R: Resource> DynResource for TypedResource<R> {
    fn type_name(&self) -> &str {
        R::TYPE_NAME
    }
    fn schema(&self) -> &Schema {
        &self.schema
    }
    fn value_type(&self) -> &Type {
        &self.ty
    }
    fn identity_schema(&self) -> Option<&IdentitySchema> {
        self.identity.as_ref()
    }

    async fn validate(&self, ctx: &Ctx, config: Dynamic) -> Result<()> {
        reject_configured_computed(&self.schema, &config)?;
        let typed: R::State = decode_typed("configuration", config)?;
        self.inner.validate(ctx, &typed).await
    }

    async fn read(
        &self,
        ctx: &Ctx,
        state: Dynamic,
        private: &mut PrivateState,
    ) -> Result<(Dynamic, Option<Dynamic>)> {
        if state.is_null() {
            return Ok((Dynamic::Null, None));
        }
        let typed: R::State = decode_typed("state", state)?;
        match self.inner.read(ctx, typed, private).await? {
            None => Ok((Dynamic::Null, None)),
            Some(new) => {
                let identity = self.identity_of(&new);
                let mut v = encode_typed("state", &new)?;
                null_write_only(&self.schema.block, &mut v);
                Ok((v, identity))
            }
        }
    }

    async fn plan(
        &self,
        ctx: &Ctx,
        prior: Dynamic,
        proposed: Dynamic,
        config: Dynamic,
        private: &mut PrivateState,
    ) -> Result<PlanOutcome> {
        if proposed.is_null() {
            // Destroy.
            if !prior.is_null() {
                let typed: R::State = decode_typed("prior state", prior)?;
                self.inner.plan_destroy(ctx, &typed, private).await?;
            }
            return Ok(PlanOutcome {
                planned: Dynamic::Null,
                requires_replace: Vec::new(),
                identity: None,
            });
        }
        let typed_config: R::State = decode_typed("configuration", config.clone())?;
        let mut requires_replace = Vec::new();
        let mut proposed = proposed;
        apply_defaults(&self.schema.block, &mut proposed, &config);
        let planned_typed = if prior.is_null() {
            mark_computed_unknown(&self.schema.block, &mut proposed, &config);
            let plan: R::State = decode_typed("planned state", proposed)?;
            self.inner
                .plan_create(ctx, plan, &typed_config, private)
                .await?
        } else {
            let typed_prior: R::State = decode_typed("prior state", prior.clone())?;
            let plan: R::State = decode_typed("planned state", proposed)?;
            self.inner
                .plan_update(
                    ctx,
                    &typed_prior,
                    plan,
                    &typed_config,
                    private,
                    &mut requires_replace,
                )
                .await?
        };
        let identity = self.identity_of(&planned_typed);
        let mut planned = encode_typed("planned state", &planned_typed)?;
        null_write_only(&self.schema.block, &mut planned);
        if !prior.is_null() {
            for a in &self.schema.block.attributes {
                if !a.requires_replace {
                    continue;
                }
                let before = prior.get(&a.name).unwrap_or(&Dynamic::Null);
                let after = planned.get(&a.name).unwrap_or(&Dynamic::Null);
                let path = AttributePath::new(a.name.clone());
                if before != after && !requires_replace.contains(&path) {
                    requires_replace.push(path);
                }
            }
        }
        Ok(PlanOutcome {
            planned,
            requires_replace,
            identity,
        })
    }

    async fn apply(
        &self,
        ctx: &Ctx,
        prior: Dynamic,
        planned: Dynamic,
        config: Dynamic,
        private: &mut PrivateState,
    ) -> Result<(Dynamic, Option<Dynamic>)> {
        if planned.is_null() {
            let typed: R::State = decode_typed("prior state", prior)?;
            self.inner.delete(ctx, typed, private).await?;
            return Ok((Dynamic::Null, None));
        }
        let typed_config: R::State = decode_typed("configuration", config)?;
        let typed_planned: R::State = decode_typed("planned state", planned)?;
        let new = if prior.is_null() {
            self.inner
                .create(ctx, typed_planned, &typed_config, private)
                .await?
        } else {
            let typed_prior: R::State = decode_typed("prior state", prior)?;
            self.inner
                .update(ctx, typed_prior, typed_planned, &typed_config, private)
                .await?
        };
        let identity = self.identity_of(&new);
        let mut v = encode_typed("new state", &new)?;
        null_write_only(&self.schema.block, &mut v);
        if !v.is_wholly_known() {
            return Err(Diagnostic::error(
                "Provider returned an unknown value after apply",
                format!(
                    "{} left some attributes unknown after {}. This is a bug in the provider.",
                    R::TYPE_NAME,
                    ctx.rpc()
                ),
            )
            .into());
        }
        Ok((v, identity))
    }

    async fn import(
        &self,
        ctx: &Ctx,
        id: &str,
        identity: Option<Dynamic>,
    ) -> Result<(Dynamic, Option<Dynamic>)> {
        let state = match identity {
            Some(ident) if id.is_empty() && !ident.is_null() => {
                self.inner.import_by_identity(ctx, ident).await?
            }
            _ => self.inner.import(ctx, id).await?,
        };
        let identity = self.identity_of(&state);
        let mut v = encode_typed("imported state", &state)?;
        null_write_only(&self.schema.block, &mut v);
        Ok((v, identity))
    }

    async fn upgrade(&self, ctx: &Ctx, version: i64, raw: &[u8]) -> Result<Dynamic> {
        if version == self.schema.version {
            // Same layout: decode leniently by the current type (unknown
            // attributes are dropped, missing ones become null).
            return crate::value::dynamic_from_json_bytes(raw, &self.ty).map_err(|e| {
                Diagnostic::error(
                    "Invalid stored state",
                    format!(
                        "The stored state of {} could not be read: {e}",
                        R::TYPE_NAME
                    ),
                )
                .into()
            });
        }
        if version > self.schema.version {
            return Err(Diagnostic::error(
                "State from a newer provider",
                format!(
                    "The state of {} has schema version {version}, newer than this provider's {}. \
                     Upgrade the provider.",
                    R::TYPE_NAME,
                    self.schema.version
                ),
            )
            .into());
        }
        let json: serde_json::Value = serde_json::from_slice(raw)?;
        let state = self.inner.upgrade_state(ctx, version, json).await?;
        encode_typed("upgraded state", &state)
    }

    async fn move_state(&self, ctx: &Ctx, source: MoveSource) -> Result<(Dynamic, PrivateState)> {
        let private = source.private.clone();
        let state = self.inner.move_state(ctx, source).await?;
        Ok((encode_typed("moved state", &state)?, private))
    }
}

impl<R: Resource> TypedResource<R> {
    fn identity_of(&self, state: &R::State) -> Option<Dynamic> {
        self.identity.as_ref()?;
        self.inner.identity(state)
    }
}

#[async_trait]
impl<D: DataSource> DynDataSource for TypedDataSource<D> {
    fn type_name(&self) -> &str {
        D::TYPE_NAME
    }
    fn schema(&self) -> &Schema {
        &self.schema
    }
    fn value_type(&self) -> &Type {
        &self.ty
    }
    async fn validate(&self, ctx: &Ctx, config: Dynamic) -> Result<()> {
        reject_configured_computed(&self.schema, &config)?;
        let typed: D::State = decode_typed("configuration", config)?;
        self.inner.validate(ctx, &typed).await
    }
    async fn read(&self, ctx: &Ctx, config: Dynamic) -> Result<Dynamic> {
        let typed: D::State = decode_typed("configuration", config)?;
        let out = self.inner.read(ctx, typed).await?;
        let v = encode_typed("data source state", &out)?;
        if !v.is_wholly_known() {
            return Err(Diagnostic::error(
                "Provider returned an unknown value",
                format!(
                    "{} left attributes unknown. This is a bug in the provider.",
                    D::TYPE_NAME
                ),
            )
            .into());
        }
        Ok(v)
    }
}

#[async_trait]
impl<E: EphemeralResource> DynEphemeralResource for TypedEphemeral<E> {
    fn type_name(&self) -> &str {
        E::TYPE_NAME
    }
    fn schema(&self) -> &Schema {
        &self.schema
    }
    fn value_type(&self) -> &Type {
        &self.ty
    }
    async fn validate(&self, ctx: &Ctx, config: Dynamic) -> Result<()> {
        reject_configured_computed(&self.schema, &config)?;
        let typed: E::State = decode_typed("configuration", config)?;
        self.inner.validate(ctx, &typed).await
    }
    async fn open(
        &self,
        ctx: &Ctx,
        config: Dynamic,
        private: &mut PrivateState,
    ) -> Result<(Dynamic, Option<SystemTime>)> {
        let typed: E::State = decode_typed("configuration", config)?;
        let (out, renew) = self.inner.open(ctx, typed, private).await?;
        Ok((encode_typed("ephemeral result", &out)?, renew))
    }
    async fn renew(&self, ctx: &Ctx, private: &mut PrivateState) -> Result<Option<SystemTime>> {
        self.inner.renew(ctx, private).await
    }
    async fn close(&self, ctx: &Ctx, private: &PrivateState) -> Result<()> {
        self.inner.close(ctx, private).await
    }
}

#[async_trait]
impl<F: Function> DynFunction for TypedFunction<F> {
    fn name(&self) -> &str {
        F::NAME
    }
    fn definition(&self) -> &FunctionDefinition {
        &self.definition
    }
    async fn call(
        &self,
        ctx: &Ctx,
        args: Arguments,
    ) -> std::result::Result<Dynamic, FunctionError> {
        self.inner.call(ctx, args).await
    }
}

// ---- schema-driven chores ----------------------------------------------

/// Plans declared defaults for attributes the configuration leaves null,
/// descending into configured nested attributes/blocks.
pub(crate) fn apply_defaults(block: &Block, planned: &mut Dynamic, config: &Dynamic) {
    let Dynamic::Map(pm) = planned else { return };
    for a in &block.attributes {
        let cfg = config.get(&a.name).unwrap_or(&Dynamic::Null);
        let Some(pv) = pm.get_mut(&a.name) else {
            continue;
        };
        if let (Some(default), true) = (&a.default, cfg.is_null()) {
            *pv = default.clone();
            continue;
        }
        if let AttributeType::Nested(nesting, attrs) = &a.ty {
            let nested = Block {
                attributes: attrs.clone(),
                ..Default::default()
            };
            walk_pairs(
                *nesting == Nesting::Single,
                &nested,
                pv,
                cfg,
                apply_defaults,
            );
        }
    }
    for b in &block.blocks {
        let cfg = config.get(&b.name).unwrap_or(&Dynamic::Null);
        if let Some(pv) = pm.get_mut(&b.name) {
            let single = matches!(b.nesting, BlockNesting::Single | BlockNesting::Group);
            walk_pairs(single, &b.block, pv, cfg, apply_defaults);
        }
    }
}

/// Marks computed attributes that are null in configuration as unknown
/// (create planning), descending into configured nested attributes/blocks.
pub(crate) fn mark_computed_unknown(block: &Block, planned: &mut Dynamic, config: &Dynamic) {
    let Dynamic::Map(pm) = planned else { return };
    for a in &block.attributes {
        let cfg = config.get(&a.name).unwrap_or(&Dynamic::Null);
        let Some(pv) = pm.get_mut(&a.name) else {
            continue;
        };
        if a.computed && cfg.is_null() && pv.is_null() {
            *pv = Dynamic::UNKNOWN;
            continue;
        }
        if let AttributeType::Nested(nesting, attrs) = &a.ty {
            let nested = Block {
                attributes: attrs.clone(),
                ..Default::default()
            };
            walk_pairs(
                *nesting == Nesting::Single,
                &nested,
                pv,
                cfg,
                mark_computed_unknown,
            );
        }
    }
    for b in &block.blocks {
        let cfg = config.get(&b.name).unwrap_or(&Dynamic::Null);
        if let Some(pv) = pm.get_mut(&b.name) {
            let single = matches!(b.nesting, BlockNesting::Single | BlockNesting::Group);
            walk_pairs(single, &b.block, pv, cfg, mark_computed_unknown);
        }
    }
}

/// Applies `f` to each nested object of a planned value together with the
/// matching configured object (by position for lists/sets, key for maps).
fn walk_pairs(
    single: bool,
    block: &Block,
    pv: &mut Dynamic,
    cfg: &Dynamic,
    f: fn(&Block, &mut Dynamic, &Dynamic),
) {
    if single {
        f(block, pv, cfg);
        return;
    }
    match (pv, cfg) {
        (Dynamic::List(items), Dynamic::List(cfg_items)) => {
            for (p, c) in items.iter_mut().zip(cfg_items) {
                f(block, p, c);
            }
        }
        (Dynamic::Map(items), Dynamic::Map(cfg_items)) => {
            for (k, p) in items.iter_mut() {
                if let Some(c) = cfg_items.get(k) {
                    f(block, p, c);
                }
            }
        }
        _ => {}
    }
}

/// Sets every write-only attribute to null: Terraform rejects plans and
/// states that carry write-only values.
pub(crate) fn null_write_only(block: &Block, v: &mut Dynamic) {
    let Dynamic::Map(m) = v else { return };
    for a in &block.attributes {
        let Some(av) = m.get_mut(&a.name) else {
            continue;
        };
        if a.write_only {
            *av = Dynamic::Null;
        } else if let AttributeType::Nested(nesting, attrs) = &a.ty {
            let nested = Block {
                attributes: attrs.clone(),
                ..Default::default()
            };
            for_each_object(*nesting == Nesting::Single, av, &mut |o| {
                null_write_only(&nested, o)
            });
        }
    }
    for b in &block.blocks {
        if let Some(bv) = m.get_mut(&b.name) {
            let single = matches!(b.nesting, BlockNesting::Single | BlockNesting::Group);
            for_each_object(single, bv, &mut |o| null_write_only(&b.block, o));
        }
    }
}

/// Calls `f` on each nested object: the value itself for single nesting,
/// else every element of the list, set or map.
fn for_each_object(single: bool, v: &mut Dynamic, f: &mut dyn FnMut(&mut Dynamic)) {
    if single {
        f(v);
        return;
    }
    match v {
        Dynamic::List(items) => items.iter_mut().for_each(f),
        Dynamic::Map(m) => m.values_mut().for_each(f),
        _ => {}
    }
}

/// The validate step every object kind shares: configured values for
/// computed-only attributes are errors at their paths.
fn reject_configured_computed(schema: &Schema, config: &Dynamic) -> Result<()> {
    let mut diags = Diagnostics::new();
    check_unconfigurable(&schema.block, config, &AttributePath::root(), &mut diags);
    diags.into_result()
}

/// Rejects configured values for computed-only attributes, which Terraform
/// itself does not catch for protocol-6 providers.
pub(crate) fn check_unconfigurable(
    block: &Block,
    config: &Dynamic,
    path: &AttributePath,
    diags: &mut Diagnostics,
) {
    for a in &block.attributes {
        let v = config.get(&a.name).unwrap_or(&Dynamic::Null);
        let p = path.clone().attr(a.name.clone());
        if a.computed && !a.optional && !a.required && !v.is_null() {
            diags.error_at(
                p,
                "Value for unconfigurable attribute",
                format!(
                    "Can't configure a value for {:?}: its value is decided by the provider.",
                    a.name
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Attribute, NestedBlock};

    fn block() -> Block {
        Block::new("t")
            .attribute(Attribute::string("id").computed())
            .attribute(Attribute::string("name").required())
            .attribute(Attribute::string("token").optional().write_only())
            .attribute(Attribute::nested(
                "rules",
                Nesting::List,
                vec![
                    Attribute::number("port").required(),
                    Attribute::string("proto").optional_computed(),
                    Attribute::string("pw").optional().write_only(),
                ],
            ))
            .block(NestedBlock::new(
                "settings",
                BlockNesting::Single,
                Block::new("s").attribute(Attribute::string("mode").optional_computed()),
            ))
    }

    fn rule(port: i64, proto: Dynamic, pw: Dynamic) -> Dynamic {
        Dynamic::object([("port", Dynamic::from(port)), ("proto", proto), ("pw", pw)])
    }

    #[test]
    fn create_marks_unconfigured_computed_values_unknown_at_every_level() {
        let config = Dynamic::object([
            ("id", Dynamic::Null),
            ("name", "n".into()),
            (
                "rules",
                Dynamic::List(vec![
                    rule(1, Dynamic::Null, Dynamic::Null),
                    rule(2, "udp".into(), Dynamic::Null),
                ]),
            ),
            ("settings", Dynamic::object([("mode", Dynamic::Null)])),
        ]);
        let mut planned = config.clone();
        mark_computed_unknown(&block(), &mut planned, &config);
        assert!(planned.get("id").unwrap().is_unknown());
        assert_eq!(planned.get("name").unwrap().as_str(), Some("n"));
        let Some(Dynamic::List(rules)) = planned.get("rules") else {
            panic!()
        };
        assert!(rules[0].get("proto").unwrap().is_unknown());
        assert_eq!(rules[1].get("proto").unwrap().as_str(), Some("udp"));
        assert!(
            rules[0].get("pw").unwrap().is_null(),
            "optional non-computed stays null"
        );
        assert!(planned
            .get("settings")
            .unwrap()
            .get("mode")
            .unwrap()
            .is_unknown());
    }

    #[test]
    fn defaults_fill_null_configuration_only() {
        let b = Block::new("t")
            .attribute(Attribute::number("weight").default_value(400i64))
            .attribute(Attribute::nested(
                "items",
                Nesting::Map,
                vec![Attribute::string("mode").default_value("rolling")],
            ));
        assert!(b.attributes[0].optional && b.attributes[0].computed);
        let config = Dynamic::object([
            ("weight", Dynamic::Null),
            (
                "items",
                Dynamic::object([
                    ("a", Dynamic::object([("mode", Dynamic::Null)])),
                    ("b", Dynamic::object([("mode", "manual".into())])),
                ]),
            ),
        ]);
        let mut planned = config.clone();
        apply_defaults(&b, &mut planned, &config);
        assert_eq!(planned.get("weight"), Some(&Dynamic::from(400i64)));
        let items = planned.get("items").unwrap();
        assert_eq!(
            items.get("a").unwrap().get("mode").unwrap().as_str(),
            Some("rolling")
        );
        assert_eq!(
            items.get("b").unwrap().get("mode").unwrap().as_str(),
            Some("manual")
        );
        // A configured value wins.
        let config = Dynamic::object([("weight", Dynamic::from(5i64)), ("items", Dynamic::Null)]);
        let mut planned = config.clone();
        apply_defaults(&b, &mut planned, &config);
        assert_eq!(planned.get("weight"), Some(&Dynamic::from(5i64)));
    }

    #[test]
    fn write_only_values_are_nulled_in_nested_attributes_too() {
        let mut v = Dynamic::object([
            ("token", "secret".into()),
            ("name", "n".into()),
            (
                "rules",
                Dynamic::List(vec![rule(1, "tcp".into(), "pw".into())]),
            ),
        ]);
        null_write_only(&block(), &mut v);
        assert!(v.get("token").unwrap().is_null());
        assert_eq!(v.get("name").unwrap().as_str(), Some("n"));
        let Some(Dynamic::List(rules)) = v.get("rules") else {
            panic!()
        };
        assert!(rules[0].get("pw").unwrap().is_null());
        assert_eq!(rules[0].get("proto").unwrap().as_str(), Some("tcp"));
    }

    #[test]
    fn configuring_a_computed_only_attribute_is_an_error() {
        let mut d = Diagnostics::new();
        let config = Dynamic::object([("id", "x".into()), ("name", "n".into())]);
        check_unconfigurable(&block(), &config, &AttributePath::root(), &mut d);
        assert!(d.has_errors());
        assert_eq!(d.0[0].path, Some(AttributePath::new("id")));
        let mut d = Diagnostics::new();
        let config = Dynamic::object([("id", Dynamic::Null), ("name", "n".into())]);
        check_unconfigurable(&block(), &config, &AttributePath::root(), &mut d);
        assert!(d.is_empty());
    }
}
