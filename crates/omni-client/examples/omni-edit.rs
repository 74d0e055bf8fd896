//! A tiny out-of-band editor for Omni resources, for demos and drift tests: it changes Omni the
//! way a person with `omnictl` would, so `terraform plan` has something to find.
//!
//! ```text
//! OMNI_ENDPOINT=... OMNI_SERVICE_ACCOUNT_KEY=... omni-edit label  <kind> <id> <key>=<value>
//! OMNI_ENDPOINT=... OMNI_SERVICE_ACCOUNT_KEY=... omni-edit delete <kind> <id>
//! OMNI_ENDPOINT=... OMNI_SERVICE_ACCOUNT_KEY=... omni-edit get    <kind> <id>
//! ```
//! `<kind>` is one of `cluster`, `machineset`, `configpatch`, `machineclass`.

use omni_client::resources::{Cluster, ConfigPatch, MachineClass, MachineSet};
use omni_client::{Api, Client, ResourceKind};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

async fn run<K: ResourceKind>(client: Client, verb: &str, id: &str, arg: Option<&str>) -> Res<()> {
    let api: Api<K> = Api::new(client);
    match verb {
        "get" => {
            let obj = api.get(id).await?;
            println!("{:#?}", obj.metadata);
            println!("{:#?}", obj.spec);
        }
        "label" => {
            let (k, v) = arg
                .and_then(|a| a.split_once('='))
                .ok_or("label needs <key>=<value>")?;
            api.update(id, |o| {
                o.metadata.labels.insert(k.to_string(), v.to_string());
            })
            .await?;
            println!("labelled {} {id} with {k}={v}", K::TYPE);
        }
        "delete" => {
            api.teardown_and_destroy(id).await?;
            println!("deleted {} {id}", K::TYPE);
        }
        other => return Err(format!("unknown verb {other:?} (get, label, delete)").into()),
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        return Err("usage: omni-edit <get|label|delete> <kind> <id> [key=value]".into());
    }
    let endpoint = std::env::var("OMNI_ENDPOINT").map_err(|_| "set OMNI_ENDPOINT")?;
    let client = Client::builder(endpoint)
        .service_account_from_env()?
        .build()?;
    let (verb, kind, id, arg) = (
        &args[0],
        &args[1],
        &args[2],
        args.get(3).map(String::as_str),
    );
    match kind.as_str() {
        "cluster" => run::<Cluster>(client, verb, id, arg).await,
        "machineset" => run::<MachineSet>(client, verb, id, arg).await,
        "configpatch" => run::<ConfigPatch>(client, verb, id, arg).await,
        "machineclass" => run::<MachineClass>(client, verb, id, arg).await,
        other => Err(format!("unknown kind {other:?}").into()),
    }
}
