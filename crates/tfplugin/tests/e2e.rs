//! End-to-end tests driving the REAL `terraform` binary against the test
//! provider (`terraform-provider-tfptest`) through dev_overrides, with a
//! private CLI config and no `terraform init`. Assertions read
//! `terraform show -json` / `plan -json` / `validate -json`, not human text.
//!
//! Without `terraform` on PATH these tests fail (on purpose: they are the
//! proof that the protocol works).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value as J;

const PROVIDER_BIN: &str = env!("CARGO_BIN_EXE_terraform-provider-tfptest");
const SOURCE: &str = "example.local/test/tfptest";

struct Tf {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    store: PathBuf,
    cli_config: PathBuf,
}

fn terraform_path() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|p| p.join("terraform"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`terraform` was not found on PATH. The tfplugin end-to-end tests need the real \
                 Terraform CLI (1.11 or newer); install it and re-run."
            )
        })
}

impl Tf {
    fn new() -> Tf {
        terraform_path();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("work");
        let store = tmp.path().join("store");
        std::fs::create_dir_all(&dir).unwrap();
        let bin_dir = Path::new(PROVIDER_BIN).parent().unwrap();
        let cli_config = tmp.path().join("cli.tfrc");
        std::fs::write(
            &cli_config,
            format!(
                "provider_installation {{\n  dev_overrides {{\n    \"{SOURCE}\" = \"{}\"\n  }}\n}}\n",
                bin_dir.display()
            ),
        )
        .unwrap();
        Tf {
            _tmp: tmp,
            dir,
            store,
            cli_config,
        }
    }

    fn write(&self, body: &str) {
        let main = format!(
            "terraform {{\n  required_providers {{\n    tfptest = {{ source = \"{SOURCE}\" }}\n  }}\n}}\n\
             provider \"tfptest\" {{\n  dir = \"{}\"\n}}\n{body}",
            self.store.display()
        );
        std::fs::write(self.dir.join("main.tf"), main).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(terraform_path());
        c.args(args)
            .current_dir(&self.dir)
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .env("RUST_BACKTRACE", "0")
            .env_remove("TF_LOG")
            .env_remove("TF_LOG_PROVIDER")
            .env_remove("TF_LOG_PATH");
        c
    }

    fn run_with(&self, args: &[&str], f: impl FnOnce(&mut Command)) -> Output {
        let mut c = self.command(args);
        f(&mut c);
        let start = Instant::now();
        let out = c.output().expect("run terraform");
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "terraform {args:?} took too long"
        );
        out
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, |_| {})
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "terraform {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn apply(&self) {
        self.ok(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    }

    fn state(&self) -> J {
        serde_json::from_str(&self.ok(&["show", "-json"])).unwrap()
    }

    /// `plan -out` then `show -json` of the plan.
    fn plan(&self, extra: &[&str]) -> J {
        let mut args = vec!["plan", "-no-color", "-input=false", "-out=step.tfplan"];
        args.extend_from_slice(extra);
        self.ok(&args);
        serde_json::from_str(&self.ok(&["show", "-json", "step.tfplan"])).unwrap()
    }

    fn stored(&self, name: &str) -> Option<J> {
        let b = std::fs::read(self.store.join(format!("{name}.json"))).ok()?;
        Some(serde_json::from_slice(&b).unwrap())
    }
}

fn resource<'a>(state: &'a J, address: &str) -> &'a J {
    state["values"]["root_module"]["resources"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["address"] == address))
        .unwrap_or_else(|| panic!("{address} not in state: {state:#}"))
}

fn change<'a>(plan: &'a J, address: &str) -> &'a J {
    plan["resource_changes"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["address"] == address))
        .unwrap_or_else(|| panic!("{address} not in plan: {plan:#}"))
}

fn actions(plan: &J, address: &str) -> Vec<String> {
    change(plan, address)["change"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// JSON lines of a `-json` UI run.
fn json_lines(out: &Output) -> Vec<J> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

const FULL: &str = r#"
resource "tfptest_file" "a" {
  name        = "a"
  content     = "hello"
  secret      = "s3cret"
  password_wo = "hunter2"
  labels      = { team = "core" }
  rules       = [{ port = 80 }, { port = 443, protocol = "udp" }]
}
"#;

#[test]
fn plan_apply_refresh_drift_replace_import_destroy() {
    let tf = Tf::new();
    tf.write(FULL);

    // Plan from empty: create, computed values known early where possible.
    let plan = tf.plan(&[]);
    assert_eq!(actions(&plan, "tfptest_file.a"), ["create"]);
    let after = &change(&plan, "tfptest_file.a")["change"]["after"];
    assert_eq!(after["size"], 5, "size is planned from content");
    assert_eq!(after["id"], "a");
    assert_eq!(
        after["rules"][0]["protocol"], "tcp",
        "plan modifier default"
    );
    assert_eq!(
        change(&plan, "tfptest_file.a")["change"]["after_unknown"]["revision"],
        true
    );
    assert!(after["password_wo"].is_null(), "write-only never planned");

    tf.ok(&["apply", "-auto-approve", "-no-color", "step.tfplan"]);
    let state = tf.state();
    let a = resource(&state, "tfptest_file.a");
    assert_eq!(a["values"]["revision"], 1);
    assert_eq!(a["values"]["labels"]["team"], "core");
    assert_eq!(a["values"]["rules"][1]["protocol"], "udp");
    assert!(
        a["values"]["password_wo"].is_null(),
        "write-only not in state"
    );
    assert_eq!(a["sensitive_values"]["secret"], true);
    let stored = tf.stored("a").unwrap();
    assert_eq!(stored["content"], "hello");
    assert!(
        stored["password_hash"].is_string(),
        "write-only value reached the provider"
    );
    let raw_state = std::fs::read_to_string(tf.dir.join("terraform.tfstate")).unwrap();
    assert!(!raw_state.contains("hunter2"));

    // Re-plan is empty.
    let out = tf.run(&["plan", "-detailed-exitcode", "-no-color"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Out-of-band change shows as an update back to the configuration.
    let mut s = tf.stored("a").unwrap();
    s["content"] = "edited outside".into();
    std::fs::write(tf.store.join("a.json"), serde_json::to_vec(&s).unwrap()).unwrap();
    let plan = tf.plan(&[]);
    assert_eq!(actions(&plan, "tfptest_file.a"), ["update"]);
    let ch = &change(&plan, "tfptest_file.a")["change"];
    assert_eq!(ch["before"]["content"], "edited outside");
    assert_eq!(ch["after"]["content"], "hello");
    assert_eq!(ch["after_unknown"]["revision"], true);

    // Refresh-only adopts the remote value into state.
    tf.ok(&["apply", "-refresh-only", "-auto-approve", "-no-color"]);
    let state = tf.state();
    assert_eq!(
        resource(&state, "tfptest_file.a")["values"]["content"],
        "edited outside"
    );
    assert_eq!(resource(&state, "tfptest_file.a")["values"]["size"], 14);

    // Converge: update in place bumps the revision.
    tf.apply();
    let state = tf.state();
    assert_eq!(resource(&state, "tfptest_file.a")["values"]["revision"], 2);
    assert_eq!(tf.stored("a").unwrap()["content"], "hello");

    // Deleted out of band: planned for re-creation.
    std::fs::remove_file(tf.store.join("a.json")).unwrap();
    let plan = tf.plan(&[]);
    assert_eq!(actions(&plan, "tfptest_file.a"), ["create"]);
    tf.apply();

    // Changing a RequiresReplace attribute replaces.
    tf.write(&FULL.replace("name        = \"a\"", "name        = \"b\""));
    let plan = tf.plan(&[]);
    assert_eq!(actions(&plan, "tfptest_file.a"), ["delete", "create"]);
    assert_eq!(
        change(&plan, "tfptest_file.a")["change"]["replace_paths"],
        serde_json::json!([["name"]])
    );
    tf.ok(&["apply", "-auto-approve", "-no-color", "step.tfplan"]);
    assert!(tf.stored("a").is_none() && tf.stored("b").is_some());

    // Import: forget it, import by ID, and the state matches the store.
    tf.ok(&["state", "rm", "tfptest_file.a"]);
    tf.ok(&["import", "-no-color", "tfptest_file.a", "b"]);
    let state = tf.state();
    let a = resource(&state, "tfptest_file.a");
    assert_eq!(a["values"]["content"], "hello");
    assert_eq!(a["values"]["id"], "b");
    assert_eq!(a["values"]["rules"][0]["port"], 80);

    tf.ok(&["destroy", "-auto-approve", "-no-color"]);
    assert!(tf.stored("b").is_none(), "destroy removed the object");
    let state = tf.state();
    assert!(state["values"].is_null() || state["values"]["root_module"]["resources"].is_null());
}

#[test]
fn validate_reports_errors_at_attribute_paths() {
    let tf = Tf::new();
    tf.write(
        r#"
resource "tfptest_file" "a" {
  name    = "a"
  content = "x"
  labels  = { forbidden = "1" }
}
"#,
    );
    let out = tf.run(&["validate", "-json", "-no-color"]);
    assert!(!out.status.success());
    let v: J = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let d = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["summary"] == "Forbidden label")
        .unwrap_or_else(|| panic!("no provider diagnostic: {v:#}"));
    assert_eq!(d["severity"], "error");
    // The path labels["forbidden"] resolves to the map entry in main.tf.
    assert!(d["range"]["start"]["line"].as_i64().unwrap() >= 5, "{d:#}");
    assert!(!d["detail"].as_str().unwrap().contains("backtrace"));

    // Provider config validation too.
    tf.write("");
    std::fs::write(
        tf.dir.join("main.tf"),
        format!(
            "terraform {{\n  required_providers {{\n    tfptest = {{ source = \"{SOURCE}\" }}\n  }}\n}}\n\
             provider \"tfptest\" {{\n  dir = \"\"\n}}\nresource \"tfptest_file\" \"a\" {{\n  name = \"a\"\n  content = \"x\"\n}}\n"
        ),
    )
    .unwrap();
    let out = tf.run(&["validate", "-json", "-no-color"]);
    let v: J = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["summary"] == "Empty dir"),
        "{v:#}"
    );
}

#[test]
fn data_source_and_functions() {
    let tf = Tf::new();
    tf.write(
        r#"
resource "tfptest_file" "a" {
  name    = "a"
  content = "twelve chars"
}
data "tfptest_file" "a" {
  name = tfptest_file.a.name
}
output "size"  { value = data.tfptest_file.a.size }
output "upper" { value = provider::tfptest::upper("shout") }
output "sum"   { value = provider::tfptest::sum(1, 2, 3.5) }
output "big"   { value = provider::tfptest::sum(9007199254740993, 1) }
resource "tfptest_echo" "e" {
  input = { a = 1, b = ["x", "y"], c = { d = true } }
}
output "echo" { value = tfptest_echo.e.output }
"#,
    );
    tf.apply();
    let out = tf.run(&["plan", "-detailed-exitcode", "-no-color"]);
    assert_eq!(out.status.code(), Some(0), "dynamic values re-plan empty");
    let state = tf.state();
    let outputs = &state["values"]["outputs"];
    assert_eq!(
        outputs["echo"]["value"],
        serde_json::json!({"a": 1, "b": ["x", "y"], "c": {"d": true}}),
        "dynamic pseudo-type round trip through Terraform"
    );
    assert_eq!(outputs["size"]["value"], 12);
    assert_eq!(outputs["upper"]["value"], "SHOUT");
    assert_eq!(outputs["sum"]["value"], 6.5);
    // 2^53+1 is not exact in float64: only an exact integer path gets it right.
    assert_eq!(outputs["big"]["value"].to_string(), "9007199254740994");

    // A function error names the argument.
    tf.write(r#"output "bad" { value = provider::tfptest::upper("fail") }"#);
    let out = tf.run(&["plan", "-json", "-no-color"]);
    assert!(!out.status.success());
    let lines = json_lines(&out);
    let diag = lines
        .iter()
        .find(|l| l["type"] == "diagnostic" && l["diagnostic"]["severity"] == "error")
        .unwrap_or_else(|| panic!("no error diagnostic: {lines:#?}"));
    assert!(
        diag["diagnostic"]["detail"]
            .as_str()
            .unwrap()
            .contains("refusing"),
        "{diag:#}"
    );
}

#[test]
fn ephemeral_resource_feeds_a_write_only_attribute() {
    let tf = Tf::new();
    tf.write(
        r#"
ephemeral "tfptest_token" "t" {
  length = 24
}
resource "tfptest_file" "a" {
  name        = "a"
  content     = "x"
  password_wo = ephemeral.tfptest_token.t.value
}
"#,
    );
    tf.apply();
    let log = std::fs::read_to_string(tf.store.join("ephemeral.log")).unwrap();
    let opens = log.lines().filter(|l| l.starts_with("open ")).count();
    let closes = log.lines().filter(|l| l.starts_with("close ")).count();
    assert!(opens >= 1, "{log}");
    assert_eq!(opens, closes, "every open was closed: {log}");
    let raw_state = std::fs::read_to_string(tf.dir.join("terraform.tfstate")).unwrap();
    assert!(
        !raw_state.contains("tok-"),
        "ephemeral value leaked into state"
    );
    let state = tf.state();
    assert!(resource(&state, "tfptest_file.a")["values"]["password_wo"].is_null());
    assert!(tf.stored("a").unwrap()["password_hash"].is_string());
}

#[test]
fn a_panic_becomes_an_error_diagnostic_without_backtrace() {
    let tf = Tf::new();
    tf.write(
        r#"
resource "tfptest_file" "boom" {
  name    = "boom"
  content = "PANIC"
}
"#,
    );
    let start = Instant::now();
    // RUST_BACKTRACE=1 on purpose: no frames may reach the user either way.
    let out = tf.run_with(&["apply", "-auto-approve", "-json", "-no-color"], |c| {
        c.env("RUST_BACKTRACE", "1");
    });
    assert!(start.elapsed() < Duration::from_secs(60), "must not hang");
    assert!(!out.status.success());
    let lines = json_lines(&out);
    let diag = lines
        .iter()
        .find(|l| l["type"] == "diagnostic" && l["diagnostic"]["summary"] == "Provider panicked")
        .unwrap_or_else(|| panic!("no panic diagnostic: {lines:#?}"));
    let detail = diag["diagnostic"]["detail"].as_str().unwrap();
    assert!(detail.contains("ApplyResourceChange"), "{detail}");
    assert!(detail.contains("tfptest_file"), "{detail}");
    assert!(detail.contains("tfptest was asked to panic"), "{detail}");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "stack backtrace",
        "RUST_BACKTRACE",
        "rust_begin_unwind",
        "panicking.rs",
    ] {
        assert!(
            !all.contains(needle),
            "backtrace text {needle:?} leaked:\n{all}"
        );
    }
    // Nothing was created and the provider is still usable afterwards.
    assert!(tf.stored("boom").is_none());
    tf.write(
        r#"
resource "tfptest_file" "ok" {
  name    = "ok"
  content = "fine"
}
"#,
    );
    tf.apply();
}

#[test]
fn run_by_hand_it_explains_and_exits_1() {
    let out = Command::new(PROVIDER_BIN)
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing on stdout");
    assert!(String::from_utf8_lossy(&out.stderr).contains("plugin"));
}

/// `tfptest_null` (the benchmark's `null_resource` shape): unknown map elements at validate
/// time, an empty re-plan, and a `triggers` change that replaces the resource.
#[test]
fn null_resource_shape_replaces_on_trigger_change() {
    let tf = Tf::new();
    let config = |v: &str| {
        format!(
            "resource \"tfptest_null\" \"n\" {{\n  count    = 2\n  triggers = {{ idx = count.index, v = \"{v}\" }}\n}}\n"
        )
    };
    tf.write(&config("1"));
    tf.apply();
    let id = |state: &J| {
        resource(state, "tfptest_null.n[0]")["values"]["id"]
            .as_str()
            .expect("id is set")
            .to_string()
    };
    let state = tf.state();
    let first = id(&state);
    assert_eq!(
        resource(&state, "tfptest_null.n[1]")["values"]["triggers"],
        serde_json::json!({"idx": "1", "v": "1"})
    );
    let out = tf.run(&["plan", "-detailed-exitcode", "-no-color"]);
    assert_eq!(out.status.code(), Some(0), "re-plan is empty");

    tf.write(&config("2"));
    let out = tf.run(&["plan", "-no-color"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("must be replaced"), "{text}");
    tf.apply();
    assert_ne!(
        id(&tf.state()),
        first,
        "a new instance after the trigger changed"
    );
}
