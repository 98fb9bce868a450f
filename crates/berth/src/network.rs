//! `berth network create|ls|inspect|rm|prune|connect|disconnect`, with docker's flags and
//! output.

use crate::cmds::connect;
use crate::format::{headers, ListFormat};
use crate::humanize::short_id;
use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

#[derive(Subcommand, Debug)]
pub enum NetworkCmd {
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Create a network
    Create(CreateArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm(RmArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Enable manual container attachment
    #[arg(long = "attachable")]
    pub attachable: bool,
    /// Auxiliary IPv4 or IPv6 addresses used by Network driver
    #[arg(long = "aux-address")]
    pub aux_address: Vec<String>,
    /// Driver to manage the Network
    #[arg(short = 'd', long = "driver", default_value = "bridge")]
    pub driver: String,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long = "gateway")]
    pub gateway: Vec<String>,
    /// Restrict external access to the network
    #[arg(long = "internal")]
    pub internal: bool,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range")]
    pub ip_range: Vec<String>,
    /// IP Address Management Driver
    #[arg(long = "ipam-driver", default_value = "default")]
    pub ipam_driver: String,
    /// Set IPAM driver specific options
    #[arg(long = "ipam-opt")]
    pub ipam_opt: Vec<String>,
    /// Enable or disable IPv6 networking
    #[arg(long = "ipv6")]
    pub ipv6: bool,
    /// Set metadata on a network
    #[arg(long = "label")]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    /// Control the network's scope
    #[arg(long = "scope")]
    pub scope: Option<String>,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long = "subnet")]
    pub subnet: Vec<String>,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display network IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
    /// Verbose output for diagnostics
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long = "alias")]
    pub alias: Vec<String>,
    /// driver options for the network
    #[arg(long = "driver-opt")]
    pub driver_opt: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long = "ip")]
    pub ip: Option<String>,
    /// IPv6 address (e.g., "2001:db8::33")
    #[arg(long = "ip6")]
    pub ip6: Option<String>,
    /// Add link to another container
    #[arg(long = "link")]
    pub link: Vec<String>,
    pub network: String,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    pub network: String,
    pub container: String,
}

/// The `POST /networks/create` body the docker CLI sends.
pub fn create_body(a: &CreateArgs, api: &str) -> Value {
    let mut configs = Vec::new();
    for (i, sub) in a.subnet.iter().enumerate() {
        let mut c = Map::new();
        c.insert("Subnet".into(), json!(sub));
        if let Some(r) = a.ip_range.get(i) {
            c.insert("IPRange".into(), json!(r));
        }
        if let Some(g) = a.gateway.get(i) {
            c.insert("Gateway".into(), json!(g));
        }
        configs.push(Value::Object(c));
    }
    let mut body = json!({
        "Driver": a.driver,
        "Scope": a.scope.clone().unwrap_or_default(),
        "EnableIPv6": a.ipv6,
        "IPAM": {"Driver": a.ipam_driver, "Options": crate::opts::kv_map(&a.ipam_opt), "Config": configs},
        "Internal": a.internal,
        "Attachable": a.attachable,
        "Ingress": false,
        "ConfigOnly": false,
        "ConfigFrom": null,
        "Options": crate::opts::kv_map(&a.opt),
        "Labels": crate::opts::kv_map(&a.label),
        "Name": a.name,
    });
    if !a.ipv6 {
        if let Some(o) = body.as_object_mut() {
            o.remove("EnableIPv6");
        }
    }
    if berth_client::parse_api_version(api) < Some((1, 44)) {
        body["CheckDuplicate"] = json!(true);
    }
    body
}

fn network_row(n: &Value, trunc: bool) -> Value {
    let id = n["Id"].as_str().unwrap_or("");
    json!({
        "ID": if trunc { short_id(id) } else { id.to_string() },
        "Name": n["Name"], "Driver": n["Driver"], "Scope": n["Scope"],
        "IPv4": n["EnableIPv4"].as_bool().unwrap_or(false).to_string(),
        "IPv6": n["EnableIPv6"].as_bool().unwrap_or(false).to_string(),
        "Internal": n["Internal"].as_bool().unwrap_or(false).to_string(),
        "Labels": crate::format::labels_column(n.get("Labels")),
        "CreatedAt": n["Created"].as_str().map(crate::format::go_time_rfc3339).unwrap_or_default(),
    })
}

pub async fn dispatch(host: Option<&str>, cmd: NetworkCmd) -> Result<i32> {
    let client = connect(host).await?;
    match cmd {
        NetworkCmd::Create(a) => {
            let v = client
                .create_network(&create_body(&a, client.api_version()))
                .await?;
            if let Some(w) = v
                .get("Warning")
                .and_then(Value::as_str)
                .filter(|w| !w.is_empty())
            {
                eprintln!("{w}");
            }
            println!("{}", v["Id"].as_str().unwrap_or(""));
            Ok(0)
        }
        NetworkCmd::Ls(a) => {
            let mut list = client
                .list_networks(crate::opts::filters(&a.filter)?.as_ref())
                .await?;
            list.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
            if a.quiet {
                for n in &list {
                    let id = n["Id"].as_str().unwrap_or("");
                    println!(
                        "{}",
                        if a.no_trunc {
                            id.to_string()
                        } else {
                            short_id(id)
                        }
                    );
                }
                return Ok(0);
            }
            let rows: Vec<Value> = list.iter().map(|n| network_row(n, !a.no_trunc)).collect();
            let f = ListFormat::parse(
                a.format.as_deref(),
                "{{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
            )?;
            f.print(
                &headers(&[
                    ("ID", "NETWORK ID"),
                    ("Name", "NAME"),
                    ("Driver", "DRIVER"),
                    ("Scope", "SCOPE"),
                    ("IPv4", "IPV4"),
                    ("IPv6", "IPV6"),
                    ("Internal", "INTERNAL"),
                    ("Labels", "LABELS"),
                    ("CreatedAt", "CREATED AT"),
                ]),
                &rows,
            )?;
            Ok(0)
        }
        NetworkCmd::Inspect(a) => {
            let mut found = Vec::new();
            let mut code = 0;
            for n in &a.names {
                let path = format!(
                    "/networks/{}{}",
                    berth_client::path_segment(n),
                    if a.verbose { "?verbose=true" } else { "" }
                );
                match crate::cmds::get_raw(&client, &path).await? {
                    Some(raw) => found.push(raw),
                    None => {
                        eprintln!("Error response from daemon: network {n} not found");
                        code = 1;
                    }
                }
            }
            crate::cmds::print_inspect(&found, a.format.as_deref())?;
            Ok(code)
        }
        NetworkCmd::Rm(a) => {
            let mut code = 0;
            for n in &a.names {
                match client.remove_network(n).await {
                    Ok(()) => println!("{n}"),
                    Err(e) if a.force && e.is_not_found() => {}
                    Err(e) => {
                        eprintln!("{e}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        NetworkCmd::Prune(a) => {
            if !a.force && !crate::opts::confirm("WARNING! This will remove all custom networks not used by at least one container.") {
                return Ok(0);
            }
            let v = client
                .prune("networks", crate::opts::filters(&a.filter)?.as_ref())
                .await?;
            print_networks_deleted(&v);
            Ok(0)
        }
        NetworkCmd::Connect(a) => {
            let mut ipam = Map::new();
            if let Some(ip) = &a.ip {
                ipam.insert("IPv4Address".into(), json!(ip));
            }
            if let Some(ip) = &a.ip6 {
                ipam.insert("IPv6Address".into(), json!(ip));
            }
            let body = json!({
                "Container": a.container,
                "EndpointConfig": {
                    "IPAMConfig": ipam,
                    "Links": if a.link.is_empty() { Value::Null } else { json!(a.link) },
                    "Aliases": if a.alias.is_empty() { Value::Null } else { json!(a.alias) },
                    "DriverOpts": if a.driver_opt.is_empty() { Value::Null } else { Value::Object(crate::opts::kv_map(&a.driver_opt)) },
                    "MacAddress": "", "NetworkID": "", "EndpointID": "", "Gateway": "",
                    "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
                    "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": null,
                },
            });
            client.network_op(&a.network, "connect", &body).await?;
            Ok(0)
        }
        NetworkCmd::Disconnect(a) => {
            client
                .network_op(
                    &a.network,
                    "disconnect",
                    &json!({"Container": a.container, "Force": a.force}),
                )
                .await?;
            Ok(0)
        }
    }
}

pub fn print_networks_deleted(v: &Value) {
    let list = v["NetworksDeleted"].as_array().cloned().unwrap_or_default();
    if !list.is_empty() {
        println!("Deleted Networks:");
        for n in &list {
            println!("{}", n.as_str().unwrap_or(""));
        }
        println!();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: CreateArgs,
    }

    #[test]
    fn create_body_matches_the_docker_cli() {
        let t = T::try_parse_from([
            "x",
            "--label",
            "k=v",
            "--subnet",
            "10.231.0.0/24",
            "--gateway",
            "10.231.0.1",
            "--internal",
            "n1",
        ])
        .unwrap();
        let b = create_body(&t.a, "1.41");
        assert_eq!(b["Driver"], "bridge");
        assert_eq!(
            b["IPAM"]["Config"],
            json!([{"Subnet": "10.231.0.0/24", "Gateway": "10.231.0.1"}])
        );
        assert_eq!(b["Labels"], json!({"k": "v"}));
        assert_eq!(b["Internal"], true);
        assert_eq!(b["CheckDuplicate"], true);
        assert!(create_body(&t.a, "1.47").get("CheckDuplicate").is_none());
    }
}
