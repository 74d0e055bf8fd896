//! `management.ManagementService` calls a provider needs (omni-api.md §6). The cluster is chosen
//! by the `context` metadata header, which the signer includes in the signed payload (§2.2).

use std::time::Duration;

use omni_api::management as pb;
use tonic::{metadata::MetadataValue, Request};

use crate::{
    client::{Client, SecretBytes},
    error::{Error, Result},
};

/// Metadata header selecting the cluster (the Go `ClusterClient` sets `context`).
pub const CONTEXT_HEADER: &str = "context";

/// Upper bound Omni accepts for a service-account kubeconfig TTL (omni-api.md §6: ≤ 10 years).
pub const MAX_SERVICE_ACCOUNT_KUBECONFIG_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A kubeconfig with a static service-account token instead of OIDC login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAccountKubeconfig {
    /// Kubernetes user name (`sub` of the token); must be non-empty.
    pub user: String,
    /// Kubernetes groups of the token.
    pub groups: Vec<String>,
    /// Token lifetime; > 0 and ≤ 10 years.
    pub ttl: Duration,
}

/// Options of [`Client::kubeconfig`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeconfigOptions {
    /// `Some` for a service-account (static token) kubeconfig (needs Operator).
    pub service_account: Option<ServiceAccountKubeconfig>,
    /// OIDC grant type for the default kubeconfig (`auto`, `authcode`, `authcode-keyboard`).
    pub grant_type: Option<String>,
    /// Break-glass kubeconfig (Admin and an instance feature).
    pub break_glass: bool,
}

/// Result of [`Client::kubernetes_upgrade_pre_checks`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpgradePreCheck {
    /// True when the upgrade may proceed.
    pub ok: bool,
    /// Why not, when `ok` is false.
    pub reason: String,
}

fn with_context<T>(message: T, cluster: Option<&str>) -> Result<Request<T>> {
    let mut req = Request::new(message);
    if let Some(cluster) = cluster {
        let value = MetadataValue::try_from(cluster).map_err(|_| {
            Error::InvalidRequest(format!(
                "cluster name {cluster:?} cannot be sent as gRPC metadata (ASCII only)"
            ))
        })?;
        req.metadata_mut().insert(CONTEXT_HEADER, value);
    }
    Ok(req)
}

fn kubeconfig_request(opts: &KubeconfigOptions) -> Result<pb::KubeconfigRequest> {
    let mut req = pb::KubeconfigRequest {
        grant_type: opts.grant_type.clone().unwrap_or_default(),
        break_glass: opts.break_glass,
        ..Default::default()
    };
    if let Some(sa) = &opts.service_account {
        if sa.user.is_empty() {
            return Err(Error::InvalidRequest(
                "service-account kubeconfig needs a user".into(),
            ));
        }
        if sa.ttl.is_zero() || sa.ttl > MAX_SERVICE_ACCOUNT_KUBECONFIG_TTL {
            return Err(Error::InvalidRequest(
                "service-account kubeconfig TTL must be > 0 and at most 10 years".into(),
            ));
        }
        req.service_account = true;
        req.service_account_user = sa.user.clone();
        req.service_account_groups = sa.groups.clone();
        req.service_account_ttl = Some(prost_types::Duration {
            seconds: i64::try_from(sa.ttl.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(sa.ttl.subsec_nanos()).unwrap_or(0),
        });
    }
    Ok(req)
}

impl Client {
    /// Reads `SysVersions/current` (ns `ephemeral`): Omni's version. Any signed caller may read
    /// it, so omnictl uses it as a health and authentication probe (omni-api.md §3.3).
    pub async fn sys_version(&self) -> Result<omni_api::specs::SysVersionSpec> {
        use crate::{
            resources::{ids, SysVersion},
            Api,
        };
        Ok(Api::<SysVersion>::new(self.clone())
            .get(ids::SYS_VERSION)
            .await?
            .spec)
    }

    /// Kubeconfig of `cluster` (OIDC login by default, or a static service-account token).
    pub async fn kubeconfig(&self, cluster: &str, opts: &KubeconfigOptions) -> Result<SecretBytes> {
        let message = kubeconfig_request(opts)?;
        let resp = self
            .retry_idempotent("Kubeconfig", || async {
                let req = with_context(message.clone(), Some(cluster))?;
                Ok(self.management().kubeconfig(req).await?.into_inner())
            })
            .await?;
        Ok(SecretBytes::new(resp.kubeconfig))
    }

    /// Talosconfig whose endpoint is Omni itself, for `cluster` or the whole instance.
    pub async fn talosconfig(
        &self,
        cluster: Option<&str>,
        break_glass: bool,
    ) -> Result<SecretBytes> {
        let message = pb::TalosconfigRequest {
            raw: false,
            break_glass,
        };
        let resp = self
            .retry_idempotent("Talosconfig", || async {
                let req = with_context(message, cluster)?;
                Ok(self.management().talosconfig(req).await?.into_inner())
            })
            .await?;
        Ok(SecretBytes::new(resp.talosconfig))
    }

    /// Runs Omni's config-patch validation on `config` (the same check as ConfigPatch create).
    /// A rejected patch is [`Error::InvalidArgument`] with the server's message.
    pub async fn validate_config(&self, config: &str) -> Result<()> {
        let message = pb::ValidateConfigRequest {
            config: config.to_string(),
        };
        self.retry_idempotent("ValidateConfig", || async {
            self.management()
                .validate_config(Request::new(message.clone()))
                .await?;
            Ok(())
        })
        .await
    }

    /// Creates (or finds) an image-factory schematic. Idempotent on the factory side: the same
    /// input gives the same ID, so it is safe to retry.
    pub async fn create_schematic(
        &self,
        request: pb::CreateSchematicRequest,
    ) -> Result<pb::CreateSchematicResponse> {
        self.retry_idempotent("CreateSchematic", || async {
            Ok(self
                .management()
                .create_schematic(Request::new(request.clone()))
                .await?
                .into_inner())
        })
        .await
    }

    /// Asks whether `cluster` can be upgraded to Kubernetes `new_version`.
    pub async fn kubernetes_upgrade_pre_checks(
        &self,
        cluster: &str,
        new_version: &str,
    ) -> Result<UpgradePreCheck> {
        let message = pb::KubernetesUpgradePreChecksRequest {
            new_version: new_version.to_string(),
        };
        let resp = self
            .retry_idempotent("KubernetesUpgradePreChecks", || async {
                let req = with_context(message.clone(), Some(cluster))?;
                Ok(self
                    .management()
                    .kubernetes_upgrade_pre_checks(req)
                    .await?
                    .into_inner())
            })
            .await?;
        Ok(UpgradePreCheck {
            ok: resp.ok,
            reason: resp.reason,
        })
    }

    /// Creates a user (Admin). Not retried: a lost reply is not safely repeatable.
    pub async fn create_user(&self, email: &str, role: &str) -> Result<String> {
        let resp = self
            .management()
            .create_user(Request::new(pb::CreateUserRequest {
                email: email.into(),
                role: role.into(),
            }))
            .await?;
        Ok(resp.into_inner().user_id)
    }

    /// Changes a user's role (Admin). Idempotent.
    pub async fn update_user(&self, email: &str, role: &str) -> Result<()> {
        let message = pb::UpdateUserRequest {
            email: email.into(),
            role: role.into(),
        };
        self.retry_idempotent("UpdateUser", || async {
            self.management()
                .update_user(Request::new(message.clone()))
                .await?;
            Ok(())
        })
        .await
    }

    /// Deletes a user (Admin).
    pub async fn destroy_user(&self, email: &str) -> Result<()> {
        self.management()
            .destroy_user(Request::new(pb::DestroyUserRequest {
                email: email.into(),
            }))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn service_account_kubeconfig_request_bytes() {
        let req = kubeconfig_request(&KubeconfigOptions {
            service_account: Some(ServiceAccountKubeconfig {
                user: "ci".into(),
                groups: vec!["system:masters".into()],
                ttl: Duration::from_secs(3600),
            }),
            ..Default::default()
        })
        .unwrap();
        // 1 service_account = true; 2 ttl = Duration{seconds: 3600 = varint 0x90 0x1c};
        // 3 user; 4 groups (omni-api.md §6).
        let mut want = vec![0x08, 0x01, 0x12, 0x03, 0x08, 0x90, 0x1c];
        want.extend([0x1a, 0x02]);
        want.extend(b"ci");
        want.extend([0x22, 14]);
        want.extend(b"system:masters");
        assert_eq!(req.encode_to_vec(), want);
    }

    #[test]
    fn kubeconfig_options_are_checked() {
        let bad_ttl = KubeconfigOptions {
            service_account: Some(ServiceAccountKubeconfig {
                user: "u".into(),
                groups: vec![],
                ttl: Duration::ZERO,
            }),
            ..Default::default()
        };
        assert!(kubeconfig_request(&bad_ttl).is_err());
        let no_user = KubeconfigOptions {
            service_account: Some(ServiceAccountKubeconfig {
                user: String::new(),
                groups: vec![],
                ttl: Duration::from_secs(60),
            }),
            ..Default::default()
        };
        assert!(kubeconfig_request(&no_user).is_err());
        assert_eq!(
            kubeconfig_request(&KubeconfigOptions::default())
                .unwrap()
                .encode_to_vec(),
            Vec::<u8>::new()
        );
    }

    #[test]
    fn context_header_is_set_and_non_ascii_is_rejected() {
        let req = with_context((), Some("my-cluster")).unwrap();
        assert_eq!(req.metadata().get(CONTEXT_HEADER).unwrap(), "my-cluster");
        assert!(with_context((), Some("clüster\n")).is_err());
    }
}
