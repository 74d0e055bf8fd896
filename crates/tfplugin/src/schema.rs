//! Schemas: what attributes and blocks a provider, resource, data source or
//! ephemeral resource has. Descriptions are markdown (they become docs).

use std::collections::BTreeMap;

use crate::value::{Dynamic, Type};

/// A versioned schema.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schema {
    /// Bump when the state layout changes (see `Resource::upgrade_state`).
    pub version: i64,
    /// The top-level block.
    pub block: Block,
}

impl Schema {
    /// A version-0 schema with a markdown description.
    pub fn new(description: impl Into<String>) -> Self {
        Schema {
            version: 0,
            block: Block::new(description),
        }
    }
    /// Sets the schema version.
    pub fn version(mut self, version: i64) -> Self {
        self.version = version;
        self
    }
    /// Adds an attribute.
    pub fn attribute(mut self, attribute: Attribute) -> Self {
        self.block.attributes.push(attribute);
        self
    }
    /// Adds a nested block.
    pub fn block(mut self, block: NestedBlock) -> Self {
        self.block.blocks.push(block);
        self
    }
    /// Marks the whole resource deprecated.
    pub fn deprecated(mut self) -> Self {
        self.block.deprecated = true;
        self
    }
    /// The cty object type of values of this schema.
    pub fn value_type(&self) -> Type {
        self.block.value_type()
    }
    /// A top-level attribute by name.
    pub fn attr(&self, name: &str) -> Option<&Attribute> {
        self.block.attributes.iter().find(|a| a.name == name)
    }
}

/// A block: attributes plus nested blocks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Block {
    /// Attributes, in declaration order (sorted when sent).
    pub attributes: Vec<Attribute>,
    /// Nested blocks.
    pub blocks: Vec<NestedBlock>,
    /// Markdown description.
    pub description: String,
    /// Deprecated.
    pub deprecated: bool,
}

impl Block {
    /// An empty block with a description.
    pub fn new(description: impl Into<String>) -> Self {
        Block {
            description: description.into(),
            ..Default::default()
        }
    }
    /// Adds an attribute.
    pub fn attribute(mut self, attribute: Attribute) -> Self {
        self.attributes.push(attribute);
        self
    }
    /// Adds a nested block.
    pub fn block(mut self, block: NestedBlock) -> Self {
        self.blocks.push(block);
        self
    }
    /// The cty object type of this block's values.
    pub fn value_type(&self) -> Type {
        let mut attrs = BTreeMap::new();
        for a in &self.attributes {
            attrs.insert(a.name.clone(), a.value_type());
        }
        for b in &self.blocks {
            let obj = b.block.value_type();
            let t = match b.nesting {
                BlockNesting::Single | BlockNesting::Group => obj,
                BlockNesting::List => Type::list(obj),
                BlockNesting::Set => Type::set(obj),
                BlockNesting::Map => Type::map(obj),
            };
            attrs.insert(b.name.clone(), t);
        }
        Type::Object(attrs)
    }
}

/// How nested attributes or blocks repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    /// One object.
    Single,
    /// A list of objects.
    List,
    /// A set of objects.
    Set,
    /// A map of objects.
    Map,
}

/// How a nested block repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockNesting {
    /// At most one block; null when absent.
    Single,
    /// Exactly one block, never null.
    Group,
    /// A list of blocks.
    List,
    /// A set of blocks.
    Set,
    /// Labelled blocks.
    Map,
}

/// An attribute's type: a plain cty type or nested attributes.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeType {
    /// A cty type.
    Type(Type),
    /// Nested attributes (protocol 6 `nested_type`).
    Nested(Nesting, Vec<Attribute>),
}

/// One attribute of a block.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// Name.
    pub name: String,
    /// Type.
    pub ty: AttributeType,
    /// Markdown description.
    pub description: String,
    /// Must be set in configuration.
    pub required: bool,
    /// May be set in configuration.
    pub optional: bool,
    /// Set by the provider (with `optional`: defaulted by the provider).
    pub computed: bool,
    /// Hidden in plan output and marked sensitive in state.
    pub sensitive: bool,
    /// Only in configuration: never stored in plan or state (Terraform ≥1.11).
    pub write_only: bool,
    /// Deprecated.
    pub deprecated: bool,
    /// A change of this (top-level) attribute forces a replacement; the
    /// framework adds it to `requires_replace` when prior and planned differ.
    pub requires_replace: bool,
    /// Planned when the configuration leaves the attribute null.
    pub default: Option<Dynamic>,
}

impl Attribute {
    /// An attribute of any cty type; starts optional.
    pub fn new(name: impl Into<String>, ty: Type) -> Self {
        Attribute {
            name: name.into(),
            ty: AttributeType::Type(ty),
            description: String::new(),
            required: false,
            optional: true,
            computed: false,
            sensitive: false,
            write_only: false,
            deprecated: false,
            requires_replace: false,
            default: None,
        }
    }
    /// A string attribute.
    pub fn string(name: impl Into<String>) -> Self {
        Self::new(name, Type::String)
    }
    /// A number attribute.
    pub fn number(name: impl Into<String>) -> Self {
        Self::new(name, Type::Number)
    }
    /// A bool attribute.
    pub fn bool(name: impl Into<String>) -> Self {
        Self::new(name, Type::Bool)
    }
    /// A `list(element)` attribute.
    pub fn list(name: impl Into<String>, element: Type) -> Self {
        Self::new(name, Type::list(element))
    }
    /// A `set(element)` attribute.
    pub fn set(name: impl Into<String>, element: Type) -> Self {
        Self::new(name, Type::set(element))
    }
    /// A `map(element)` attribute.
    pub fn map(name: impl Into<String>, element: Type) -> Self {
        Self::new(name, Type::map(element))
    }
    /// A dynamic-typed attribute.
    pub fn dynamic(name: impl Into<String>) -> Self {
        Self::new(name, Type::Dynamic)
    }
    /// Nested attributes with the given nesting.
    pub fn nested(name: impl Into<String>, nesting: Nesting, attributes: Vec<Attribute>) -> Self {
        let mut a = Self::new(name, Type::Dynamic);
        a.ty = AttributeType::Nested(nesting, attributes);
        a
    }

    /// Required in configuration.
    pub fn required(mut self) -> Self {
        self.required = true;
        self.optional = false;
        self.computed = false;
        self
    }
    /// Optional in configuration (the default).
    pub fn optional(mut self) -> Self {
        self.required = false;
        self.optional = true;
        self
    }
    /// Set only by the provider.
    pub fn computed(mut self) -> Self {
        self.required = false;
        self.optional = false;
        self.computed = true;
        self
    }
    /// Optional; the provider fills it when not configured.
    pub fn optional_computed(mut self) -> Self {
        self.required = false;
        self.optional = true;
        self.computed = true;
        self
    }
    /// Sensitive.
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
    /// Write-only: the value is available in configuration only.
    pub fn write_only(mut self) -> Self {
        self.write_only = true;
        self
    }
    /// Deprecated.
    pub fn deprecated(mut self) -> Self {
        self.deprecated = true;
        self
    }
    /// Changing it replaces the resource.
    pub fn requires_replace(mut self) -> Self {
        self.requires_replace = true;
        self
    }
    /// Markdown description.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }
    /// A default used when the configuration leaves the attribute null (makes
    /// it optional + computed, as Terraform requires for provider-set values).
    /// Mention the default in the description: docs do not show it otherwise.
    pub fn default_value(mut self, value: impl Into<Dynamic>) -> Self {
        self.default = Some(value.into());
        self.optional_computed()
    }

    /// The cty type of this attribute's values.
    pub fn value_type(&self) -> Type {
        match &self.ty {
            AttributeType::Type(t) => t.clone(),
            AttributeType::Nested(nesting, attrs) => {
                let obj = Type::Object(
                    attrs
                        .iter()
                        .map(|a| (a.name.clone(), a.value_type()))
                        .collect(),
                );
                match nesting {
                    Nesting::Single => obj,
                    Nesting::List => Type::list(obj),
                    Nesting::Set => Type::set(obj),
                    Nesting::Map => Type::map(obj),
                }
            }
        }
    }
}

/// A nested block.
#[derive(Debug, Clone, PartialEq)]
pub struct NestedBlock {
    /// Block type name.
    pub name: String,
    /// Repetition.
    pub nesting: BlockNesting,
    /// Contents.
    pub block: Block,
    /// Minimum count (0 = none).
    pub min_items: i64,
    /// Maximum count (0 = none).
    pub max_items: i64,
}

impl NestedBlock {
    /// A nested block.
    pub fn new(name: impl Into<String>, nesting: BlockNesting, block: Block) -> Self {
        NestedBlock {
            name: name.into(),
            nesting,
            block,
            min_items: 0,
            max_items: 0,
        }
    }
    /// Sets min/max item counts.
    pub fn items(mut self, min: i64, max: i64) -> Self {
        self.min_items = min;
        self.max_items = max;
        self
    }
}

/// A resource identity schema (protocol 6.9, Terraform ≥1.12).
#[derive(Debug, Clone, PartialEq)]
pub struct IdentitySchema {
    /// Identity version (independent of the schema version).
    pub version: i64,
    /// The identity attributes.
    pub attributes: Vec<IdentityAttribute>,
}

/// One identity attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityAttribute {
    /// Name.
    pub name: String,
    /// Type.
    pub ty: Type,
    /// Must be given to import by identity.
    pub required_for_import: bool,
    /// May be given to import by identity.
    pub optional_for_import: bool,
    /// Markdown description.
    pub description: String,
}

impl IdentityAttribute {
    /// A string identity attribute required for import.
    pub fn required_string(name: impl Into<String>, description: impl Into<String>) -> Self {
        IdentityAttribute {
            name: name.into(),
            ty: Type::String,
            required_for_import: true,
            optional_for_import: false,
            description: description.into(),
        }
    }
}

impl IdentitySchema {
    /// The identity object type.
    pub fn value_type(&self) -> Type {
        Type::Object(
            self.attributes
                .iter()
                .map(|a| (a.name.clone(), a.ty.clone()))
                .collect(),
        )
    }
}

/// A function parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    /// Display name.
    pub name: String,
    /// Type constraint.
    pub ty: Type,
    /// Null may be passed.
    pub allow_null: bool,
    /// Unknown values are passed instead of skipping the call.
    pub allow_unknown: bool,
    /// Markdown description.
    pub description: String,
}

impl Parameter {
    /// A parameter that accepts neither null nor unknown.
    pub fn new(name: impl Into<String>, ty: Type, description: impl Into<String>) -> Self {
        Parameter {
            name: name.into(),
            ty,
            allow_null: false,
            allow_unknown: false,
            description: description.into(),
        }
    }
}

/// A provider function's signature and docs.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionDefinition {
    /// Positional parameters.
    pub parameters: Vec<Parameter>,
    /// Final variadic parameter.
    pub variadic: Option<Parameter>,
    /// Result type.
    pub return_type: Type,
    /// One-line summary.
    pub summary: String,
    /// Markdown description.
    pub description: String,
    /// Set when deprecated.
    pub deprecation_message: Option<String>,
}

impl FunctionDefinition {
    /// A definition with no parameters yet.
    pub fn new(return_type: Type, summary: impl Into<String>) -> Self {
        FunctionDefinition {
            parameters: Vec::new(),
            variadic: None,
            return_type,
            summary: summary.into(),
            description: String::new(),
            deprecation_message: None,
        }
    }
    /// Adds a parameter.
    pub fn parameter(mut self, p: Parameter) -> Self {
        self.parameters.push(p);
        self
    }
    /// Sets the variadic parameter.
    pub fn variadic(mut self, p: Parameter) -> Self {
        self.variadic = Some(p);
        self
    }
    /// Sets the description.
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = d.into();
        self
    }
}
