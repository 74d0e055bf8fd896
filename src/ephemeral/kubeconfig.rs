//! `omni_kubeconfig` (ephemeral): a cluster's kubeconfig from Omni's management API, never
//! written to plan or state (omni-api.md §6 `Kubeconfig`).
//!
//! The request building and kubeconfig parsing here are shared with the `omni_kubeconfig` data
//! source, the less safe path for Terraform older than 1.10.

use std::time::{Duration, SystemTime};

use omni_client::management::MAX_SERVICE_ACCOUNT_KUBECONFIG_TTL;
use omni_client::{KubeconfigOptions, ServiceAccountKubeconfig};
use serde::{Deserialize, Serialize};
use talos_machinery::yaml::{self, Value as Yaml};
use tfplugin::{
    async_trait, Attribute, AttributePath, Ctx, Diagnostic, Diagnostics, EphemeralResource,
    PrivateState, Result, Schema, Type, Value,
};

use crate::common::{self, timeouts};

const DESCRIPTION: &str = "\
Fetches the kubeconfig of an Omni cluster **without storing it**: the value exists only while \
Terraform runs and never reaches the plan or the state (Terraform 1.10 or newer, OpenTofu 1.11 \
or newer).

Use its structured outputs to configure the `kubernetes` and `helm` providers:

```terraform
provider \"kubernetes\" {
  host                   = ephemeral.omni_kubeconfig.lab.host
  cluster_ca_certificate = ephemeral.omni_kubeconfig.lab.cluster_ca_certificate
  token                  = ephemeral.omni_kubeconfig.lab.token
}
```

By default Omni returns the kubeconfig for people, which logs in through OIDC in a browser and \
has no `token`. For automation set `service_account = true` with a `user` (and optionally \
`groups` and `ttl`): Omni then issues a static service-account token (the service account \
needs the Operator role).";

/// Default lifetime of a service-account token.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

/// Configuration and result (shared with the data source).
#[derive(Clone, Serialize, Deserialize)]
pub struct KubeconfigState {
    /// Cluster name.
    pub cluster: Value<String>,
    /// Static service-account token instead of OIDC.
    pub service_account: Value<bool>,
    /// Token subject.
    pub user: Value<String>,
    /// Token groups.
    pub groups: Value<Vec<String>>,
    /// Token lifetime.
    pub ttl: Value<String>,
    /// The kubeconfig YAML.
    pub kubeconfig_raw: Value<String>,
    /// API server URL.
    pub host: Value<String>,
    /// PEM CA bundle of the API server (null when the server uses a publicly trusted one).
    pub cluster_ca_certificate: Value<String>,
    /// Bearer token (service-account kubeconfigs only).
    pub token: Value<String>,
    /// When the token expires (RFC 3339, service-account kubeconfigs only).
    pub expires_at: Value<String>,
}

impl std::fmt::Debug for KubeconfigState {
    // Hand-written: the kubeconfig and token must never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeconfigState")
            .field("cluster", &self.cluster)
            .field("service_account", &self.service_account)
            .field("user", &self.user)
            .field("groups", &self.groups)
            .field("ttl", &self.ttl)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// The schema of `omni_kubeconfig`; `all_sensitive` marks every output sensitive (data source).
pub fn schema(description: &str, all_sensitive: bool) -> Schema {
    let out = |a: Attribute| if all_sensitive { a.sensitive() } else { a };
    Schema::new(description)
        .attribute(
            Attribute::string("cluster")
                .required()
                .description("Cluster name."),
        )
        .attribute(Attribute::bool("service_account").optional().description(
            "Issue a static service-account token (for automation) instead of the OIDC \
             login kubeconfig. Needs the Operator role. Default `false`.",
        ))
        .attribute(Attribute::string("user").optional().description(
            "Kubernetes user name of the service-account token (required with \
             `service_account`).",
        ))
        .attribute(
            Attribute::list("groups", Type::String)
                .optional()
                .description(
                    "Kubernetes groups of the service-account token, e.g. `[\"system:masters\"]`.",
                ),
        )
        .attribute(Attribute::string("ttl").optional().description(format!(
            "Lifetime of the service-account token, e.g. `1h`, `720h`; at most 10 years. \
             Default `{}`.",
            timeouts::format_duration(DEFAULT_TTL)
        )))
        .attribute(
            Attribute::string("kubeconfig_raw")
                .computed()
                .sensitive()
                .description("The kubeconfig as YAML."),
        )
        .attribute(out(Attribute::string("host").computed().description(
            "URL of the Kubernetes API server (Omni's Kubernetes proxy).",
        )))
        .attribute(out(Attribute::string("cluster_ca_certificate")
            .computed()
            .description(
                "PEM CA certificate of the API server; null when the server certificate is \
             publicly trusted (as on Omni SaaS).",
            )))
        .attribute(
            Attribute::string("token")
                .computed()
                .sensitive()
                .description("Bearer token; null for the OIDC kubeconfig."),
        )
        .attribute(out(Attribute::string("expires_at").computed().description(
            "When the service-account token expires (RFC 3339); null for the OIDC kubeconfig.",
        )))
}

/// Plan-time checks of the service-account settings, each at its attribute.
pub fn validate(c: &KubeconfigState) -> Result<()> {
    let mut diags = Diagnostics::new();
    let sa = c.service_account.as_option().copied();
    // Unknown `service_account` defers the checks to apply time.
    let off = matches!(c.service_account, Value::Null | Value::Known(false));
    if off {
        for (name, set) in [
            ("user", !c.user.is_null()),
            ("groups", !c.groups.is_null()),
            ("ttl", !c.ttl.is_null()),
        ] {
            if set {
                diags.push(
                    Diagnostic::error(
                        "Needs service_account",
                        format!(
                            "`{name}` applies only to service-account kubeconfigs: set \
                             `service_account = true`."
                        ),
                    )
                    .at(AttributePath::new(name)),
                );
            }
        }
    }
    if sa == Some(true) && (c.user.is_null() || c.user.as_str() == Some("")) {
        diags.push(
            Diagnostic::error(
                "Missing user",
                "A service-account kubeconfig needs `user`, the Kubernetes user name of its token.",
            )
            .at(AttributePath::new("user")),
        );
    }
    if let Some(t) = c.ttl.as_str() {
        match timeouts::parse_duration(t) {
            Ok(d) if d > MAX_SERVICE_ACCOUNT_KUBECONFIG_TTL => diags.push(
                Diagnostic::error("TTL too long", "Omni issues tokens for at most 10 years.")
                    .at(AttributePath::new("ttl")),
            ),
            Ok(_) => {}
            Err(e) => diags.push(Diagnostic::error("Invalid ttl", e).at(AttributePath::new("ttl"))),
        }
    }
    diags.into_result()
}

/// The management-API options for a configuration (already validated).
pub fn options(c: &KubeconfigState) -> Result<KubeconfigOptions> {
    validate(c)?;
    let mut opts = KubeconfigOptions::default();
    if c.service_account.as_option() == Some(&true) {
        let ttl = match c.ttl.as_str() {
            Some(t) => timeouts::parse_duration(t).unwrap_or(DEFAULT_TTL),
            None => DEFAULT_TTL,
        };
        opts.service_account = Some(ServiceAccountKubeconfig {
            user: c.user.as_str().unwrap_or_default().to_string(),
            groups: c.groups.clone().unwrap_or_default(),
            ttl,
        });
    }
    Ok(opts)
}

/// What the providers need from a kubeconfig.
#[derive(Default, PartialEq)]
pub struct KubeconfigParts {
    /// `server` of the current context's cluster.
    pub host: Option<String>,
    /// Decoded `certificate-authority-data` (PEM).
    pub ca_pem: Option<String>,
    /// `token` of the current context's user.
    pub token: Option<String>,
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

fn text(v: Option<&Yaml>) -> Option<&str> {
    match v {
        Some(Yaml::String(s)) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    }
}

/// The entry called `name` of a kubeconfig list (`clusters`, `users`), its inner `field`.
fn named<'a>(doc: &'a Yaml, list: &str, name: Option<&str>, field: &str) -> Option<&'a Yaml> {
    let Some(Yaml::Seq(items)) = get(doc, list) else {
        return None;
    };
    let item = match name {
        Some(n) => items.iter().find(|i| text(get(i, "name")) == Some(n)),
        None => items.first(),
    }?;
    get(item, field)
}

/// Pulls host, CA and token out of a kubeconfig, following `current-context`.
pub fn parse_kubeconfig(text_in: &str) -> std::result::Result<KubeconfigParts, String> {
    let docs = yaml::parse_documents(text_in, Some(1)).map_err(|e| e.0)?;
    let doc = docs.first().ok_or("the kubeconfig is empty")?;
    let doc = yaml::to_value(doc).map_err(|e| e.0)?;
    let current = text(get(&doc, "current-context"));
    let context = current.and_then(|c| named(&doc, "contexts", Some(c), "context"));
    let cluster_name = context.and_then(|c| text(get(c, "cluster")));
    let user_name = context.and_then(|c| text(get(c, "user")));
    let cluster = named(&doc, "clusters", cluster_name, "cluster");
    let user = named(&doc, "users", user_name, "user");
    let ca_pem = match cluster.and_then(|c| text(get(c, "certificate-authority-data"))) {
        Some(b64) => Some(
            String::from_utf8(decode_base64(b64)?)
                .map_err(|_| "certificate-authority-data is not PEM text".to_string())?,
        ),
        None => None,
    };
    Ok(KubeconfigParts {
        host: cluster
            .and_then(|c| text(get(c, "server")))
            .map(str::to_string),
        ca_pem,
        token: user.and_then(|u| text(get(u, "token"))).map(str::to_string),
    })
}

/// Standard base64 (padding optional), for `certificate-authority-data`.
fn decode_base64(s: &str) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return Err("certificate-authority-data is not base64".into()),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

/// RFC 3339 (UTC, seconds) of a point in time.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Fetches the kubeconfig and fills every output of `c`.
pub async fn fetch(ctx: &Ctx, mut c: KubeconfigState) -> Result<KubeconfigState> {
    let opts = options(&c)?;
    let cluster = c.cluster.as_str().unwrap_or_default().to_string();
    let client = common::client(ctx)?;
    let issued_at = SystemTime::now();
    let bytes = client
        .kubeconfig(&cluster, &opts)
        .await
        .map_err(|e| {
            common::omni_error_at(
                &format!("getting the kubeconfig of cluster {cluster:?}"),
                e,
                AttributePath::new("cluster"),
            )
        })?
        .into_inner();
    let raw = String::from_utf8(bytes).map_err(|_| {
        Diagnostics::from(Diagnostic::error(
            "Invalid kubeconfig",
            "Omni returned a kubeconfig that is not UTF-8 text.",
        ))
    })?;
    let parts = parse_kubeconfig(&raw).map_err(|e| {
        // The parser's message names a line, never the secret content.
        Diagnostics::from(Diagnostic::error(
            "Invalid kubeconfig",
            format!("Omni returned a kubeconfig that cannot be read: {e}"),
        ))
    })?;
    c.expires_at = opts
        .service_account
        .as_ref()
        .map(|sa| rfc3339(issued_at + sa.ttl))
        .into();
    c.host = parts.host.into();
    c.cluster_ca_certificate = parts.ca_pem.into();
    c.token = parts.token.into();
    c.kubeconfig_raw = Value::Known(raw);
    tracing::debug!(
        cluster = cluster.as_str(),
        service_account = opts.service_account.is_some(),
        "kubeconfig fetched"
    );
    Ok(c)
}

/// The `omni_kubeconfig` ephemeral resource.
pub struct KubeconfigEphemeral;

#[async_trait]
impl EphemeralResource for KubeconfigEphemeral {
    const TYPE_NAME: &'static str = "omni_kubeconfig";
    type State = KubeconfigState;

    fn schema(&self) -> Schema {
        schema(DESCRIPTION, false)
    }

    async fn validate(&self, _ctx: &Ctx, config: &KubeconfigState) -> Result<()> {
        validate(config)
    }

    async fn open(
        &self,
        ctx: &Ctx,
        config: KubeconfigState,
        _private: &mut PrivateState,
    ) -> Result<(KubeconfigState, Option<SystemTime>)> {
        // No renewal: Omni cannot extend a token, and each run opens a fresh one.
        Ok((fetch(ctx, config).await?, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> KubeconfigState {
        KubeconfigState {
            cluster: "lab".into(),
            service_account: Value::Null,
            user: Value::Null,
            groups: Value::Null,
            ttl: Value::Null,
            kubeconfig_raw: Value::Unknown,
            host: Value::Unknown,
            cluster_ca_certificate: Value::Unknown,
            token: Value::Unknown,
            expires_at: Value::Unknown,
        }
    }

    const SA_KUBECONFIG: &str = "\
apiVersion: v1
kind: Config
clusters:
- name: other
  cluster:
    server: https://wrong.example
- name: acme-lab
  cluster:
    server: https://acme.kubernetes.omni.example
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
contexts:
- name: acme-lab
  context:
    cluster: acme-lab
    namespace: default
    user: acme-lab-ci
current-context: acme-lab
users:
- name: acme-lab-ci
  user:
    token: eyJhbGciOiJFZERTQSJ9.e30.c2ln
";

    #[test]
    fn parts_follow_the_current_context() {
        let p = parse_kubeconfig(SA_KUBECONFIG).unwrap();
        assert_eq!(
            p.host.as_deref(),
            Some("https://acme.kubernetes.omni.example")
        );
        assert_eq!(p.ca_pem.as_deref(), Some("-----BEGIN CERTIFICATE-----\n"));
        assert_eq!(p.token.as_deref(), Some("eyJhbGciOiJFZERTQSJ9.e30.c2ln"));
    }

    #[test]
    fn oidc_kubeconfig_has_no_token_and_bad_input_is_an_error() {
        let oidc = "clusters:\n- name: c\n  cluster:\n    server: https://h\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    exec:\n      command: kubectl\n";
        let p = parse_kubeconfig(oidc).unwrap();
        assert_eq!(p.host.as_deref(), Some("https://h"));
        assert!(p.token.is_none() && p.ca_pem.is_none());
        assert!(parse_kubeconfig("clusters: [").is_err());
        assert!(parse_kubeconfig(
            "clusters:\n- name: c\n  cluster:\n    certificate-authority-data: '!!'\n"
        )
        .is_err());
    }

    #[test]
    fn service_account_settings_are_checked_at_their_attribute() {
        let mut c = config();
        c.user = "ci".into();
        let e = validate(&c).unwrap_err();
        assert_eq!(e.0[0].path, Some(AttributePath::new("user")));

        let mut c = config();
        c.service_account = Value::Known(true);
        let e = validate(&c).unwrap_err();
        assert_eq!(e.0[0].summary, "Missing user");

        c.user = "ci".into();
        c.ttl = "87660h1m".into(); // just over 10 years
        let e = validate(&c).unwrap_err();
        assert_eq!(e.0[0].path, Some(AttributePath::new("ttl")));

        c.ttl = "2h".into();
        c.groups = Value::Known(vec!["system:masters".into()]);
        let o = options(&c).unwrap();
        let sa = o.service_account.unwrap();
        assert_eq!(
            (sa.user.as_str(), sa.ttl),
            ("ci", Duration::from_secs(7200))
        );
        assert_eq!(sa.groups, ["system:masters"]);

        assert!(options(&config()).unwrap().service_account.is_none());
    }

    #[test]
    fn unknown_service_account_flag_defers_the_checks() {
        let mut c = config();
        c.service_account = Value::Unknown;
        c.user = "ci".into();
        assert!(validate(&c).is_ok());
    }

    #[test]
    fn rfc3339_renders_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn debug_hides_the_secrets() {
        let mut c = config();
        c.token = "very-secret-token".into();
        c.kubeconfig_raw = "token: very-secret-token".into();
        assert!(!format!("{c:?}").contains("very-secret"));
    }
}
