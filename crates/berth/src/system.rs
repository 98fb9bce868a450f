//! `berth system df|prune|events` (and top-level `events`).

use crate::cmds::connect;
use crate::format::{headers, ListFormat};
use crate::humanize::{ago, human_size, short_id};
use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

#[derive(Subcommand, Debug)]
pub enum SystemCmd {
    /// Show docker disk usage
    Df(DfArgs),
    /// Get real time events from the server
    Events(EventsArgs),
    /// Display system-wide information
    Info(crate::FormatArg),
    /// Remove unused data
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct DfArgs {
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Prune anonymous volumes
    #[arg(long = "volumes")]
    pub volumes: bool,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long = "since")]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long = "until")]
    pub until: Option<String>,
}

fn pct(part: i64, total: i64) -> String {
    if total > 0 {
        format!("{} ({}%)", hs(part), part * 100 / total)
    } else {
        hs(part)
    }
}

/// docker's `units.HumanSize` (4 significant digits).
fn hs(n: i64) -> String {
    crate::humanize::human_size_prec4(n)
}

/// docker's four `system df` rows from a `/system/df` reply.
pub fn df_rows(v: &Value) -> Vec<Value> {
    let arr = |k: &str| v[k].as_array().cloned().unwrap_or_default();
    let i64f = |x: &Value, k: &str| x[k].as_i64().unwrap_or(0);
    let images = arr("Images");
    let layers = v["LayersSize"].as_i64().unwrap_or(0);
    let mut used = 0;
    let mut img_active = 0;
    for i in &images {
        if i64f(i, "Containers") > 0 {
            img_active += 1;
            let size = i.get("Size").and_then(Value::as_i64).unwrap_or(-1);
            let shared = i.get("SharedSize").and_then(Value::as_i64).unwrap_or(-1);
            if size != -1 && shared != -1 {
                used += size - shared;
            }
        }
    }
    let containers = arr("Containers");
    let mut c_size = 0;
    let mut c_reclaim = 0;
    let mut c_active = 0;
    for c in &containers {
        let st = c["State"].as_str().unwrap_or("");
        let active = st.contains("running") || st.contains("paused") || st.contains("restarting");
        let rw = i64f(c, "SizeRw");
        c_size += rw;
        if active {
            c_active += 1;
        } else {
            c_reclaim += rw;
        }
    }
    let volumes = arr("Volumes");
    let (mut v_size, mut v_reclaim, mut v_active) = (0, 0, 0);
    for vol in &volumes {
        let size = vol
            .pointer("/UsageData/Size")
            .and_then(Value::as_i64)
            .unwrap_or(-1);
        let refs = vol
            .pointer("/UsageData/RefCount")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if size > 0 {
            v_size += size;
        }
        if refs > 0 {
            v_active += 1;
        } else if size > 0 {
            v_reclaim += size;
        }
    }
    let cache = arr("BuildCache");
    let (mut b_size, mut b_reclaim, mut b_active) = (0, 0, 0);
    for b in &cache {
        let size = i64f(b, "Size");
        let in_use = b["InUse"].as_bool().unwrap_or(false);
        let shared = b["Shared"].as_bool().unwrap_or(false);
        if !shared {
            b_size += size;
        }
        if in_use {
            b_active += 1;
        } else if !shared {
            b_reclaim += size;
        }
    }
    vec![
        json!({"Type": "Images", "TotalCount": images.len().to_string(), "Active": img_active.to_string(),
               "Size": hs(layers), "Reclaimable": pct(layers - used, layers)}),
        json!({"Type": "Containers", "TotalCount": containers.len().to_string(), "Active": c_active.to_string(),
               "Size": hs(c_size), "Reclaimable": pct(c_reclaim, c_size)}),
        json!({"Type": "Local Volumes", "TotalCount": volumes.len().to_string(), "Active": v_active.to_string(),
               "Size": hs(v_size), "Reclaimable": pct(v_reclaim, v_size)}),
        json!({"Type": "Build Cache", "TotalCount": cache.len().to_string(), "Active": b_active.to_string(),
               "Size": hs(b_size), "Reclaimable": hs(b_reclaim)}),
    ]
}

pub async fn df(host: Option<&str>, a: DfArgs) -> Result<i32> {
    let client = connect(host).await?;
    let v = client.system_df().await?;
    if a.verbose && a.format.is_none() {
        return df_verbose(&v);
    }
    let f = ListFormat::parse(
        a.format.as_deref(),
        "{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
    )?;
    f.print(
        &headers(&[
            ("Type", "TYPE"),
            ("TotalCount", "TOTAL"),
            ("Active", "ACTIVE"),
            ("Size", "SIZE"),
            ("Reclaimable", "RECLAIMABLE"),
        ]),
        &df_rows(&v),
    )?;
    Ok(0)
}

fn df_verbose(v: &Value) -> Result<i32> {
    use crate::humanize::table;
    let mut out = String::from("Images space usage:\n\n");
    let mut rows = vec![[
        "REPOSITORY",
        "TAG",
        "IMAGE ID",
        "CREATED",
        "SIZE",
        "SHARED SIZE",
        "UNIQUE SIZE",
        "CONTAINERS",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect::<Vec<_>>()];
    for i in v["Images"].as_array().into_iter().flatten() {
        let size = i["Size"].as_i64().unwrap_or(0);
        let shared = i["SharedSize"].as_i64().unwrap_or(0);
        let tags: Vec<String> = i["RepoTags"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let tags = if tags.is_empty() {
            vec!["<none>:<none>".to_string()]
        } else {
            tags
        };
        for t in tags {
            let (r, tag) = crate::cmds::split_repo_tag(&t);
            rows.push(vec![
                r,
                tag.unwrap_or_else(|| "<none>".into()),
                short_id(i["Id"].as_str().unwrap_or("")),
                ago(i["Created"].as_i64().unwrap_or(0)),
                human_size(size),
                human_size(shared.max(0)),
                human_size(size - shared.max(0)),
                i["Containers"].as_i64().unwrap_or(0).to_string(),
            ]);
        }
    }
    out.push_str(&table(&rows));
    out.push_str("\nContainers space usage:\n\n");
    let mut rows = vec![[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "LOCAL VOLUMES",
        "SIZE",
        "CREATED",
        "STATUS",
        "NAMES",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect::<Vec<_>>()];
    for c in v["Containers"].as_array().into_iter().flatten() {
        let names: Vec<&str> = c["Names"]
            .as_array()
            .map(|n| {
                n.iter()
                    .filter_map(Value::as_str)
                    .map(|n| n.trim_start_matches('/'))
                    .collect()
            })
            .unwrap_or_default();
        rows.push(vec![
            short_id(c["Id"].as_str().unwrap_or("")),
            c["Image"].as_str().unwrap_or("").to_string(),
            format!(
                "\"{}\"",
                crate::humanize::ellipsis(c["Command"].as_str().unwrap_or(""), 20)
            ),
            c["Mounts"]
                .as_array()
                .map_or(0, |m| m.iter().filter(|m| m["Type"] == "volume").count())
                .to_string(),
            human_size(c["SizeRw"].as_i64().unwrap_or(0)),
            ago(c["Created"].as_i64().unwrap_or(0)),
            c["Status"].as_str().unwrap_or("").to_string(),
            names.join(","),
        ]);
    }
    out.push_str(&table(&rows));
    out.push_str("\nLocal Volumes space usage:\n\n");
    let mut rows = vec![vec![
        "VOLUME NAME".to_string(),
        "LINKS".into(),
        "SIZE".into(),
    ]];
    for vol in v["Volumes"].as_array().into_iter().flatten() {
        rows.push(vec![
            vol["Name"].as_str().unwrap_or("").to_string(),
            vol.pointer("/UsageData/RefCount")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                .to_string(),
            human_size(
                vol.pointer("/UsageData/Size")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
            ),
        ]);
    }
    out.push_str(&table(&rows));
    out.push_str("\nBuild cache usage: ");
    let total: i64 = v["BuildCache"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| b["Size"].as_i64().unwrap_or(0))
        .sum();
    out.push_str(&human_size(total));
    out.push_str("\n\n");
    let mut rows = vec![[
        "CACHE ID",
        "CACHE TYPE",
        "SIZE",
        "CREATED",
        "LAST USED",
        "USAGE",
        "SHARED",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect::<Vec<_>>()];
    for b in v["BuildCache"].as_array().into_iter().flatten() {
        rows.push(vec![
            b["ID"].as_str().unwrap_or("").chars().take(12).collect(),
            b["Type"].as_str().unwrap_or("").to_string(),
            human_size(b["Size"].as_i64().unwrap_or(0)),
            b["CreatedAt"].as_str().unwrap_or("").to_string(),
            b["LastUsedAt"].as_str().unwrap_or("").to_string(),
            b["UsageCount"].as_i64().unwrap_or(0).to_string(),
            b["Shared"].as_bool().unwrap_or(false).to_string(),
        ]);
    }
    out.push_str(&table(&rows));
    print!("{out}");
    Ok(0)
}

pub async fn prune(host: Option<&str>, a: PruneArgs) -> Result<i32> {
    if !a.force {
        let mut w = String::from("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n");
        if a.volumes {
            w.push_str("  - all anonymous volumes not used by at least one container\n");
        }
        if a.all {
            w.push_str("  - all images without at least one container associated to them\n  - all build cache\n");
        } else {
            w.push_str("  - all dangling images\n  - unused build cache\n");
        }
        if !crate::opts::confirm(&w) {
            return Ok(0);
        }
    }
    let client = connect(host).await?;
    let filters = crate::opts::filters(&a.filter)?;
    let mut total = 0i64;
    let v = client.prune("containers", filters.as_ref()).await?;
    let deleted = v["ContainersDeleted"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Containers:");
        for d in &deleted {
            println!("{}", d.as_str().unwrap_or(""));
        }
        println!();
    }
    total += v["SpaceReclaimed"].as_i64().unwrap_or(0);
    let v = client.prune("networks", filters.as_ref()).await?;
    crate::network::print_networks_deleted(&v);
    if a.volumes {
        let v = client.prune("volumes", filters.as_ref()).await?;
        let deleted = v["VolumesDeleted"].as_array().cloned().unwrap_or_default();
        if !deleted.is_empty() {
            println!("Deleted Volumes:");
            for d in &deleted {
                println!("{}", d.as_str().unwrap_or(""));
            }
            println!();
        }
        total += v["SpaceReclaimed"].as_i64().unwrap_or(0);
    }
    let mut imgf = a.filter.clone();
    imgf.push(format!("dangling={}", !a.all));
    let v = client
        .prune("images", crate::opts::filters(&imgf)?.as_ref())
        .await?;
    crate::image::print_images_deleted(&v);
    total += v["SpaceReclaimed"].as_i64().unwrap_or(0);
    let mut bf = a.filter.clone();
    if a.all {
        bf.push("all=true".into());
    }
    if let Ok(v) = client
        .prune("build", crate::opts::filters(&bf)?.as_ref())
        .await
    {
        let deleted = v["CachesDeleted"].as_array().cloned().unwrap_or_default();
        if !deleted.is_empty() {
            println!("Deleted build cache objects:");
            for d in &deleted {
                println!("{}", d.as_str().unwrap_or(""));
            }
            println!();
        }
        total += v["SpaceReclaimed"].as_i64().unwrap_or(0);
    }
    println!(
        "Total reclaimed space: {}",
        crate::humanize::human_size_prec4(total)
    );
    Ok(0)
}

/// One event in docker's default line format.
pub fn event_line(e: &Value) -> String {
    use chrono::TimeZone;
    let nanos = e["timeNano"]
        .as_i64()
        .unwrap_or_else(|| e["time"].as_i64().unwrap_or(0) * 1_000_000_000);
    let t = chrono::Local
        .timestamp_nanos(nanos)
        .format("%Y-%m-%dT%H:%M:%S%.9f%:z")
        .to_string()
        .replace("+00:00", "Z");
    let typ = e["Type"].as_str().unwrap_or("");
    let action = e["Action"].as_str().unwrap_or("");
    let id = e.pointer("/Actor/ID").and_then(Value::as_str).unwrap_or("");
    let mut line = format!("{t} {typ} {action} {id}");
    if let Some(attrs) = e.pointer("/Actor/Attributes").and_then(Value::as_object) {
        if !attrs.is_empty() {
            let mut keys: Vec<&String> = attrs.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}={}", attrs[*k].as_str().unwrap_or("")))
                .collect();
            line.push_str(&format!(" ({})", parts.join(", ")));
        }
    }
    line
}

pub async fn events(host: Option<&str>, a: EventsArgs) -> Result<i32> {
    let client = connect(host).await?;
    let since = a
        .since
        .as_deref()
        .map(crate::cmds::parse_timestamp)
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(crate::cmds::parse_timestamp)
        .transpose()?;
    let mut lines = client
        .events(
            since.as_deref(),
            until.as_deref(),
            crate::opts::filters(&a.filter)?.as_ref(),
        )
        .await?;
    let tpl = match a.format.as_deref() {
        None | Some("") => None,
        Some("json") => Some(crate::template::Template::parse("{{json .}}")?),
        Some(f) => Some(crate::template::Template::parse(f)?),
    };
    use std::io::Write;
    while let Some(e) = lines.next().await? {
        let line = match &tpl {
            Some(t) => t.execute(&e)?,
            None => event_line(&e),
        };
        let mut o = std::io::stdout().lock();
        writeln!(o, "{line}")?;
        o.flush()?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_rows_follow_docker_arithmetic() {
        let v = json!({
            "LayersSize": 2000000,
            "Images": [{"Containers": 1, "Size": 1000000, "SharedSize": 0}, {"Containers": 0, "Size": 1000000, "SharedSize": 0}],
            "Containers": [{"State": "running", "SizeRw": 100}, {"State": "exited", "SizeRw": 300}],
            "Volumes": [{"UsageData": {"Size": 1000, "RefCount": 0}}],
            "BuildCache": []
        });
        let r = df_rows(&v);
        assert_eq!(r[0]["Reclaimable"], "1MB (50%)");
        assert_eq!(r[0]["Active"], "1");
        assert_eq!(r[1]["Size"], "400B");
        assert_eq!(r[1]["Reclaimable"], "300B (75%)");
        assert_eq!(r[2]["Reclaimable"], "1kB (100%)");
        assert_eq!(r[3]["Size"], "0B");
    }

    #[test]
    fn event_lines() {
        let e = json!({"Type": "container", "Action": "start", "Actor": {"ID": "abc", "Attributes": {"name": "x", "image": "bb"}},
                       "time": 0, "timeNano": 5});
        let l = event_line(&e);
        assert!(
            l.ends_with(" container start abc (image=bb, name=x)"),
            "{l}"
        );
    }
}
