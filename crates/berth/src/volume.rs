//! `berth volume create|ls|inspect|rm|prune`, with docker's flags and output.

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::cmds::connect;
use crate::humanize::table;

#[derive(Subcommand, Debug)]
pub enum VolumeCmd {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long = "driver", default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long = "label")]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    pub name: Option<String>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a Go template
    #[arg(long = "format")]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a Go template
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

fn kv_map(items: &[String]) -> serde_json::Map<String, Value> {
    items
        .iter()
        .map(|i| match i.split_once('=') {
            Some((k, v)) => (k.to_string(), json!(v)),
            None => (i.clone(), json!("")),
        })
        .collect()
}

fn filters_json(items: &[String]) -> String {
    let mut m: serde_json::Map<String, Value> = serde_json::Map::new();
    for f in items {
        let (k, v) = f.split_once('=').unwrap_or((f.as_str(), ""));
        let e = m.entry(k.to_string()).or_insert_with(|| json!({}));
        e[v] = json!(true);
    }
    Value::Object(m).to_string()
}

/// Percent-encoding of everything but RFC 3986's unreserved characters.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn dispatch(host: Option<&str>, cmd: VolumeCmd) -> Result<i32> {
    let client = connect(host).await?;
    match cmd {
        VolumeCmd::Create(a) => {
            let body = json!({
                "Name": a.name.unwrap_or_default(),
                "Driver": a.driver,
                "Labels": kv_map(&a.label),
                "DriverOpts": kv_map(&a.opt),
            });
            let v: Value = client.post_json("/volumes/create", &body).await?;
            println!("{}", v["Name"].as_str().unwrap_or(""));
            Ok(0)
        }
        VolumeCmd::Ls(a) => {
            let q = if a.filter.is_empty() {
                String::new()
            } else {
                format!("?filters={}", enc(&filters_json(&a.filter)))
            };
            let v: Value = client.get_json(&format!("/volumes{q}")).await?;
            let vols = v["Volumes"].as_array().cloned().unwrap_or_default();
            if a.quiet {
                for x in &vols {
                    println!("{}", x["Name"].as_str().unwrap_or(""));
                }
            } else if let Some(f) = &a.format {
                let fmt = f.strip_prefix("table ").unwrap_or(f);
                for x in &vols {
                    let row = json!({"Name": x["Name"], "Driver": x["Driver"], "Mountpoint": x["Mountpoint"],
                                     "Scope": x["Scope"], "Labels": x["Labels"]});
                    println!("{}", crate::template::render(fmt, &row)?);
                }
            } else {
                let mut rows = vec![vec!["DRIVER".to_string(), "VOLUME NAME".to_string()]];
                for x in &vols {
                    rows.push(vec![
                        x["Driver"].as_str().unwrap_or("").into(),
                        x["Name"].as_str().unwrap_or("").into(),
                    ]);
                }
                print!("{}", table(&rows));
            }
            Ok(0)
        }
        VolumeCmd::Inspect(a) => {
            let mut out = Vec::new();
            let mut code = 0;
            for n in &a.names {
                let path = format!("/volumes/{}", enc(n));
                let r = client
                    .request(
                        berth_client::Method::GET,
                        &path,
                        None,
                        berth_client::ReqBody::empty(),
                    )
                    .await;
                match r {
                    Ok(resp) => out.push(berth_client::read_body(resp, &path).await?.to_vec()),
                    Err(e) => {
                        eprintln!(
                            "Error response from daemon: {}",
                            e.to_string()
                                .trim_start_matches("Error response from daemon: ")
                        );
                        code = 1;
                    }
                }
            }
            crate::cmds::print_inspect(&out, a.format.as_deref())?;
            Ok(code)
        }
        VolumeCmd::Rm(a) => {
            let mut code = 0;
            for n in &a.names {
                let q = if a.force { "?force=1" } else { "" };
                match client.delete(&format!("/volumes/{}{q}", enc(n))).await {
                    Ok(_) => println!("{n}"),
                    Err(e) => {
                        eprintln!("{e}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        VolumeCmd::Prune(a) => {
            let mut f = a.filter.clone();
            if a.all {
                f.push("all=true".into());
            }
            let q = if f.is_empty() {
                String::new()
            } else {
                format!("?filters={}", enc(&filters_json(&f)))
            };
            let v: Value = client
                .post_json(&format!("/volumes/prune{q}"), &json!({}))
                .await?;
            let deleted = v["VolumesDeleted"].as_array().cloned().unwrap_or_default();
            if !deleted.is_empty() {
                println!("Deleted Volumes:");
                for d in &deleted {
                    println!("{}", d.as_str().unwrap_or(""));
                }
                println!();
            }
            let bytes = v["SpaceReclaimed"].as_u64().unwrap_or(0);
            println!(
                "Total reclaimed space: {}",
                crate::humanize::human_size_prec4(bytes as i64)
            );
            Ok(0)
        }
    }
}
