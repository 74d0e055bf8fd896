//! Acceptance-test harness in the spirit of terraform-plugin-testing.
//!
//! Every test gets its own temporary directory, its own `omni-emulator` process on port 0 and a
//! private `TF_CLI_CONFIG_FILE` whose `dev_overrides` point at the provider binary cargo just
//! built; it runs the real `terraform` (no `init` needed) and asserts on `terraform show -json`
//! and `plan -json`, never on human text.
//!
//! When `OMNI_ENDPOINT` and `OMNI_SERVICE_ACCOUNT_KEY` are both set, [`Omni::start`] targets that
//! Omni instead of starting an emulator.

pub mod examples;
pub mod oob;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The provider address used by tests and examples; dev_overrides maps it to the built binary.
pub const PROVIDER_SOURCE: &str = "siderolabs/omni";

/// `target/debug` (or whichever profile built this test), found from the test binary's path.
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("OMNI_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test-binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// Path of a workspace binary, with a clear message when it was not built.
pub fn built_binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `make build` (cargo build --workspace --bins) before the acceptance tests",
        path.display()
    );
    path
}

/// The `terraform` binary; the tests fail (never skip) when it is absent.
pub fn terraform_binary() -> PathBuf {
    if let Ok(p) = std::env::var("TF_ACC_TERRAFORM_PATH") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("terraform");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`terraform` (1.10 or newer) is not on PATH: the acceptance tests drive the real binary"
    );
}

/// How many of an emulator's arguments the harness sets itself (listen address, step delay).
const BASE_ARGS: usize = 4;

/// An Omni to test against: an emulator process this harness owns, or a real Omni.
pub struct Omni {
    pub endpoint: String,
    pub service_account_key: String,
    process: Option<Child>,
    data_dir: Option<PathBuf>,
    args: Vec<String>,
    _tmp: Option<tempfile::TempDir>,
}

impl Omni {
    /// Starts an emulator with `machines` machines (or uses the real Omni from the environment).
    pub fn start(machines: u32) -> Result<Self> {
        Self::start_with(&["--machines".to_string(), machines.to_string()])
    }

    /// Starts an emulator with extra command-line flags.
    pub fn start_with(extra: &[String]) -> Result<Self> {
        if let (Ok(endpoint), Ok(key)) = (
            std::env::var("OMNI_ENDPOINT"),
            std::env::var("OMNI_SERVICE_ACCOUNT_KEY"),
        ) {
            return Ok(Omni {
                endpoint,
                service_account_key: key,
                process: None,
                data_dir: None,
                args: vec![],
                _tmp: None,
            });
        }
        let tmp = tempfile::tempdir()?;
        let data_dir = tmp.path().join("omni");
        std::fs::create_dir_all(&data_dir)?;
        let mut args = vec![
            "--listen".to_string(),
            "127.0.0.1:0".to_string(),
            "--step-delay-ms".to_string(),
            "50".to_string(),
        ];
        debug_assert_eq!(args.len(), BASE_ARGS);
        args.extend_from_slice(extra);
        let mut omni = Omni {
            endpoint: String::new(),
            service_account_key: String::new(),
            process: None,
            data_dir: Some(data_dir),
            args,
            _tmp: Some(tmp),
        };
        omni.spawn()?;
        Ok(omni)
    }

    /// True when this run targets an emulator this harness controls.
    pub fn is_emulator(&self) -> bool {
        self.data_dir.is_some()
    }

    /// The emulator's data directory.
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    fn spawn(&mut self) -> Result<()> {
        let dir = self.data_dir.clone().context("not an emulator")?;
        let endpoint_file = dir.join("endpoint");
        let _ = std::fs::remove_file(&endpoint_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("emulator.log"))?;
        let child = Command::new(built_binary("omni-emulator"))
            .args(&self.args)
            .arg("--data-dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting omni-emulator")?;
        self.process = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&endpoint_file) {
                if !text.trim().is_empty() {
                    self.endpoint = text.trim().to_string();
                    break;
                }
            }
            if let Some(status) = self.process.as_mut().unwrap().try_wait()? {
                bail!(
                    "omni-emulator exited with {status}: {}",
                    std::fs::read_to_string(dir.join("emulator.log")).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "omni-emulator did not write {} within 30s",
                    endpoint_file.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.service_account_key = std::fs::read_to_string(dir.join("service-account.key"))
            .context("reading service-account.key")?
            .trim()
            .to_string();
        Ok(())
    }

    /// `kill -9` the emulator (simulates a crash).
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut child) = self.process.take() {
            child.kill()?; // SIGKILL on Unix
            child.wait()?;
        }
        Ok(())
    }

    /// Starts the emulator again on the same data directory.
    pub fn restart(&mut self) -> Result<()> {
        self.kill9()?;
        self.spawn()
    }

    /// Starts the emulator again on the same data directory and the same address, as a
    /// supervisor restarting a crashed server does: clients that keep retrying reach it again.
    pub fn restart_on_same_address(&mut self) -> Result<()> {
        self.kill9()?;
        let addr = self
            .endpoint
            .rsplit('/')
            .next()
            .context("emulator endpoint has no address")?
            .to_string();
        self.args[1] = addr;
        self.spawn()
    }

    /// Starts the emulator again on the same data directory with other extra flags (e.g. the
    /// same data without `--fail-rate`), as an operator restarting with another configuration.
    pub fn restart_with(&mut self, extra: &[String]) -> Result<()> {
        self.kill9()?;
        self.args.truncate(BASE_ARGS);
        self.args.extend_from_slice(extra);
        self.spawn()
    }

    /// Runs `omni-emulator service-account create` and returns the new key.
    pub fn create_service_account(&self, name: &str, role: &str) -> Result<String> {
        let dir = self.data_dir.as_ref().context("not an emulator")?;
        let out = Command::new(built_binary("omni-emulator"))
            .args(["service-account", "create", "--data-dir"])
            .arg(dir)
            .args(["--name", name, "--role", role])
            .output()?;
        if !out.status.success() {
            bail!(
                "service-account create failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_string())
    }

    /// The emulator's stderr so far (for failure messages).
    pub fn log(&self) -> String {
        self.data_dir
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.join("emulator.log")).ok())
            .unwrap_or_default()
    }
}

impl Drop for Omni {
    fn drop(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Result of one terraform command.
pub struct TfRun {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl TfRun {
    /// The `-json` UI lines of type `diagnostic` with severity error.
    pub fn error_diagnostics(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "diagnostic" && v["diagnostic"]["severity"] == "error")
            .map(|v| v["diagnostic"].clone())
            .collect()
    }

    fn describe(&self) -> String {
        let diags: Vec<String> = self
            .error_diagnostics()
            .iter()
            .map(|d| format!("{}: {}", d["summary"], d["detail"]))
            .collect();
        format!(
            "exit {}\ndiagnostics: {:#?}\nstderr: {}",
            self.status, diags, self.stderr
        )
    }
}

/// A Terraform working directory wired to the built provider and an [`Omni`].
pub struct Workspace {
    dir: tempfile::TempDir,
    cli_config: PathBuf,
    env: Vec<(String, String)>,
}

impl Workspace {
    /// A fresh directory whose CLI config points `siderolabs/omni` at the built provider.
    pub fn new(omni: &Omni) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let cli_config = dir.path().join("terraform.rc");
        let provider = built_binary("terraform-provider-omni");
        std::fs::write(
            &cli_config,
            format!(
                "provider_installation {{\n  dev_overrides {{\n    \"{}\" = \"{}\"\n  }}\n}}\n",
                PROVIDER_SOURCE,
                provider.parent().unwrap().display()
            ),
        )?;
        let env = vec![
            ("OMNI_ENDPOINT".to_string(), omni.endpoint.clone()),
            (
                "OMNI_SERVICE_ACCOUNT_KEY".to_string(),
                omni.service_account_key.clone(),
            ),
        ];
        Ok(Workspace {
            dir,
            cli_config,
            env,
        })
    }

    /// The working directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Sets an extra environment variable for every terraform run.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Writes `main.tf` (with the required_providers block prepended).
    pub fn write_config(&self, body: &str) -> Result<()> {
        let text = format!(
            "terraform {{\n  required_providers {{\n    omni = {{ source = \"{PROVIDER_SOURCE}\" }}\n  }}\n}}\n\n{body}\n"
        );
        std::fs::write(self.dir.path().join("main.tf"), text)?;
        Ok(())
    }

    /// Runs terraform with the given arguments and returns what it did.
    pub fn run(&self, args: &[&str]) -> Result<TfRun> {
        let out: Output = Command::new(terraform_binary())
            .args(args)
            .current_dir(self.dir.path())
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .env("RUST_BACKTRACE", "0")
            .env("TF_LOG_PATH", self.dir.path().join("terraform.log"))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .output()
            .context("running terraform")?;
        Ok(TfRun {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    fn run_ok(&self, args: &[&str]) -> Result<TfRun> {
        let run = self.run(args)?;
        if run.status != 0 {
            bail!("terraform {} failed: {}", args.join(" "), run.describe());
        }
        Ok(run)
    }

    /// `terraform apply -auto-approve -json`.
    pub fn apply(&self) -> Result<TfRun> {
        self.run_ok(&["apply", "-auto-approve", "-input=false", "-json"])
    }

    /// `terraform apply`, expected to fail; returns the error diagnostics.
    pub fn apply_expect_error(&self) -> Result<Vec<Value>> {
        let run = self.run(&["apply", "-auto-approve", "-input=false", "-json"])?;
        if run.status == 0 {
            bail!("apply succeeded but an error was expected");
        }
        Ok(run.error_diagnostics())
    }

    /// `terraform plan`, expected to fail; returns the error diagnostics.
    pub fn plan_expect_error(&self) -> Result<Vec<Value>> {
        let run = self.run(&["plan", "-input=false", "-json"])?;
        if run.status == 0 {
            bail!("plan succeeded but an error was expected");
        }
        Ok(run.error_diagnostics())
    }

    /// `terraform destroy -auto-approve`.
    pub fn destroy(&self) -> Result<TfRun> {
        self.run_ok(&["destroy", "-auto-approve", "-input=false", "-json"])
    }

    /// `terraform plan -detailed-exitcode`: `Ok(false)` when empty, `Ok(true)` when it has changes.
    pub fn plan_has_changes(&self) -> Result<bool> {
        let run = self.run(&["plan", "-detailed-exitcode", "-input=false", "-json"])?;
        match run.status {
            0 => Ok(false),
            2 => Ok(true),
            _ => bail!("plan failed: {}", run.describe()),
        }
    }

    /// Plans to a file and returns `terraform show -json` of that plan.
    pub fn plan_json(&self) -> Result<Value> {
        self.run_ok(&["plan", "-input=false", "-out=step.tfplan", "-json"])?;
        let show = self.run_ok(&["show", "-json", "step.tfplan"])?;
        Ok(serde_json::from_str(&show.stdout)?)
    }

    /// `terraform show -json` of the state.
    pub fn state(&self) -> Result<Value> {
        let show = self.run_ok(&["show", "-json"])?;
        Ok(serde_json::from_str(&show.stdout)?)
    }

    /// `terraform import ADDR ID`.
    pub fn import(&self, addr: &str, id: &str) -> Result<TfRun> {
        self.run_ok(&["import", "-input=false", addr, id])
    }

    /// Raw text of the state file (for "no secret in state" assertions).
    pub fn state_file_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("terraform.tfstate")).unwrap_or_default()
    }

    /// The terraform log of the last runs (TF_LOG must be set to get one).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("terraform.log")).unwrap_or_default()
    }
}

/// The `values` of the resource at `address` in `terraform show -json` output.
pub fn resource_values(state: &Value, address: &str) -> Result<Value> {
    fn find(module: &Value, address: &str) -> Option<Value> {
        if let Some(list) = module["resources"].as_array() {
            for r in list {
                if r["address"] == address {
                    return Some(r["values"].clone());
                }
            }
        }
        module["child_modules"]
            .as_array()?
            .iter()
            .find_map(|m| find(m, address))
    }
    find(&state["values"]["root_module"], address)
        .ok_or_else(|| anyhow!("{address} is not in the state"))
}

/// The planned actions for `address` in a plan's JSON (e.g. `["create"]`, `["delete","create"]`).
pub fn planned_actions(plan: &Value, address: &str) -> Vec<String> {
    plan["resource_changes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["address"] == address)
        .and_then(|c| c["change"]["actions"].as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect()
}

/// Whether the diagnostics contain one whose summary or detail matches `pattern` and, when
/// given, whose attribute path (in the config range snippet) names `attribute`.
pub fn has_diagnostic(diags: &[Value], pattern: &str, attribute: Option<&str>) -> bool {
    let re = regex::Regex::new(pattern).expect("valid regex");
    diags.iter().any(|d| {
        let text = format!("{} {}", d["summary"], d["detail"]);
        let attr_ok = match attribute {
            None => true,
            Some(a) => {
                d["address"].to_string().contains(a)
                    || d["snippet"]["context"].to_string().contains(a)
                    || d["snippet"]["code"].to_string().contains(a)
            }
        };
        re.is_match(&text) && attr_ok
    })
}

/// A plan-time error case: what it is about, the configuration, the diagnostic pattern, and the
/// attribute the diagnostic must point at (`None`: anywhere, e.g. the resource block).
pub type PlanErrorCase<'a> = (&'a str, String, &'a str, Option<&'a str>);

/// Plans every case's configuration in `ws` and asserts that it fails with a matching diagnostic
/// (see [`has_diagnostic`]).
pub fn assert_plan_errors(ws: &Workspace, cases: Vec<PlanErrorCase<'_>>) -> Result<()> {
    for (what, config, pattern, attribute) in cases {
        ws.write_config(&config)?;
        let diags = ws.plan_expect_error()?;
        assert!(
            has_diagnostic(&diags, pattern, attribute),
            "{what}: no diagnostic matching {pattern:?} at {attribute:?}: {diags:#?}"
        );
    }
    Ok(())
}

/// Import-verify, as terraform-plugin-testing's `ImportStateVerify`: imports `address` by `id`
/// into a fresh workspace holding the same `config`, requires an empty plan afterwards, and
/// compares every imported attribute with `expected` (the values from the original state),
/// except those named in `ignore` (e.g. `timeouts`, which only live in configuration).
pub fn import_verify(
    omni: &Omni,
    config: &str,
    address: &str,
    id: &str,
    expected: &Value,
    ignore: &[&str],
) -> Result<()> {
    let ws = Workspace::new(omni)?;
    ws.write_config(config)?;
    ws.import(address, id)?;
    let imported = resource_values(&ws.state()?, address)?;
    let (Some(want), Some(got)) = (expected.as_object(), imported.as_object()) else {
        bail!("{address}: attribute values are not objects");
    };
    for (key, value) in want {
        if ignore.contains(&key.as_str()) {
            continue;
        }
        let other = got.get(key).unwrap_or(&Value::Null);
        if other != value {
            bail!("{address}: imported {key} = {other}, but the created one has {value}");
        }
    }
    if ws.plan_has_changes()? {
        let plan = ws.plan_json()?;
        bail!(
            "{address}: the plan after import is not empty: {}",
            plan["resource_changes"]
        );
    }
    Ok(())
}
