//! Image Factory data sources with the real terraform against the emulator's factory
//! endpoints (image-factory-and-talos.md §3, §4.2).

use acceptance_tests::{has_diagnostic, Omni, Workspace};
use anyhow::{Context, Result};
use serde_json::Value;

fn provider(factory: &str) -> String {
    format!("provider \"omni\" {{\n  image_factory_url = \"{factory}\"\n}}\n")
}

/// The `values` of data source `address` in the state.
fn data(state: &Value, address: &str) -> Result<Value> {
    state["values"]["root_module"]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["address"] == address)
        .map(|r| r["values"].clone())
        .with_context(|| format!("{address} not in state"))
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["name"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn versions_extensions_and_overlays_with_filters() -> Result<()> {
    let omni = Omni::start(0)?;
    let ws = Workspace::new(&omni)?;
    ws.write_config(&format!(
        r#"{}
data "omni_image_factory_versions" "all" {{}}
data "omni_image_factory_versions" "stable" {{
  stable_only = true
}}
data "omni_image_factory_extensions" "all" {{
  talos_version = "v1.13.9"
}}
data "omni_image_factory_extensions" "nvidia" {{
  talos_version = "1.13.9"
  name_contains = "nvidia"
}}
data "omni_image_factory_extensions" "storage" {{
  talos_version = "v1.13.9"
  name_contains = "tools"
  name_regex    = "^siderolabs/(iscsi|util-linux)-"
}}
data "omni_image_factory_extensions" "none" {{
  talos_version = "v1.13.9"
  name_contains = "no-such-extension"
}}
data "omni_image_factory_overlays" "rpi" {{
  talos_version = "v1.13.9"
  name_regex    = "^rpi_"
}}
data "omni_image_factory_overlays" "old" {{
  talos_version = "v1.6.0"
}}
"#,
        provider(&omni.endpoint)
    ))?;
    ws.apply()?;
    let state = ws.state()?;

    let all = data(&state, "data.omni_image_factory_versions.all")?;
    let all_list: Vec<&str> = all["talos_versions"]
        .as_array()
        .context("talos_versions")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(all_list.first(), Some(&"v1.2.0"));
    assert!(all_list.iter().any(|v| v.contains("-rc.")), "{all_list:?}");
    let stable = data(&state, "data.omni_image_factory_versions.stable")?;
    let stable_list: Vec<&str> = stable["talos_versions"]
        .as_array()
        .context("talos_versions")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        stable_list.iter().all(|v| !v.contains('-')),
        "{stable_list:?}"
    );
    assert!(stable_list.len() < all_list.len());
    assert_eq!(stable["latest"], "v1.13.9");

    let ext = data(&state, "data.omni_image_factory_extensions.all")?;
    let all_ext = names(&ext["extensions"]);
    assert!(all_ext.contains(&"siderolabs/iscsi-tools".to_string()));
    let first = &ext["extensions"][0];
    for k in ["name", "ref", "digest", "author", "description"] {
        assert!(first[k].is_string(), "{k} in {first}");
    }
    let nvidia = names(&data(&state, "data.omni_image_factory_extensions.nvidia")?["extensions"]);
    assert!(!nvidia.is_empty() && nvidia.iter().all(|n| n.contains("nvidia")));
    assert!(nvidia.len() < all_ext.len());
    assert_eq!(
        names(&data(&state, "data.omni_image_factory_extensions.storage")?["extensions"]),
        vec!["siderolabs/iscsi-tools", "siderolabs/util-linux-tools"]
    );
    let none = data(&state, "data.omni_image_factory_extensions.none")?;
    assert_eq!(none["extensions"], Value::Array(vec![]));

    let rpi = data(&state, "data.omni_image_factory_overlays.rpi")?;
    assert_eq!(names(&rpi["overlays"]), vec!["rpi_generic", "rpi_5"]);
    assert_eq!(rpi["overlays"][0]["image"], "siderolabs/sbc-raspberrypi");
    // No overlays before Talos 1.7 (§3.1): an empty list, not an error.
    let old = data(&state, "data.omni_image_factory_overlays.old")?;
    assert_eq!(old["overlays"], Value::Array(vec![]));
    assert!(!ws.plan_has_changes()?);
    Ok(())
}

#[test]
fn urls_follow_the_platform_rules_at_plan_time() -> Result<()> {
    let omni = Omni::start(0)?;
    let f = omni.endpoint.clone();
    let host = f.trim_start_matches("http://").to_string();
    let ws = Workspace::new(&omni)?;
    ws.write_config(&format!(
        r#"{}
resource "omni_schematic" "this" {{
  extensions = ["siderolabs/iscsi-tools"]
}}
data "omni_image_factory_urls" "metal" {{
  talos_version = "1.13.9"
  schematic_id  = omni_schematic.this.id
}}
data "omni_image_factory_urls" "metal_sb" {{
  talos_version = "v1.13.9"
  schematic_id  = omni_schematic.this.id
  architecture  = "arm64"
  secureboot    = true
}}
data "omni_image_factory_urls" "aws" {{
  talos_version = "v1.13.9"
  schematic_id  = omni_schematic.this.id
  platform      = "aws"
}}
data "omni_image_factory_urls" "from_function" {{
  talos_version = "v1.13.9"
  schematic_id = provider::omni::schematic_id(yamlencode({{
    customization = {{
      systemExtensions = {{ officialExtensions = ["siderolabs/iscsi-tools", "siderolabs/util-linux-tools"] }}
    }}
  }}))
}}
data "omni_image_factory_urls" "rpi" {{
  talos_version = "v1.13.9"
  schematic_id  = omni_schematic.this.id
  sbc           = "rpi_generic"
}}
"#,
        provider(&f)
    ))?;
    // Terraform defers a data source that depends on a resource with pending changes; fed by
    // the function instead, the URLs are read during plan.
    let plan = ws.plan_json()?;
    let prior = plan["prior_state"]["values"]["root_module"]["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let early = prior
        .iter()
        .find(|r| r["address"] == "data.omni_image_factory_urls.from_function")
        .context("the URLs data source should be read at plan time")?;
    let planned_id = "613e1592b2da41ae5e265e8789429f22e121aab91cb4deb6bc3c0b6262961245";
    assert_eq!(
        early["values"]["installer_image"],
        format!("{host}/metal-installer/{planned_id}:v1.13.9")
    );
    ws.apply()?;
    let state = ws.state()?;
    let id = acceptance_tests::resource_values(&state, "omni_schematic.this")?["id"]
        .as_str()
        .context("id")?
        .to_string();
    let base = format!("{f}/image/{id}/v1.13.9");

    let m = data(&state, "data.omni_image_factory_urls.metal")?;
    assert_eq!(m["platform"], "metal");
    assert_eq!(m["architecture"], "amd64");
    assert_eq!(
        m["installer_image"],
        format!("{host}/metal-installer/{id}:v1.13.9")
    );
    assert_eq!(m["iso_url"], format!("{base}/metal-amd64.iso"));
    assert_eq!(m["disk_image_url"], format!("{base}/metal-amd64.raw.zst"));
    assert_eq!(
        m["pxe_url"],
        format!("http://pxe.{host}/pxe/{id}/v1.13.9/metal-amd64")
    );
    assert_eq!(m["kernel_url"], format!("{base}/kernel-amd64"));
    assert_eq!(m["initramfs_url"], format!("{base}/initramfs-amd64.xz"));

    let sb = data(&state, "data.omni_image_factory_urls.metal_sb")?;
    assert_eq!(sb["iso_url"], format!("{base}/metal-arm64-secureboot.iso"));
    assert_eq!(
        sb["installer_image"],
        format!("{host}/metal-installer-secureboot/{id}:v1.13.9")
    );

    let aws = data(&state, "data.omni_image_factory_urls.aws")?;
    assert_eq!(aws["disk_image_url"], format!("{base}/aws-amd64.raw.xz"));
    assert!(aws["iso_url"].is_null() && aws["pxe_url"].is_null() && aws["kernel_url"].is_null());

    let rpi = data(&state, "data.omni_image_factory_urls.rpi")?;
    assert_eq!(
        rpi["installer_image"],
        format!("{host}/metal-installer/{id}:v1.13.9")
    );
    assert_eq!(rpi["disk_image_url"], format!("{base}/metal-arm64.raw.xz"));
    assert_eq!(rpi["architecture"], "arm64");
    assert!(rpi["iso_url"].is_null());
    Ok(())
}

#[test]
fn data_source_errors_name_the_attribute_or_the_url() -> Result<()> {
    let omni = Omni::start(0)?;
    let f = omni.endpoint.clone();
    let id = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";
    let cases: Vec<(String, &str)> = vec![
        (
            "data \"omni_image_factory_extensions\" \"x\" {\n  talos_version = \"v1.13\"\n}".into(),
            "not a full Talos version",
        ),
        (
            "data \"omni_image_factory_extensions\" \"x\" {\n  talos_version = \"v1.99.0\"\n}".into(),
            "version v1.99.0 is not available",
        ),
        (
            "data \"omni_image_factory_overlays\" \"x\" {\n  talos_version = \"v1.13.9\"\n  name_regex = \"(\"\n}".into(),
            "Invalid name_regex",
        ),
        (
            format!("data \"omni_image_factory_urls\" \"x\" {{\n  talos_version = \"v1.13.9\"\n  schematic_id = \"{id}\"\n  platform = \"aws\"\n  secureboot = true\n}}"),
            "No SecureBoot images",
        ),
        (
            "data \"omni_image_factory_urls\" \"x\" {\n  talos_version = \"v1.13.9\"\n  schematic_id = \"nope\"\n}".into(),
            "Invalid schematic ID",
        ),
    ];
    let ws = Workspace::new(&omni)?;
    for (body, pattern) in &cases {
        ws.write_config(&format!("{}\n{body}\n", provider(&f)))?;
        let diags = ws.plan_expect_error()?;
        assert!(has_diagnostic(&diags, pattern, None), "{body}: {diags:#?}");
    }

    // Factory down: the error says so and names the URL.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        format!("http://127.0.0.1:{}", l.local_addr()?.port())
    };
    ws.write_config(&format!(
        "{}\ndata \"omni_image_factory_versions\" \"x\" {{}}\n",
        provider(&dead)
    ))?;
    let diags = ws.plan_expect_error()?;
    assert!(
        has_diagnostic(
            &diags,
            &format!(
                "Image Factory unreachable.*{}/versions",
                regex::escape(&dead)
            ),
            None
        ),
        "{diags:#?}"
    );
    Ok(())
}
