//! `management.ManagementService` (omni-api.md §6).

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine;
use futures::Stream;
use omni_api::management as pb;
use omni_api::specs;
use prost::Message;
use tonic::{Request, Response, Status};

use crate::core::{identity, Core};
use crate::keys::{identity_email, KeyEntry, Role};
use crate::types::names as t;

/// Name of the emulated Omni account (used in contexts and issuers).
pub const ACCOUNT: &str = "omni-emulator";

/// Longest service-account kubeconfig TTL: 10 years (§6).
const MAX_KUBECONFIG_TTL_SECS: i64 = 10 * 365 * 86_400;

/// The management service.
pub struct Management {
    core: Arc<Core>,
}

impl Management {
    /// Wraps the shared core.
    pub fn new(core: Arc<Core>) -> Management {
        Management { core }
    }

    fn endpoint(&self) -> String {
        self.core.endpoint.get().cloned().unwrap_or_default()
    }

    fn cluster_spec(&self, cluster: &str) -> Result<specs::ClusterSpec, Status> {
        let c = self
            .core
            .store
            .get("default", t::CLUSTER, cluster)
            .ok_or_else(|| Status::not_found(format!("cluster {cluster:?} not found")))?;
        specs::ClusterSpec::decode(c.spec.as_slice()).map_err(|e| Status::internal(e.to_string()))
    }
}

/// The cluster named by the `cluster` header, else `context` (§6).
fn cluster_header<T>(req: &Request<T>) -> Option<String> {
    let md = req.metadata();
    md.get("cluster")
        .or_else(|| md.get("context"))
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn yaml<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, Status> {
    serde_norway::to_string(v)
        .map(String::into_bytes)
        .map_err(|e| Status::internal(e.to_string()))
}

/// SideroLink kernel arguments Omni prepends to every schematic (image-factory spec §5.3).
fn siderolink_args(endpoint: &str, join_token: &str, tunnel: bool) -> Vec<String> {
    let mut api = format!("{endpoint}?jointoken={join_token}");
    if tunnel {
        api.push_str("&grpc_tunnel=true");
    }
    vec![
        format!("siderolink.api={api}"),
        "talos.events.sink=[fdae:41e4:649b:9303::1]:8090".to_string(),
        "talos.logging.kernel=tcp://[fdae:41e4:649b:9303::1]:8092".to_string(),
    ]
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl pb::management_service_server::ManagementService for Management {
    async fn kubeconfig(
        &self,
        req: Request<pb::KubeconfigRequest>,
    ) -> Result<Response<pb::KubeconfigResponse>, Status> {
        let who = identity(&req)?;
        let cluster = cluster_header(&req)
            .ok_or_else(|| Status::invalid_argument("cluster name is required in the context"))?;
        let r = req.into_inner();
        let endpoint = self.endpoint();
        let server = format!("{endpoint}/kubernetes/{cluster}");
        let name = format!("{ACCOUNT}-{cluster}");
        if r.break_glass {
            self.core.require(&who, Role::Admin)?;
            return Err(Status::permission_denied(
                "break-glass access is not enabled on this instance",
            ));
        }
        let (user_name, user) = if r.service_account {
            self.core.require(&who, Role::Operator)?;
            if r.service_account_user.is_empty() {
                return Err(Status::invalid_argument("service account user is not set"));
            }
            let ttl = r.service_account_ttl.map(|d| d.seconds).unwrap_or(0);
            if ttl <= 0 {
                return Err(Status::invalid_argument(
                    "service account ttl must be greater than zero",
                ));
            }
            if ttl > MAX_KUBECONFIG_TTL_SECS {
                return Err(Status::invalid_argument(
                    "service account ttl must not exceed 10 years",
                ));
            }
            self.cluster_spec(&cluster)?;
            let uuid = self
                .core
                .store
                .get("default", t::CLUSTER_UUID, &cluster)
                .and_then(|u| specs::ClusterUuid::decode(u.spec.as_slice()).ok())
                .map(|u| u.uuid)
                .unwrap_or_default();
            let now = crate::model::Time::now().secs;
            let header = serde_json::json!({"alg": "EdDSA", "typ": "JWT"});
            let claims = serde_json::json!({
                "iss": format!("omni-{ACCOUNT}-service-account-issuer"),
                "sub": r.service_account_user,
                "groups": r.service_account_groups,
                "cluster": cluster,
                "cluster_uuid": uuid,
                "iat": now,
                "exp": now + ttl,
            });
            let signing_input = format!(
                "{}.{}",
                b64url(header.to_string().as_bytes()),
                b64url(claims.to_string().as_bytes())
            );
            // Not a verifiable signature: the emulator has no Kubernetes API to present it to.
            let sig = sha2::Sha256::digest_with(&signing_input);
            let token = format!("{signing_input}.{}", b64url(&sig));
            let user = format!("{}-{}", name, r.service_account_user);
            (user, serde_json::json!({"token": token}))
        } else {
            self.core.require(&who, Role::Reader)?;
            self.cluster_spec(&cluster)?;
            let user = format!("{name}-{}", who.email);
            let mut args = vec![
                "oidc-login".to_string(),
                "get-token".to_string(),
                format!("--oidc-issuer-url={endpoint}/oidc"),
                "--oidc-client-id=native".to_string(),
                "--oidc-extra-scope=cluster:".to_string() + &cluster,
            ];
            if !r.grant_type.is_empty() {
                args.push(format!("--grant-type={}", r.grant_type));
            }
            (
                user,
                serde_json::json!({"exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "command": "kubectl",
                    "args": args,
                    "interactiveMode": "IfAvailable",
                    "provideClusterInfo": false,
                }}),
            )
        };
        let doc = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": server}}],
            "contexts": [{"name": name, "context": {"cluster": name, "namespace": "default", "user": user_name}}],
            "current-context": name,
            "users": [{"name": user_name, "user": user}],
        });
        Ok(Response::new(pb::KubeconfigResponse {
            kubeconfig: yaml(&doc)?,
        }))
    }

    async fn talosconfig(
        &self,
        req: Request<pb::TalosconfigRequest>,
    ) -> Result<Response<pb::TalosconfigResponse>, Status> {
        let who = identity(&req)?;
        self.core.require(&who, Role::Reader)?;
        let cluster = cluster_header(&req);
        let r = req.into_inner();
        if r.break_glass {
            self.core.require(&who, Role::Admin)?;
            return Err(Status::permission_denied(
                "break-glass access is not enabled on this instance",
            ));
        }
        if r.raw {
            return Err(Status::permission_denied(
                "raw talosconfig is only available in debug builds",
            ));
        }
        let context = match &cluster {
            Some(c) => {
                self.cluster_spec(c)?;
                format!("{ACCOUNT}-{c}")
            }
            None => ACCOUNT.to_string(),
        };
        let mut ctx = serde_json::json!({
            "endpoints": [self.endpoint()],
            "auth": {"siderov1": {"identity": who.email}},
        });
        if let Some(c) = &cluster {
            ctx["cluster"] = serde_json::json!(c);
        }
        let doc = serde_json::json!({"context": context, "contexts": {context.clone(): ctx}});
        Ok(Response::new(pb::TalosconfigResponse {
            talosconfig: yaml(&doc)?,
        }))
    }

    async fn omniconfig(
        &self,
        req: Request<()>,
    ) -> Result<Response<pb::OmniconfigResponse>, Status> {
        let who = identity(&req)?;
        let doc = serde_json::json!({
            "contexts": {ACCOUNT: {"url": self.endpoint(), "auth": {"siderov1": {"identity": who.email}}}},
            "context": ACCOUNT,
        });
        Ok(Response::new(pb::OmniconfigResponse {
            omniconfig: yaml(&doc)?,
        }))
    }

    async fn validate_config(
        &self,
        req: Request<pb::ValidateConfigRequest>,
    ) -> Result<Response<()>, Status> {
        identity(&req)?;
        talos_machinery::patch::validate_config_patch(&req.into_inner().config)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        Ok(Response::new(()))
    }

    async fn validate_json_schema(
        &self,
        req: Request<pb::ValidateJsonSchemaRequest>,
    ) -> Result<Response<pb::ValidateJsonSchemaResponse>, Status> {
        identity(&req)?;
        Err(Status::unimplemented("ValidateJSONSchema is not emulated"))
    }

    async fn create_service_account(
        &self,
        req: Request<pb::CreateServiceAccountRequest>,
    ) -> Result<Response<pb::CreateServiceAccountResponse>, Status> {
        let who = identity(&req)?;
        self.core.require(&who, Role::Admin)?;
        let r = req.into_inner();
        if r.name.is_empty() || r.name.contains(char::is_whitespace) {
            return Err(Status::invalid_argument("service account name is invalid"));
        }
        if self.core.keys.all().iter().any(|k| k.entry.name == r.name) {
            return Err(Status::already_exists(format!(
                "service account {:?} already exists",
                r.name
            )));
        }
        let role = if r.use_user_role {
            who.role
        } else {
            let role = Role::parse(&r.role)
                .ok_or_else(|| Status::invalid_argument(format!("unknown role {:?}", r.role)))?;
            if role == Role::InfraProvider && !r.name.starts_with("infra-provider:") {
                return Err(Status::invalid_argument(
                    "InfraProvider role is only for infra-provider: accounts",
                ));
            }
            if role > who.role {
                return Err(Status::permission_denied(
                    "cannot grant a role above your own",
                ));
            }
            role
        };
        let id = self.register_key(&r.name, role, &r.armored_pgp_public_key)?;
        Ok(Response::new(pb::CreateServiceAccountResponse {
            public_key_id: id,
        }))
    }

    async fn renew_service_account(
        &self,
        req: Request<pb::RenewServiceAccountRequest>,
    ) -> Result<Response<pb::RenewServiceAccountResponse>, Status> {
        let who = identity(&req)?;
        self.core.require(&who, Role::Admin)?;
        let r = req.into_inner();
        let existing = self
            .core
            .keys
            .all()
            .into_iter()
            .find(|k| k.entry.name == r.name);
        let Some(existing) = existing else {
            return Err(Status::not_found(format!(
                "service account {:?} not found",
                r.name
            )));
        };
        let id = self.register_key(&r.name, existing.entry.role, &r.armored_pgp_public_key)?;
        Ok(Response::new(pb::RenewServiceAccountResponse {
            public_key_id: id,
        }))
    }

    async fn list_service_accounts(
        &self,
        req: Request<()>,
    ) -> Result<Response<pb::ListServiceAccountsResponse>, Status> {
        let who = identity(&req)?;
        self.core.require(&who, Role::Admin)?;
        let mut by_name: BTreeMap<String, pb::list_service_accounts_response::ServiceAccount> =
            BTreeMap::new();
        for k in self.core.keys.all() {
            let e = &k.entry;
            let sa = by_name.entry(e.name.clone()).or_insert_with(|| {
                pb::list_service_accounts_response::ServiceAccount {
                    name: e.name.clone(),
                    pgp_public_keys: vec![],
                    role: e.role.as_str().to_string(),
                    last_active: String::new(),
                }
            });
            let ts = |s: i64| {
                Some(prost_types::Timestamp {
                    seconds: s,
                    nanos: 0,
                })
            };
            sa.pgp_public_keys.push(
                pb::list_service_accounts_response::service_account::PgpPublicKey {
                    id: e.fingerprint.clone(),
                    armored: e.public_key.clone(),
                    expiration: ts(e.expiration),
                    created: ts(e.created),
                    last_used: None,
                },
            );
        }
        Ok(Response::new(pb::ListServiceAccountsResponse {
            service_accounts: by_name.into_values().collect(),
        }))
    }

    async fn destroy_service_account(
        &self,
        req: Request<pb::DestroyServiceAccountRequest>,
    ) -> Result<Response<()>, Status> {
        let who = identity(&req)?;
        self.core.require(&who, Role::Admin)?;
        let name = req.into_inner().name;
        if name == who.name {
            return Err(Status::permission_denied(
                "cannot destroy your own service account",
            ));
        }
        if self.core.keys.remove_account(&name) == 0 {
            return Err(Status::not_found(format!(
                "service account {name:?} not found"
            )));
        }
        Ok(Response::new(()))
    }

    async fn kubernetes_upgrade_pre_checks(
        &self,
        req: Request<pb::KubernetesUpgradePreChecksRequest>,
    ) -> Result<Response<pb::KubernetesUpgradePreChecksResponse>, Status> {
        let who = identity(&req)?;
        self.core.require(&who, Role::Operator)?;
        let cluster = cluster_header(&req)
            .ok_or_else(|| Status::invalid_argument("cluster name is required in the context"))?;
        let new = req.into_inner().new_version;
        let current = self
            .core
            .store
            .get("default", t::KUBERNETES_UPGRADE_STATUS, &cluster)
            .and_then(|s| specs::KubernetesUpgradeStatusSpec::decode(s.spec.as_slice()).ok())
            .map(|s| s.last_upgrade_version)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                Status::failed_precondition("current Kubernetes version is not known yet")
            })?;
        let new = new.strip_prefix('v').unwrap_or(&new).to_string();
        if !talos_machinery::versions::kubernetes_upgrade_allowed(&current, &new) {
            return Err(Status::invalid_argument(format!(
                "unsupported upgrade path {current} -> {new}"
            )));
        }
        Ok(Response::new(pb::KubernetesUpgradePreChecksResponse {
            ok: true,
            reason: String::new(),
        }))
    }

    type KubernetesSyncManifestsStream = BoxStream<pb::KubernetesSyncManifestResponse>;

    async fn kubernetes_sync_manifests(
        &self,
        req: Request<pb::KubernetesSyncManifestRequest>,
    ) -> Result<Response<Self::KubernetesSyncManifestsStream>, Status> {
        identity(&req)?;
        Err(Status::unimplemented(
            "KubernetesSyncManifests is not emulated (no Kubernetes API)",
        ))
    }

    async fn create_schematic(
        &self,
        req: Request<pb::CreateSchematicRequest>,
    ) -> Result<Response<pb::CreateSchematicResponse>, Status> {
        let who = identity(&req)?;
        self.core.require(&who, Role::Operator)?;
        let r = req.into_inner();
        let mut extensions = r.extensions.clone();
        extensions.sort();
        extensions.dedup();
        let mut meta = BTreeMap::new();
        for (k, v) in &r.meta_values {
            // Only these META keys may be set through Omni (image-factory spec §5.3).
            if !matches!(k, 10 | 12 | 13 | 14) {
                return Err(Status::invalid_argument(format!(
                    "meta key {k} is not allowed"
                )));
            }
            if *k == 12 && v.trim().is_empty() {
                return Err(Status::invalid_argument(
                    "machine labels meta value must not be empty",
                ));
            }
            meta.insert(*k as u8, v.clone());
        }
        let tunnel = r.siderolink_grpc_tunnel_mode
            == pb::create_schematic_request::SiderolinkGrpcTunnelMode::Enabled as i32;
        let endpoint = self.endpoint();
        let join_token = if r.join_token.is_empty() {
            "emulator-join-token".to_string()
        } else {
            r.join_token.clone()
        };
        let mut args = siderolink_args(&endpoint, &join_token, tunnel);
        args.extend(r.extra_kernel_args.iter().cloned());
        let mut b = talos_machinery::schematic::SchematicBuilder::new()
            .extensions(extensions)
            .extra_kernel_args(args)
            .meta(&meta);
        let talos = r
            .talos_version
            .strip_prefix('v')
            .unwrap_or(&r.talos_version)
            .to_string();
        if let Some(o) = &r.overlay {
            let old = talos_machinery::versions::parse_version(&talos)
                .map(|v| v.0 < semver::Version::new(1, 7, 0))
                .unwrap_or(false);
            let empty = o.name.is_empty() && o.image.is_empty();
            if !old && !empty {
                b = b.overlay_with_yaml_options(&o.name, &o.image, &o.options);
            }
        }
        let boot = match r.bootloader {
            1 => Some("dual-boot"),
            2 => Some("sd-boot"),
            3 => Some("grub"),
            _ => None,
        };
        if let Some(bl) = boot {
            b = b.bootloader(bl);
        }
        if !r.embedded_machine_config.is_empty() {
            b = b.embedded_machine_configuration(&r.embedded_machine_config);
        }
        let s = b
            .build()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let yml = s.canonical_yaml();
        let id = s.id();
        // Register the schematic with the built-in factory so GET /schematics/<id> serves it.
        let resp = self
            .core
            .factory
            .handle("POST", "/schematics", yml.as_bytes());
        if resp.status >= 400 {
            return Err(Status::internal(format!(
                "image factory rejected the schematic: {}",
                String::from_utf8_lossy(&resp.body)
            )));
        }
        let pxe_url = if talos.is_empty() {
            String::new()
        } else {
            format!("{endpoint}/pxe/{id}/v{talos}/metal-amd64")
        };
        Ok(Response::new(pb::CreateSchematicResponse {
            schematic_id: id,
            pxe_url,
            grpc_tunnel_enabled: tunnel,
            schematic_yml: yml,
        }))
    }

    async fn create_schematic_from_raw(
        &self,
        req: Request<pb::CreateSchematicFromRawRequest>,
    ) -> Result<Response<pb::CreateSchematicResponse>, Status> {
        let who = identity(&req)?;
        if who.role != Role::InfraProvider {
            self.core.require(&who, Role::Operator)?;
        }
        let r = req.into_inner();
        let text = String::from_utf8(r.raw_schematic)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let s = talos_machinery::schematic::parse(&text)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let yml = s.canonical_yaml();
        let _ = self
            .core
            .factory
            .handle("POST", "/schematics", yml.as_bytes());
        Ok(Response::new(pb::CreateSchematicResponse {
            schematic_id: s.id(),
            ..Default::default()
        }))
    }

    async fn get_boot_asset_url(
        &self,
        req: Request<pb::BootAssetUrlRequest>,
    ) -> Result<Response<pb::BootAssetUrlResponse>, Status> {
        identity(&req)?;
        Err(Status::unimplemented("GetBootAssetURL is not emulated"))
    }

    async fn get_machine_join_config(
        &self,
        req: Request<pb::GetMachineJoinConfigRequest>,
    ) -> Result<Response<pb::GetMachineJoinConfigResponse>, Status> {
        identity(&req)?;
        Err(Status::unimplemented(
            "GetMachineJoinConfig is not emulated",
        ))
    }

    async fn create_join_token(
        &self,
        req: Request<pb::CreateJoinTokenRequest>,
    ) -> Result<Response<pb::CreateJoinTokenResponse>, Status> {
        identity(&req)?;
        Err(Status::unimplemented("CreateJoinToken is not emulated"))
    }

    async fn create_user(
        &self,
        req: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        identity(&req)?;
        Err(Status::unimplemented("user management is not emulated"))
    }

    async fn list_users(
        &self,
        req: Request<()>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        identity(&req)?;
        Err(Status::unimplemented("user management is not emulated"))
    }

    async fn update_user(
        &self,
        req: Request<pb::UpdateUserRequest>,
    ) -> Result<Response<()>, Status> {
        identity(&req)?;
        Err(Status::unimplemented("user management is not emulated"))
    }

    async fn destroy_user(
        &self,
        req: Request<pb::DestroyUserRequest>,
    ) -> Result<Response<()>, Status> {
        identity(&req)?;
        Err(Status::unimplemented("user management is not emulated"))
    }
}

impl Management {
    fn register_key(&self, name: &str, role: Role, armored: &str) -> Result<String, Status> {
        use pgp::composed::{Deserializable, SignedPublicKey};
        let (key, _) = SignedPublicKey::from_string(armored).map_err(|e| {
            Status::invalid_argument(format!("failed to parse PGP public key: {e}"))
        })?;
        let fp = crate::keys::fingerprint_hex(&key.primary_key);
        if self.core.keys.lookup(&fp).is_some() {
            return Err(Status::already_exists("public key is already registered"));
        }
        let now = crate::model::Time::now().secs;
        let _ = identity_email(name);
        self.core
            .keys
            .add(KeyEntry {
                name: name.to_string(),
                fingerprint: fp.clone(),
                role,
                public_key: armored.to_string(),
                expiration: now + crate::keys::DEFAULT_TTL_SECS,
                created: now,
            })
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(fp)
    }
}

trait DigestWith {
    fn digest_with(s: &str) -> Vec<u8>;
}

impl DigestWith for sha2::Sha256 {
    fn digest_with(s: &str) -> Vec<u8> {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"omni-emulator-kubeconfig-token/");
        h.update(s.as_bytes());
        h.finalize().to_vec()
    }
}
