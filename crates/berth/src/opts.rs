//! Parsers for docker's option value syntaxes: sizes (`64m`), durations (`1m30s`),
//! `--ulimit`, `--restart`, `--mount`, `--device`, filters.

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Map, Value};

/// docker's RAMInBytes: `1024`, `64m`, `1.5g`, `512kb` (binary multiples).
pub fn ram_in_bytes(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (n, unit) = t.split_at(num_end);
    let n: f64 = n.parse().map_err(|_| anyhow!("invalid size: '{s}'"))?;
    let mult: f64 = match unit.trim_end_matches(['b', 'i']) {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => bail!("invalid size: '{s}'"),
    };
    Ok((n * mult) as i64)
}

/// `--memory-swap`: `-1` or a size.
pub fn swap_bytes(s: &str) -> Result<i64> {
    if s.trim() == "-1" {
        Ok(-1)
    } else {
        ram_in_bytes(s)
    }
}

/// A Go duration (`1m30s`, `500ms`) in nanoseconds.
pub fn duration_ns(s: &str) -> Result<i64> {
    if s == "0" {
        return Ok(0);
    }
    berth_api_types::humanize::go_duration(s)
        .map(|secs| (secs * 1e9).round() as i64)
        .ok_or_else(|| anyhow!("time: invalid duration \"{s}\""))
}

/// `nofile=1024:2048` or `nproc=512`.
pub fn ulimit(s: &str) -> Result<Value> {
    let (name, v) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("invalid ulimit argument: {s}"))?;
    let (soft, hard) = match v.split_once(':') {
        Some((a, b)) => (a, b),
        None => (v, v),
    };
    let p = |x: &str| -> Result<i64> {
        x.parse()
            .map_err(|_| anyhow!("invalid ulimit argument: {s}"))
    };
    Ok(json!({"Name": name, "Hard": p(hard)?, "Soft": p(soft)?}))
}

/// `no`, `always`, `unless-stopped`, `on-failure[:N]`.
pub fn restart_policy(s: &str) -> Result<Value> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (
            n,
            c.parse::<i64>().map_err(|_| {
                anyhow!("invalid restart policy format: maximum retry count must be an integer")
            })?,
        ),
        None => (s, 0),
    };
    match name {
        "" | "no" | "always" | "unless-stopped" | "on-failure" => {}
        _ => bail!("invalid restart policy format: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"),
    }
    if count != 0 && name != "on-failure" {
        bail!(
            "invalid restart policy format: maximum retry count can only be used with 'on-failure'"
        );
    }
    Ok(json!({"Name": if name.is_empty() { "no" } else { name }, "MaximumRetryCount": count}))
}

/// `--mount type=volume,source=v,target=/p[,readonly][,volume-opt=..]`.
pub fn mount(s: &str) -> Result<Value> {
    let mut m = Map::new();
    let mut typ = "volume".to_string();
    let mut bind = Map::new();
    let mut vol = Map::new();
    let mut tmpfs = Map::new();
    for part in s.split(',') {
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().to_string()),
            None => (part.trim().to_ascii_lowercase(), String::new()),
        };
        let truthy = || v.is_empty() || matches!(v.as_str(), "1" | "true");
        match k.as_str() {
            "type" => typ = v,
            "source" | "src" => {
                m.insert("Source".into(), json!(v));
            }
            "target" | "destination" | "dst" => {
                m.insert("Target".into(), json!(v));
            }
            "readonly" | "ro" => {
                m.insert("ReadOnly".into(), json!(truthy()));
            }
            "consistency" => {
                m.insert("Consistency".into(), json!(v));
            }
            "bind-propagation" => {
                bind.insert("Propagation".into(), json!(v));
            }
            "bind-recursive" => {}
            "volume-nocopy" => {
                vol.insert("NoCopy".into(), json!(truthy()));
            }
            "volume-driver" => {
                vol.entry("DriverConfig")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .map(|o| o.insert("Name".into(), json!(v)));
            }
            "volume-opt" => {
                let (ok, ov) = v.split_once('=').unwrap_or((v.as_str(), ""));
                let dc = vol.entry("DriverConfig").or_insert_with(|| json!({}));
                dc["Options"][ok] = json!(ov);
            }
            "volume-label" => {
                let (lk, lv) = v.split_once('=').unwrap_or((v.as_str(), ""));
                let l = vol.entry("Labels").or_insert_with(|| json!({}));
                l[lk] = json!(lv);
            }
            "tmpfs-size" => {
                tmpfs.insert("SizeBytes".into(), json!(ram_in_bytes(&v)?));
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(&v, 8)
                    .map_err(|_| anyhow!("invalid value for tmpfs-mode: {v}"))?;
                tmpfs.insert("Mode".into(), json!(mode));
            }
            "" => {}
            other => bail!("invalid field '{other}' must be a key=value pair"),
        }
    }
    m.insert("Type".into(), json!(typ));
    if !m.contains_key("Target") {
        bail!("invalid argument \"{s}\" for \"--mount\" flag: target is required");
    }
    if !bind.is_empty() {
        m.insert("BindOptions".into(), Value::Object(bind));
    }
    if !vol.is_empty() {
        m.insert("VolumeOptions".into(), Value::Object(vol));
    }
    if !tmpfs.is_empty() {
        m.insert("TmpfsOptions".into(), Value::Object(tmpfs));
    }
    Ok(Value::Object(m))
}

/// `--device /dev/x[:/dev/y][:rwm]`.
pub fn device(s: &str) -> Result<Value> {
    let parts: Vec<&str> = s.split(':').collect();
    let (host, cont, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, c] if c.chars().all(|x| "rwm".contains(x)) && !c.is_empty() => (*h, *h, *c),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => (*h, *c, *p),
        _ => bail!("invalid device specification: {s}"),
    };
    Ok(json!({"PathOnHost": host, "PathInContainer": cont, "CgroupPermissions": perms}))
}

/// `key=value` list -> JSON map (`key` alone maps to "").
pub fn kv_map(items: &[String]) -> Map<String, Value> {
    items
        .iter()
        .map(|i| match i.split_once('=') {
            Some((k, v)) => (k.to_string(), json!(v)),
            None => (i.clone(), json!("")),
        })
        .collect()
}

/// `--filter k=v` list -> docker's map form `{"k":{"v":true}}` (None when empty).
pub fn filters(items: &[String]) -> Result<Option<Value>> {
    if items.is_empty() {
        return Ok(None);
    }
    let mut m = Map::new();
    for f in items {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow!("bad format of filter (expected name=value)"))?;
        let e = m
            .entry(k.trim().to_ascii_lowercase())
            .or_insert_with(|| json!({}));
        e[v] = json!(true);
    }
    Ok(Some(Value::Object(m)))
}

/// Ask `question [y/N]` on stderr; `true` only for y/yes. Non-terminal stdin reads a line too.
pub fn confirm(question: &str) -> bool {
    use std::io::Write;
    eprint!("{question}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_durations_and_lists() {
        assert_eq!(ram_in_bytes("64m").unwrap(), 67108864);
        assert_eq!(ram_in_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("1024").unwrap(), 1024);
        assert_eq!(ram_in_bytes("512kb").unwrap(), 512 * 1024);
        assert!(ram_in_bytes("lots").is_err());
        assert_eq!(duration_ns("5s").unwrap(), 5_000_000_000);
        assert_eq!(duration_ns("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(
            ulimit("nofile=1024:2048").unwrap(),
            json!({"Name":"nofile","Hard":2048,"Soft":1024})
        );
        assert_eq!(
            restart_policy("on-failure:3").unwrap(),
            json!({"Name":"on-failure","MaximumRetryCount":3})
        );
        assert!(restart_policy("sometimes").is_err());
        assert_eq!(
            mount("type=volume,source=v,target=/m,readonly").unwrap(),
            json!({"Type":"volume","Source":"v","Target":"/m","ReadOnly":true})
        );
        assert!(mount("type=bind,source=/x").is_err());
        assert_eq!(
            device("/dev/fuse").unwrap(),
            json!({"PathOnHost":"/dev/fuse","PathInContainer":"/dev/fuse","CgroupPermissions":"rwm"})
        );
        assert_eq!(
            filters(&["label=a=b".into(), "dangling=true".into()])
                .unwrap()
                .unwrap(),
            json!({"label":{"a=b":true},"dangling":{"true":true}})
        );
    }
}
