//! `omni_image_factory_extensions`: the official system extensions for a Talos version
//! (image-factory-and-talos.md §3.1).

use serde::{Deserialize, Serialize};
use tfplugin::{
    async_trait, Attribute, AttributePath, Ctx, DataSource, Diagnostic, Nesting, Result, Schema,
    Value,
};

use crate::common::factory_http::{self, factory_error_at};

const DESCRIPTION: &str = "Lists the official system extensions the \
[Image Factory](https://factory.talos.dev) offers for one Talos version \
(`GET /version/{v}/extensions/official`), optionally filtered by name. Use the names in \
`omni_schematic.extensions`.";

/// `omni_image_factory_extensions` state.
#[derive(Serialize, Deserialize)]
pub struct ExtensionsState {
    /// Talos version.
    pub talos_version: Value<String>,
    /// Substring filter.
    pub name_contains: Value<String>,
    /// Regex filter.
    pub name_regex: Value<String>,
    /// Matching extensions.
    pub extensions: Value<Vec<ExtensionItem>>,
}

/// One extension.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ExtensionItem {
    /// Name.
    pub name: Value<String>,
    /// Image reference.
    pub r#ref: Value<String>,
    /// Digest.
    pub digest: Value<String>,
    /// Author.
    pub author: Value<String>,
    /// Description.
    pub description: Value<String>,
}

/// Name filters shared by the extension and overlay data sources: an entry is kept when it
/// matches every filter given.
pub struct NameFilter {
    contains: Option<String>,
    regex: Option<regex::Regex>,
}

impl NameFilter {
    /// Builds the filter; a bad regex is an error at `name_regex`.
    pub fn new(contains: &Value<String>, regex: &Value<String>) -> Result<Self> {
        let regex = match regex.as_str() {
            Some(r) => Some(regex::Regex::new(r).map_err(|e| {
                Diagnostic::error(
                    "Invalid name_regex",
                    format!("{r:?} is not a regular expression: {e}"),
                )
                .at(AttributePath::new("name_regex"))
            })?),
            None => None,
        };
        Ok(NameFilter {
            contains: contains.as_str().map(str::to_string),
            regex,
        })
    }

    /// True when `name` passes.
    pub fn matches(&self, name: &str) -> bool {
        self.contains.as_deref().is_none_or(|c| name.contains(c))
            && self.regex.as_ref().is_none_or(|r| r.is_match(name))
    }
}

/// The `talos_version` as the factory path wants it: full semver (§3.1), checked here so the
/// error names the attribute instead of showing the factory's 500.
pub fn talos_version_arg(v: &Value<String>) -> Result<String> {
    let v = v.as_str().unwrap_or_default().trim().to_string();
    talos_machinery::versions::parse_full_version(&v).map_err(|e| {
        Diagnostic::error(
            "Invalid Talos version",
            format!("{v:?} is not a full Talos version such as `v1.13.9`: {e}"),
        )
        .at(AttributePath::new("talos_version"))
    })?;
    Ok(talos_machinery::versions::with_v(&v))
}

/// Validation shared with the overlays data source.
pub fn validate_filters(talos_version: &Value<String>, regex: &Value<String>) -> Result<()> {
    if talos_version.is_known() {
        talos_version_arg(talos_version)?;
    }
    NameFilter::new(&Value::Null, regex).map(|_| ())
}

/// The data source.
pub struct ImageFactoryExtensionsDataSource;

#[async_trait]
impl DataSource for ImageFactoryExtensionsDataSource {
    const TYPE_NAME: &'static str = "omni_image_factory_extensions";
    type State = ExtensionsState;

    fn schema(&self) -> Schema {
        Schema::new(DESCRIPTION)
            .attribute(
                Attribute::string("talos_version").required().description(
                    "Talos version, e.g. `v1.13.9` (full version; the `v` is optional).",
                ),
            )
            .attribute(
                Attribute::string("name_contains").optional().description(
                    "Keep only extensions whose name contains this text, e.g. `nvidia`.",
                ),
            )
            .attribute(Attribute::string("name_regex").optional().description(
                "Keep only extensions whose name matches this regular expression, e.g. \
                 `^siderolabs/(iscsi|util-linux)-tools$`. With `name_contains`, both must match.",
            ))
            .attribute(
                Attribute::nested(
                    "extensions",
                    Nesting::List,
                    vec![
                        Attribute::string("name")
                            .computed()
                            .description("Name, e.g. `siderolabs/iscsi-tools`."),
                        Attribute::string("ref")
                            .computed()
                            .description("Image reference."),
                        Attribute::string("digest")
                            .computed()
                            .description("Image digest."),
                        Attribute::string("author")
                            .computed()
                            .description("Author."),
                        Attribute::string("description")
                            .computed()
                            .description("Description."),
                    ],
                )
                .computed()
                .description("Matching extensions in the factory's order; empty when none match."),
            )
    }

    async fn validate(&self, _ctx: &Ctx, config: &ExtensionsState) -> Result<()> {
        validate_filters(&config.talos_version, &config.name_regex)
    }

    async fn read(&self, ctx: &Ctx, mut config: ExtensionsState) -> Result<ExtensionsState> {
        let version = talos_version_arg(&config.talos_version)?;
        let filter = NameFilter::new(&config.name_contains, &config.name_regex)?;
        let factory = factory_http::client(ctx)?;
        let list = factory.extensions(&version).await.map_err(|e| {
            factory_error_at(
                &format!("listing extensions for Talos {version}"),
                &e,
                AttributePath::new("talos_version"),
            )
        })?;
        config.extensions = Value::Known(
            list.into_iter()
                .filter(|e| filter.matches(&e.name))
                .map(|e| ExtensionItem {
                    name: e.name.into(),
                    r#ref: e.r#ref.into(),
                    digest: e.digest.into(),
                    author: e.author.into(),
                    description: e.description.into(),
                })
                .collect(),
        );
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_combine() {
        let f = NameFilter::new(&"tools".into(), &"^siderolabs/i".into()).unwrap();
        assert!(f.matches("siderolabs/iscsi-tools"));
        assert!(!f.matches("siderolabs/util-linux-tools"));
        assert!(!f.matches("siderolabs/intel-ucode"));
        let none = NameFilter::new(&Value::Null, &Value::Null).unwrap();
        assert!(none.matches("anything"));
        let bad = NameFilter::new(&Value::Null, &"(".into()).err().unwrap();
        assert_eq!(bad.0[0].path, Some(AttributePath::new("name_regex")));
    }

    #[test]
    fn versions_must_be_full() {
        assert_eq!(talos_version_arg(&"1.13.9".into()).unwrap(), "v1.13.9");
        let e = talos_version_arg(&"v1.13".into()).unwrap_err();
        assert_eq!(e.0[0].path, Some(AttributePath::new("talos_version")));
    }
}
