//! The provider block: schema, environment fallbacks and the resolved
//! [`ProviderData`] handed to every resource.
//!
//! `configure` resolves the settings and builds the Omni client once per provider process;
//! resources reach both through [`crate::common::configured`] / [`crate::common::client`].

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use tfplugin::{
    async_trait, Attribute, AttributePath, Ctx, Diagnostic, Diagnostics, Schema, Value,
};

/// Default Image Factory (Talos images and schematics).
pub const DEFAULT_IMAGE_FACTORY_URL: &str = "https://factory.talos.dev";

/// Environment variable for `endpoint` (omni-api.md §2.1).
pub const ENV_ENDPOINT: &str = "OMNI_ENDPOINT";
/// Environment variables for `service_account_key`, in lookup order: the
/// Sidero one is checked first, as omnictl does (omni-api.md §2.1).
pub const ENV_SERVICE_ACCOUNT_KEY: [&str; 2] =
    ["SIDERO_SERVICE_ACCOUNT_KEY", "OMNI_SERVICE_ACCOUNT_KEY"];

/// The `omni` provider.
#[derive(Default)]
pub struct OmniProvider;

/// What `configure` hands to every resource: the settings and the connected client.
pub struct Configured {
    /// Resolved settings.
    pub settings: ProviderData,
    /// Omni client (connects lazily on first use; every write is stamped as Terraform's).
    pub client: omni_client::Client,
    /// Bulk refresh reads (one List per kind instead of hundreds of Gets).
    pub reads: crate::common::read_cache::ReadCache,
}

impl Configured {
    /// Builds the client from resolved settings. A bad key is an error at `service_account_key`.
    pub fn new(settings: ProviderData) -> Result<Self, Diagnostics> {
        let mut builder = omni_client::Client::builder(settings.endpoint.clone())
            .insecure_skip_tls_verify(settings.insecure_skip_tls_verify)
            .managed_by(MANAGED_BY);
        if let Some(key) = &settings.service_account_key {
            let key = omni_client::ServiceAccountKey::from_base64(key.trim()).map_err(|e| {
                Diagnostics::from(
                    Diagnostic::error(
                        "Invalid service-account key",
                        format!(
                            "The Omni service-account key cannot be used: {e}. It is the base64 \
                             string printed by `omnictl serviceaccount create`."
                        ),
                    )
                    .at(AttributePath::new("service_account_key")),
                )
            })?;
            builder = builder.service_account(key);
        }
        let client = builder.build().map_err(|e| {
            Diagnostics::from(
                Diagnostic::error("Cannot set up the Omni client", e.to_string())
                    .at(AttributePath::new("endpoint")),
            )
        })?;
        Ok(Configured {
            settings,
            client,
            reads: Default::default(),
        })
    }
}

/// The value of Omni's `omni.sidero.dev/managed-by-gitops-tools` annotation on every write
/// (Omni's UI then warns people not to edit by hand; omni-api.md §3.2).
pub const MANAGED_BY: &str = "Terraform";

/// The provider block as configured (values may be unknown or null).
#[derive(Deserialize)]
pub struct ProviderConfig {
    /// `endpoint`
    pub endpoint: Value<String>,
    /// `service_account_key`
    pub service_account_key: Value<String>,
    /// `service_account_key_wo` (write-only; wins over `service_account_key`). Absent in
    /// configurations of older Terraform, hence the serde default.
    #[serde(default)]
    pub service_account_key_wo: Value<String>,
    /// `insecure_skip_tls_verify`
    pub insecure_skip_tls_verify: Value<bool>,
    /// `image_factory_url`
    pub image_factory_url: Value<String>,
}

/// The resolved provider settings every resource can read.
#[derive(Clone, PartialEq)]
pub struct ProviderData {
    /// Omni API endpoint, e.g. `https://example.omni.siderolabs.io`.
    pub endpoint: String,
    /// Base64 service-account key, if any. Never log it.
    pub service_account_key: Option<String>,
    /// Skip TLS verification of the Omni endpoint.
    pub insecure_skip_tls_verify: bool,
    /// Image Factory base URL.
    pub image_factory_url: String,
}

impl fmt::Debug for ProviderData {
    // Hand-written so the key can never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderData")
            .field("endpoint", &self.endpoint)
            .field(
                "service_account_key",
                &self.service_account_key.as_ref().map(|_| "<redacted>"),
            )
            .field("insecure_skip_tls_verify", &self.insecure_skip_tls_verify)
            .field("image_factory_url", &self.image_factory_url)
            .finish()
    }
}

fn known_or_unknown_error<T: Clone>(v: &Value<T>, name: &str) -> Result<Option<T>, Diagnostics> {
    match v {
        Value::Known(x) => Ok(Some(x.clone())),
        Value::Null => Ok(None),
        Value::Unknown => Err(Diagnostic::error(
            format!("Unknown `{name}`"),
            format!(
                "`{name}` depends on a value known only after apply. The provider must be \
                 configured with known values: apply the resources it depends on first \
                 (`terraform apply -target=...`) or set it from a variable."
            ),
        )
        .at(AttributePath::new(name))
        .into()),
    }
}

impl ProviderData {
    /// Resolves the configuration: attributes first, then the environment
    /// (looked up with `env`, so tests need not touch the process environment).
    pub fn resolve(
        config: &ProviderConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ProviderData, Diagnostics> {
        let nonempty = |s: String| Some(s).filter(|s| !s.trim().is_empty());
        let mut diags = Diagnostics::new();
        let endpoint = known_or_unknown_error(&config.endpoint, "endpoint");
        // Precedence: the write-only attribute, then the sensitive one, then the environment.
        let key_wo =
            known_or_unknown_error(&config.service_account_key_wo, "service_account_key_wo");
        let key = known_or_unknown_error(&config.service_account_key, "service_account_key");
        let key = match (key_wo, key) {
            (Ok(wo), Ok(k)) => Ok(wo.and_then(nonempty).or(k)),
            (Err(a), Err(b)) => {
                let mut d = a;
                d.extend(b);
                Err(d)
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        let insecure =
            known_or_unknown_error(&config.insecure_skip_tls_verify, "insecure_skip_tls_verify");
        let factory = known_or_unknown_error(&config.image_factory_url, "image_factory_url");
        let (endpoint, key, insecure, factory) = match (endpoint, key, insecure, factory) {
            (Ok(e), Ok(k), Ok(i), Ok(f)) => (e, k, i, f),
            (e, k, i, f) => {
                for r in [e.err(), k.err(), i.err(), f.err()].into_iter().flatten() {
                    diags.extend(r);
                }
                return Err(diags);
            }
        };

        let endpoint = endpoint
            .and_then(nonempty)
            .or_else(|| env(ENV_ENDPOINT).and_then(nonempty));
        let Some(endpoint) = endpoint else {
            return Err(Diagnostic::error(
                "Missing Omni endpoint",
                format!(
                    "Set `endpoint` in the provider block or the {ENV_ENDPOINT} environment \
                     variable to the URL of your Omni instance."
                ),
            )
            .at(AttributePath::new("endpoint"))
            .into());
        };
        if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
            return Err(Diagnostic::error(
                "Invalid Omni endpoint",
                format!("The endpoint must be an http:// or https:// URL, got {endpoint:?}."),
            )
            .at(AttributePath::new("endpoint"))
            .into());
        }
        let service_account_key = key.and_then(nonempty).or_else(|| {
            ENV_SERVICE_ACCOUNT_KEY
                .iter()
                .find_map(|k| env(k).and_then(nonempty))
        });
        Ok(ProviderData {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            service_account_key,
            insecure_skip_tls_verify: insecure.unwrap_or(false),
            image_factory_url: factory
                .and_then(nonempty)
                .unwrap_or_else(|| DEFAULT_IMAGE_FACTORY_URL.to_string())
                .trim_end_matches('/')
                .to_string(),
        })
    }
}

#[async_trait]
impl tfplugin::Provider for OmniProvider {
    type Config = ProviderConfig;
    type Data = Configured;

    fn schema(&self) -> Schema {
        Schema::new(
            "The Omni provider manages [Sidero Omni](https://www.siderolabs.com/platform/saas-for-kubernetes/) \
             resources: clusters, machine sets, config patches and more.\n\n\
             Authenticate with an Omni **service account** key \
             (`omnictl serviceaccount create terraform`).",
        )
        .attribute(Attribute::string("endpoint").optional().description(format!(
            "URL of the Omni instance, e.g. `https://my-org.omni.siderolabs.io`. \
             Defaults to the `{ENV_ENDPOINT}` environment variable."
        )))
        .attribute(
            Attribute::string("service_account_key")
                .optional()
                .sensitive()
                .description(format!(
                    "Omni service-account key (the base64 string printed by `omnictl \
                     serviceaccount create`). Defaults to the `{}` environment variable, then \
                     `{}`. Prefer the environment so the key stays out of configuration files.",
                    ENV_SERVICE_ACCOUNT_KEY[0], ENV_SERVICE_ACCOUNT_KEY[1]
                )),
        )
        .attribute(
            Attribute::string("service_account_key_wo")
                .optional()
                .sensitive()
                .write_only()
                .description(
                    "Write-only form of `service_account_key` (Terraform 1.11 or newer): the \
                     value is used to configure the provider and is never kept in a plan or \
                     state, so it may come from an ephemeral resource or variable. When set, it \
                     wins over `service_account_key` and the environment.",
                ),
        )
        .attribute(Attribute::bool("insecure_skip_tls_verify").optional().description(
            "Skip verification of the Omni endpoint's TLS certificate. Only for test \
             instances with self-signed certificates. Defaults to `false`.",
        ))
        .attribute(Attribute::string("image_factory_url").optional().description(format!(
            "Base URL of the Talos Image Factory used for schematics and installer images. \
             Defaults to `{DEFAULT_IMAGE_FACTORY_URL}`."
        )))
    }

    async fn configure(
        &self,
        _ctx: &Ctx,
        terraform_version: &str,
        config: ProviderConfig,
    ) -> tfplugin::Result<Configured> {
        let data = ProviderData::resolve(&config, |k| std::env::var(k).ok())?;
        tracing::info!(
            endpoint = data.endpoint.as_str(),
            has_service_account_key = data.service_account_key.is_some(),
            terraform_version,
            "provider configured"
        );
        Configured::new(data)
    }

    fn resources(&self) -> Vec<Arc<dyn tfplugin::DynResource>> {
        crate::resources::all()
    }

    fn data_sources(&self) -> Vec<Arc<dyn tfplugin::DynDataSource>> {
        crate::data_sources::all()
    }

    fn ephemeral_resources(&self) -> Vec<Arc<dyn tfplugin::DynEphemeralResource>> {
        crate::ephemeral::all()
    }

    fn functions(&self) -> Vec<Arc<dyn tfplugin::DynFunction>> {
        crate::functions::all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(endpoint: Value<String>, key: Value<String>) -> ProviderConfig {
        ProviderConfig {
            endpoint,
            service_account_key: key,
            service_account_key_wo: Value::Null,
            insecure_skip_tls_verify: Value::Null,
            image_factory_url: Value::Null,
        }
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn attributes_win_over_environment() {
        let d = ProviderData::resolve(
            &config("https://a.example/".into(), "k1".into()),
            env(&[
                ("OMNI_ENDPOINT", "https://b.example"),
                ("OMNI_SERVICE_ACCOUNT_KEY", "k2"),
            ]),
        )
        .unwrap();
        assert_eq!(d.endpoint, "https://a.example");
        assert_eq!(d.service_account_key.as_deref(), Some("k1"));
        assert_eq!(d.image_factory_url, DEFAULT_IMAGE_FACTORY_URL);
        assert!(!d.insecure_skip_tls_verify);
    }

    #[test]
    fn sidero_key_is_checked_before_omni_key() {
        let d = ProviderData::resolve(
            &config(Value::Null, Value::Null),
            env(&[
                ("OMNI_ENDPOINT", "https://b.example"),
                ("OMNI_SERVICE_ACCOUNT_KEY", "omni"),
                ("SIDERO_SERVICE_ACCOUNT_KEY", "sidero"),
            ]),
        )
        .unwrap();
        assert_eq!(d.endpoint, "https://b.example");
        assert_eq!(d.service_account_key.as_deref(), Some("sidero"));
    }

    #[test]
    fn write_only_key_wins_over_attribute_and_environment() {
        let env_key = env(&[
            ("OMNI_ENDPOINT", "https://b.example"),
            ("OMNI_SERVICE_ACCOUNT_KEY", "from-env"),
        ]);
        let mut c = config(Value::Null, "from-attr".into());
        c.service_account_key_wo = "from-wo".into();
        let d = ProviderData::resolve(&c, &env_key).unwrap();
        assert_eq!(d.service_account_key.as_deref(), Some("from-wo"));

        // An empty write-only value counts as unset: the attribute is next.
        c.service_account_key_wo = "  ".into();
        let d = ProviderData::resolve(&c, &env_key).unwrap();
        assert_eq!(d.service_account_key.as_deref(), Some("from-attr"));

        // Neither attribute: the environment.
        let c = config(Value::Null, Value::Null);
        let d = ProviderData::resolve(&c, &env_key).unwrap();
        assert_eq!(d.service_account_key.as_deref(), Some("from-env"));

        // Write-only alone, no environment.
        let mut c = config("https://a.example".into(), Value::Null);
        c.service_account_key_wo = "only-wo".into();
        let d = ProviderData::resolve(&c, env(&[])).unwrap();
        assert_eq!(d.service_account_key.as_deref(), Some("only-wo"));
    }

    #[test]
    fn unknown_write_only_key_is_an_error_at_that_attribute() {
        let mut c = config("https://a.example".into(), "k".into());
        c.service_account_key_wo = Value::Unknown;
        let e = ProviderData::resolve(&c, env(&[])).unwrap_err();
        assert_eq!(
            e.0[0].path,
            Some(AttributePath::new("service_account_key_wo"))
        );
    }

    #[test]
    fn missing_or_unknown_endpoint_is_an_error_at_the_attribute() {
        let e = ProviderData::resolve(&config(Value::Null, Value::Null), env(&[])).unwrap_err();
        assert_eq!(e.0[0].summary, "Missing Omni endpoint");
        assert_eq!(e.0[0].path, Some(AttributePath::new("endpoint")));
        let e = ProviderData::resolve(&config(Value::Unknown, Value::Null), env(&[])).unwrap_err();
        assert_eq!(e.0[0].summary, "Unknown `endpoint`");
        let e = ProviderData::resolve(&config("omni.example".into(), Value::Null), env(&[]))
            .unwrap_err();
        assert_eq!(e.0[0].summary, "Invalid Omni endpoint");
    }

    #[test]
    fn debug_output_redacts_the_key() {
        let d = ProviderData::resolve(
            &config("https://a.example".into(), "super-secret-key".into()),
            env(&[]),
        )
        .unwrap();
        let s = format!("{d:?}");
        assert!(!s.contains("super-secret-key"), "{s}");
        assert!(s.contains("<redacted>"));
    }

    #[test]
    fn schema_marks_the_key_sensitive_and_documents_everything() {
        use tfplugin::Provider;
        let s = OmniProvider.schema();
        assert!(s.attr("service_account_key").unwrap().sensitive);
        let wo = s.attr("service_account_key_wo").unwrap();
        assert!(wo.write_only && wo.sensitive);
        for a in &s.block.attributes {
            assert!(!a.description.is_empty(), "{} has no description", a.name);
            assert!(a.optional);
        }
    }
}
