//! Container logs: the drivers' options (validated like dockerd's), the arguments that tell the
//! shim how to write and rotate, and the reader behind `GET /containers/{id}/logs`.
//!
//! On disk (written by the shim, `berth_shim::jsonlog`): `<log>`, `<log>.1` (newest rotated) ..
//! `<log>.N`, each with a sparse index `<log>[.N].idx` of 16-byte records (byte offset, time in
//! Unix nanoseconds) every 64 KiB. `--tail` reads files backwards from their ends; `--since`
//! binary-searches the index; `--follow` waits on inotify (never polls) and follows rotation.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_api_types::LogConfig;
use berth_shim::jsonlog::{index_path, rotated_path, INDEX_RECORD};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::sync::{mpsc, watch};

use crate::error::{Error, Result};
use crate::record::Record;

#[derive(Debug, Deserialize)]
struct Line {
    log: String,
    stream: String,
    #[serde(default)]
    attrs: Option<BTreeMap<String, String>>,
    time: DateTime<Utc>,
}

/// One log entry ready to send: stream type (1 stdout, 2 stderr) and payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub stream: u8,
    pub time: DateTime<Utc>,
    pub data: String,
    /// `k=v,k2=v2` (sorted, query-escaped) from the entry's attributes, for `details`.
    pub attrs: String,
}

/// What `GET /containers/{id}/logs` asked for.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    pub timestamps: bool,
    /// `None` = all.
    pub tail: Option<usize>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Prefix each line with the entry's attributes (`docker logs --details`).
    pub details: bool,
}

impl LogOptions {
    fn wants_stream(&self, e: &Entry) -> bool {
        if e.stream == 2 {
            self.stderr
        } else {
            self.stdout
        }
    }

    pub fn wants(&self, e: &Entry) -> bool {
        self.wants_stream(e)
            && self.since.is_none_or(|s| e.time >= s)
            && self.until.is_none_or(|u| e.time <= u)
    }

    /// The bytes sent for one entry (with an RFC 3339 nano timestamp when asked).
    pub fn render(&self, e: &Entry) -> String {
        let mut out = String::new();
        if self.timestamps {
            out.push_str(&e.time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
            out.push(' ');
        }
        if self.details {
            out.push_str(&e.attrs);
            out.push(' ');
        }
        out.push_str(&e.data);
        out
    }
}

fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn parse_line(l: &[u8]) -> Option<Entry> {
    if let Some(e) = fast_parse(l) {
        return Some(e);
    }
    let l: Line = serde_json::from_slice(l).ok()?;
    let attrs = l
        .attrs
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect::<Vec<_>>()
        .join(",");
    Some(Entry {
        stream: if l.stream == "stderr" { 2 } else { 1 },
        time: l.time,
        data: l.log,
        attrs,
    })
}

/// Reads a JSON string body starting after its opening quote; returns it and the index after
/// the closing quote. `None` on anything unusual (the caller falls back to serde).
fn json_str(b: &[u8], mut i: usize) -> Option<(String, usize)> {
    let mut out: Vec<u8> = Vec::with_capacity(64);
    loop {
        let start = i;
        while i < b.len() && b[i] != b'"' && b[i] != b'\\' {
            i += 1;
        }
        out.extend_from_slice(b.get(start..i)?);
        match *b.get(i)? {
            b'"' => return Some((String::from_utf8(out).ok()?, i + 1)),
            _ => {
                let c = *b.get(i + 1)?;
                i += 2;
                match c {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'"' => out.push(b'"'),
                    b'\\' => out.push(b'\\'),
                    b'/' => out.push(b'/'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'u' => {
                        let hex = std::str::from_utf8(b.get(i..i + 4)?).ok()?;
                        let cp = u32::from_str_radix(hex, 16).ok()?;
                        i += 4;
                        // Surrogates (pairs) are left to serde.
                        let ch = char::from_u32(cp)?;
                        let mut tmp = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                    }
                    _ => return None,
                }
            }
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, the shape json-file writers use.
fn fast_time(t: &str) -> Option<DateTime<Utc>> {
    let b = t.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> { t.get(r)?.parse().ok() };
    let (y, mo, d, h, mi, s) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    let rest = &t[19..];
    let rest = rest.strip_suffix('Z')?;
    let nanos = if rest.is_empty() {
        0
    } else {
        let f = rest.strip_prefix('.')?;
        if f.is_empty() || f.len() > 9 || !f.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        f.parse::<u32>().ok()? * 10u32.pow(9 - f.len() as u32)
    };
    let date = chrono::NaiveDate::from_ymd_opt(y as i32, mo, d)?;
    Some(date.and_hms_nano_opt(h, mi, s, nanos)?.and_utc())
}

/// The common case without serde: `{"log":"..","stream":"..","time":".."}`.
fn fast_parse(l: &[u8]) -> Option<Entry> {
    let l = l.strip_suffix(b"\n").unwrap_or(l);
    let rest = l.strip_prefix(b"{\"log\":\"")?;
    let (data, i) = json_str(rest, 0)?;
    let rest = rest[i..].strip_prefix(b",\"stream\":\"")?;
    let (stream, i) = json_str(rest, 0)?;
    let rest = rest[i..].strip_prefix(b",\"time\":\"")?;
    let (time, i) = json_str(rest, 0)?;
    if &rest[i..] != b"}" {
        return None;
    }
    Some(Entry {
        stream: if stream == "stderr" { 2 } else { 1 },
        time: fast_time(&time)?,
        data,
        attrs: String::new(),
    })
}

/// Parses a log file's complete lines; a torn last line (being written) is left out.
pub fn parse(content: &str) -> Vec<Entry> {
    content
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .filter_map(|l| parse_line(l.as_bytes()))
        .collect()
}

/// Selects the entries to send, applying stream/since/until filters then `tail`.
pub fn select(entries: Vec<Entry>, opts: &LogOptions) -> Vec<Entry> {
    let mut v: Vec<Entry> = entries.into_iter().filter(|e| opts.wants(e)).collect();
    if let Some(n) = opts.tail {
        if v.len() > n {
            v.drain(..v.len() - n);
        }
    }
    v
}

/// Parses `since`/`until` as dockerd accepts them: Unix seconds with optional fraction.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if s.is_empty() || s == "0" {
        return None;
    }
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    let secs: i64 = secs.parse().ok()?;
    let mut frac = frac.to_string();
    frac.truncate(9);
    while frac.len() < 9 {
        frac.push('0');
    }
    DateTime::from_timestamp(secs, frac.parse().ok()?)
}

// ---------------------------------------------------------------------------------------------
// Drivers and their options.

/// Berth's default rotation when neither the container nor the daemon sets one: 3 × 10 MB.
pub const DEFAULT_MAX_SIZE: &str = "10m";
pub const DEFAULT_MAX_FILE: &str = "3";

const JSON_FILE_OPTS: &[&str] = &[
    "max-file",
    "max-size",
    "compress",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
    "tag",
];
const LOCAL_OPTS: &[&str] = &["max-file", "max-size", "compress"];

/// Checks a container's `LogConfig` at create, with dockerd's errors.
pub fn validate(cfg: &LogConfig) -> Result<()> {
    let allowed = match cfg.r#type.as_str() {
        "" | "json-file" => JSON_FILE_OPTS,
        "local" => LOCAL_OPTS,
        "none" => &[],
        other => {
            return Err(Error::invalid(format!(
                "error looking up logging plugin {other}: plugin \"{other}\" not found"
            )))
        }
    };
    for k in cfg.config.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(Error::invalid(match cfg.r#type.as_str() {
                "" | "json-file" => format!("unknown log opt '{k}' for json-file log driver"),
                d => format!("unknown log opt '{k}' for log driver {d}"),
            }));
        }
    }
    Ok(())
}

/// go-units `RAMInBytes`: `10m`, `1.5k`, `2GiB`, `100` (binary multipliers).
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(num_end);
    let n: f64 = num.parse().ok()?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mul: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return None,
    };
    Some((n * mul as f64) as u64)
}

/// Parses `berthd --log-opt k=v` flags (rotation options only), checking their values.
pub fn daemon_log_opts(flags: &[String]) -> std::result::Result<BTreeMap<String, String>, String> {
    let mut m = BTreeMap::new();
    for f in flags {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| format!("invalid --log-opt {f:?}: want KEY=VALUE"))?;
        match k {
            "max-size" if v == "-1" || parse_size(v).is_some() => {}
            "max-file" if v.parse::<u32>().is_ok_and(|n| n >= 1) => {}
            "max-size" | "max-file" => return Err(format!("invalid --log-opt {f:?}")),
            _ => {
                return Err(format!(
                    "unknown --log-opt {k:?} (berthd takes max-size and max-file)"
                ))
            }
        }
        m.insert(k.to_string(), v.to_string());
    }
    Ok(m)
}

/// How one container's log is written.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSetup {
    pub driver: String,
    /// The current log file (`None` for `none`).
    pub path: Option<PathBuf>,
    pub max_size: u64,
    pub max_file: u32,
    pub attrs: BTreeMap<String, String>,
}

/// The current log file of `driver` in container dir `cdir` (dockerd's names).
pub fn driver_log_path(driver: &str, cdir: &Path, id: &str) -> Option<PathBuf> {
    match driver {
        "none" => None,
        "local" => Some(cdir.join("local-logs").join("container.log")),
        _ => Some(cdir.join(format!("{id}-json.log"))),
    }
}

/// The current log file of a container record (`None` for the `none` driver).
pub fn log_path_of(rec: &Record, cdir: &Path) -> Option<PathBuf> {
    driver_log_path(&rec.host_config.log_config.r#type, cdir, &rec.id)
}

/// `LogPath` in inspect: the json-file log, or "" for the other drivers (as dockerd).
pub fn inspect_log_path(rec: &Record, cdir: &Path) -> String {
    match rec.host_config.log_config.r#type.as_str() {
        "" | "json-file" => cdir
            .join(format!("{}-json.log", rec.id))
            .display()
            .to_string(),
        _ => String::new(),
    }
}

/// Resolves the effective options: the container's, else the daemon's (`daemon`, from
/// `berthd --log-opt`), else Berth's default rotation. Sizes are checked here (at start), as
/// dockerd does.
pub fn setup(rec: &Record, cdir: &Path, daemon: &BTreeMap<String, String>) -> Result<LogSetup> {
    let lc = &rec.host_config.log_config;
    let driver = if lc.r#type.is_empty() {
        "json-file".to_string()
    } else {
        lc.r#type.clone()
    };
    let own = &lc.config;
    let get = |k: &str| -> Option<String> {
        if own.contains_key("max-size") || own.contains_key("max-file") {
            // The container chose its rotation: unset keys take dockerd's defaults.
            return own.get(k).cloned();
        }
        if daemon.contains_key("max-size") || daemon.contains_key("max-file") {
            return daemon.get(k).cloned();
        }
        Some(match k {
            "max-size" => DEFAULT_MAX_SIZE.to_string(),
            _ => DEFAULT_MAX_FILE.to_string(),
        })
    };
    let init = |m: String| Error::invalid(format!("failed to initialize logging driver: {m}"));
    let max_size = match get("max-size") {
        None => 0,
        Some(s) if s == "-1" => 0,
        Some(s) => parse_size(&s).ok_or_else(|| init(format!("invalid size: '{s}'")))?,
    };
    let max_file = match get("max-file") {
        None => 1,
        Some(s) => {
            let n: i64 = s
                .parse()
                .map_err(|_| init(format!("strconv.Atoi: parsing \"{s}\": invalid syntax")))?;
            if n < 1 {
                return Err(init("max-file cannot be less than 1".into()));
            }
            n as u32
        }
    };
    let max_file = if max_size == 0 { 1 } else { max_file };
    let mut attrs = BTreeMap::new();
    if driver == "json-file" {
        let labels = rec.config.labels.clone().unwrap_or_default();
        for k in own
            .get("labels")
            .map(|s| s.split(',').collect::<Vec<_>>())
            .unwrap_or_default()
        {
            if let Some(v) = labels.get(k) {
                attrs.insert(k.to_string(), v.clone());
            }
        }
        let env: BTreeMap<String, String> = rec
            .config
            .env
            .clone()
            .unwrap_or_default()
            .iter()
            .filter_map(|e| {
                e.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        for k in own
            .get("env")
            .map(|s| s.split(',').collect::<Vec<_>>())
            .unwrap_or_default()
        {
            if let Some(v) = env.get(k) {
                attrs.insert(k.to_string(), v.clone());
            }
        }
        // `labels-regex` / `env-regex`: every label / variable whose name matches.
        for (opt, map) in [("labels-regex", &labels), ("env-regex", &env)] {
            if let Some(pat) = own.get(opt) {
                let re = regex::Regex::new(pat)
                    .map_err(|e| init(format!("error parsing regexp: {e}")))?;
                for (k, v) in map.iter() {
                    if re.is_match(k) {
                        attrs.insert(k.clone(), v.clone());
                    }
                }
            }
        }
    }
    Ok(LogSetup {
        path: driver_log_path(&driver, cdir, &rec.id),
        driver,
        max_size,
        max_file,
        attrs,
    })
}

impl LogSetup {
    /// The shim's log arguments (after `--log-path`).
    pub fn shim_args(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = vec![
            "--log-driver".into(),
            self.driver.clone().into(),
            "--log-max-size".into(),
            self.max_size.to_string().into(),
            "--log-max-file".into(),
            self.max_file.to_string().into(),
        ];
        if !self.attrs.is_empty() {
            v.push("--log-attrs".into());
            v.push(
                serde_json::to_string(&self.attrs)
                    .unwrap_or_default()
                    .into(),
            );
        }
        v
    }
}

// ---------------------------------------------------------------------------------------------
// Reading.

/// The log files of a container, opened at once (so a removal right after cannot take the
/// data away), oldest first; the last one is the current file.
pub struct LogSource {
    files: Vec<(PathBuf, File)>,
    current: PathBuf,
}

impl LogSource {
    /// Opens `current` and its rotated predecessors. `None` when there is no log at all.
    pub fn open(current: &Path) -> io::Result<Option<LogSource>> {
        let mut files = Vec::new();
        let mut n = 1;
        loop {
            let p = rotated_path(current, n);
            match File::open(&p) {
                Ok(f) => files.push((p, f)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) => return Err(e),
            }
            n += 1;
            if n > 10_000 {
                break;
            }
        }
        files.reverse();
        match File::open(current) {
            Ok(f) => files.push((current.to_path_buf(), f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if files.is_empty() {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e),
        }
        Ok(Some(LogSource {
            files,
            current: current.to_path_buf(),
        }))
    }

    /// Reads what is there now (filters, `since` by index, `tail` backwards), calling `emit`
    /// for each selected entry in order until it returns false. Returns the current file and
    /// the offset reading stopped at, for following.
    pub fn read_initial(
        mut self,
        opts: &LogOptions,
        mut emit: impl FnMut(Entry) -> bool,
    ) -> io::Result<Option<(PathBuf, File, u64)>> {
        let ends: Vec<u64> = self
            .files
            .iter()
            .map(|(_, f)| f.metadata().map(|m| m.len()).unwrap_or(0))
            .collect();
        let follow_from = |files: &mut Vec<(PathBuf, File)>, ends: &[u64]| {
            let last = files.len().checked_sub(1)?;
            let (p, f) = files.remove(last);
            (p == self.current).then(|| (p, f, ends[last]))
        };
        if opts.tail == Some(0) {
            return Ok(follow_from(&mut self.files, &ends));
        }
        if let Some(n) = opts.tail {
            let mut got: Vec<Entry> = Vec::new();
            'files: for (i, (_, f)) in self.files.iter().enumerate().rev() {
                let mut stop = false;
                read_backwards(f, ends[i], |line| {
                    let Some(e) = parse_line(line) else {
                        return true;
                    };
                    if opts.since.is_some_and(|s| e.time < s) {
                        stop = true;
                        return false;
                    }
                    // As dockerd: the last `n` entries of the log, then the stream and time
                    // filters (so `--tail 1` of stderr is empty when the last line is stdout).
                    got.push(e);
                    got.len() < n
                })?;
                if stop || got.len() >= n {
                    break 'files;
                }
            }
            for e in got.into_iter().rev().filter(|e| opts.wants(e)) {
                if !emit(e) {
                    return Ok(None);
                }
            }
            return Ok(follow_from(&mut self.files, &ends));
        }
        // Forward: skip whole files and seek inside the first one by the time index.
        let (first, offset) = match opts.since {
            Some(s) => seek_since(&self.files, s),
            None => (0, 0),
        };
        for (i, (_, f)) in self.files.iter().enumerate().skip(first) {
            let start = if i == first { offset } else { 0 };
            let mut done = false;
            read_forward(f, start, ends[i], |line| {
                let Some(e) = parse_line(line) else {
                    return true;
                };
                if opts.until.is_some_and(|u| e.time > u) {
                    done = true;
                    return false;
                }
                if opts.wants(&e) && !emit(e) {
                    done = true;
                    return false;
                }
                true
            })?;
            if done {
                return Ok(None);
            }
        }
        Ok(follow_from(&mut self.files, &ends))
    }
}

/// Reads an index file: (offset, nanos) records.
fn read_index(log: &Path) -> Vec<(u64, i64)> {
    let Ok(data) = std::fs::read(index_path(log)) else {
        return Vec::new();
    };
    data.chunks_exact(INDEX_RECORD)
        .map(|r| {
            let mut o = [0u8; 8];
            let mut t = [0u8; 8];
            o.copy_from_slice(&r[..8]);
            t.copy_from_slice(&r[8..]);
            (u64::from_le_bytes(o), i64::from_le_bytes(t))
        })
        .collect()
}

/// Where entries at or after `since` can start: (file index, byte offset). Files whose index
/// says they start after `since` are read whole; a file without an index is never skipped.
fn seek_since(files: &[(PathBuf, File)], since: DateTime<Utc>) -> (usize, u64) {
    let s = since.timestamp_nanos_opt().unwrap_or(i64::MIN);
    // `since` is inclusive and entries can share a time (one read, one time), so start at the
    // last record strictly before it: everything skipped is older than `since`.
    for i in (0..files.len()).rev() {
        let idx = read_index(&files[i].0);
        match idx.first() {
            Some(&(0, t)) if t < s => {
                let k = idx.partition_point(|&(_, t)| t < s);
                return (i, idx[k - 1].0);
            }
            Some(&(0, _)) => continue, // the whole file is at or after `since`
            _ => return (0, 0),
        }
    }
    (0, 0)
}

const CHUNK: usize = 64 * 1024;

/// Calls `f` on each complete line of `file[start..end]`, in order, until it returns false.
fn read_forward(
    file: &File,
    start: u64,
    end: u64,
    mut f: impl FnMut(&[u8]) -> bool,
) -> io::Result<u64> {
    let mut pos = start;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK * 2);
    let mut chunk = vec![0u8; CHUNK * 4];
    while pos < end {
        let want = ((end - pos) as usize).min(chunk.len());
        let n = file.read_at(&mut chunk[..want], pos)?;
        if n == 0 {
            break;
        }
        pos += n as u64;
        buf.extend_from_slice(&chunk[..n]);
        let mut s = 0;
        while let Some(nl) = buf[s..].iter().position(|&b| b == b'\n') {
            if !f(&buf[s..s + nl + 1]) {
                return Ok(pos);
            }
            s += nl + 1;
        }
        buf.drain(..s);
    }
    // A torn last line stays unread: the caller resumes from before it.
    Ok(pos - buf.len() as u64)
}

/// Calls `f` on each complete line of `file[..end]`, newest first, until it returns false.
fn read_backwards(file: &File, end: u64, mut f: impl FnMut(&[u8]) -> bool) -> io::Result<()> {
    let mut pos = end;
    // `tail` holds bytes after `pos` not yet consumed (the beginning of an unfinished line).
    let mut tail: Vec<u8> = Vec::new();
    let mut first = true;
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = (pos as usize).min(CHUNK);
        if n == 0 {
            if !tail.is_empty() && !first {
                f(&tail);
            }
            return Ok(());
        }
        pos -= n as u64;
        file.read_exact_at(&mut chunk[..n], pos)?;
        let mut data = chunk[..n].to_vec();
        data.extend_from_slice(&tail);
        if first {
            // Drop a torn last line (no trailing newline).
            let keep = data.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            data.truncate(keep);
            first = false;
        }
        // Lines end at '\n'; process complete lines from the end.
        let mut end_i = data.len();
        loop {
            let search = if end_i == 0 {
                break;
            } else {
                &data[..end_i - 1]
            };
            match search.iter().rposition(|&b| b == b'\n') {
                Some(p) => {
                    if !f(&data[p + 1..end_i]) {
                        return Ok(());
                    }
                    end_i = p + 1;
                }
                None => break,
            }
        }
        data.truncate(end_i);
        tail = data;
        if pos == 0 {
            if !tail.is_empty() {
                f(&tail);
            }
            return Ok(());
        }
    }
}

/// The log file written after the one with identity `ours` (dev, inode): the next newer
/// rotated file, or the current one. If ours is gone (rotated away), the oldest one left.
fn next_file(current: &Path, ours: Option<(u64, u64)>) -> PathBuf {
    let mut rotated = Vec::new();
    let mut n = 1;
    loop {
        let p = rotated_path(current, n);
        match std::fs::metadata(&p) {
            Ok(m) => rotated.push((p, (m.dev(), m.ino()))),
            Err(_) => break,
        }
        n += 1;
        if n > 10_000 {
            break;
        }
    }
    // rotated[0] is `.1`, the newest rotated file.
    match rotated.iter().position(|(_, id)| Some(*id) == ours) {
        Some(0) => current.to_path_buf(),
        Some(k) => rotated[k - 1].0.clone(),
        None => rotated
            .last()
            .map(|r| r.0.clone())
            .unwrap_or_else(|| current.to_path_buf()),
    }
}

struct InotifyFd(nix::sys::inotify::Inotify);

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

fn inotify_dir(dir: &Path) -> Option<tokio::io::unix::AsyncFd<InotifyFd>> {
    use nix::sys::inotify::{AddWatchFlags as W, InitFlags, Inotify};
    let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
    ino.add_watch(
        dir,
        W::IN_MODIFY | W::IN_CREATE | W::IN_MOVED_FROM | W::IN_MOVED_TO | W::IN_CLOSE_WRITE,
    )
    .ok()?;
    // Sound: `InotifyFd` owns its descriptor and closes it only when the AsyncFd drops it.
    #[allow(deprecated)]
    let fd = tokio::io::unix::AsyncFd::new(InotifyFd(ino)).ok();
    fd
}

/// Streams a container's log into a channel: what is there (selected by `opts`), then, with
/// `follow`, what is appended until the container stops (or `until` passes), across rotations.
pub fn stream(
    current: Option<PathBuf>,
    opts: LogOptions,
    mut life: watch::Receiver<crate::containers::Lifecycle>,
) -> Result<mpsc::Receiver<Entry>> {
    let (tx, rx) = mpsc::channel(256);
    let Some(current) = current else {
        return Err(Error::new(
            crate::ErrorKind::NotImplemented,
            "configured logging driver does not support reading",
        ));
    };
    let source = LogSource::open(&current)?;
    let dir = current.parent().map(Path::to_path_buf).unwrap_or_default();
    // Watch before reading, so nothing written in between is missed.
    let watcher = if opts.follow { inotify_dir(&dir) } else { None };
    // A small tail (the common `logs --tail N`) reads a few blocks from the files' ends: do it
    // right here and queue it whole, which saves a thread hop and a wake-up per entry.
    let small_tail = opts.tail.is_some_and(|n| n <= 200);
    let mut early: Option<io::Result<Option<(PathBuf, File, u64)>>> = None;
    let mut source = source;
    if small_tail {
        if let Some(src) = source.take() {
            early = Some(src.read_initial(&opts, |e| tx.try_send(e).is_ok()));
        }
    }
    tokio::spawn(async move {
        let pos = match early {
            Some(r) => r,
            None => {
                let Some(source) = source else { return };
                let o = opts.clone();
                let tx2 = tx.clone();
                match tokio::task::spawn_blocking(move || {
                    source.read_initial(&o, |e| tx2.blocking_send(e).is_ok())
                })
                .await
                {
                    Ok(r) => r,
                    Err(_) => return,
                }
            }
        };
        let Ok(Some((_, mut file, mut pos))) = pos else {
            return;
        };
        if !opts.follow {
            return;
        }
        let Some(mut watcher) = watcher else { return };
        loop {
            let running = {
                // Marks the value seen, so `changed()` below waits for the next change.
                let l = life.borrow_and_update();
                l.running && !l.removed
            };
            // Drain the open file.
            let end = file.metadata().map(|m| m.len()).unwrap_or(pos);
            if end > pos {
                let mut got = Vec::new();
                let f2 = file.try_clone();
                let Ok(f2) = f2 else { return };
                let start = pos;
                let res = tokio::task::spawn_blocking(move || {
                    let mut v = Vec::new();
                    let p = read_forward(&f2, start, end, |l| {
                        if let Some(e) = parse_line(l) {
                            v.push(e);
                        }
                        true
                    });
                    (p, v)
                })
                .await;
                let Ok((Ok(p), v)) = res else { return };
                pos = p;
                got.extend(v);
                for e in got {
                    if opts.until.is_some_and(|u| e.time > u) {
                        return;
                    }
                    if opts.wants(&e) && tx.send(e).await.is_err() {
                        return;
                    }
                }
            }
            // Rotated away? Continue with the new current file from its start.
            let same = match (std::fs::metadata(&current), file.metadata()) {
                (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
                _ => true,
            };
            if !same {
                // Whatever the old file still had was drained above: go on with the file that
                // came after it (not simply the current one: several rotations may have
                // happened meanwhile).
                let ours = file.metadata().map(|m| (m.dev(), m.ino())).ok();
                if let Ok(f) = File::open(next_file(&current, ours)) {
                    file = f;
                    pos = 0;
                    continue;
                }
            }
            if !running {
                return;
            }
            if let Some(u) = opts.until {
                if Utc::now() > u {
                    return;
                }
            }
            let until_sleep = async {
                match opts.until {
                    Some(u) => {
                        let d = (u - Utc::now()).to_std().unwrap_or_default();
                        tokio::time::sleep(d).await
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = watcher.readable_mut() => {
                    match r {
                        Ok(mut g) => {
                            let _ = g.get_inner().0.read_events();
                            g.clear_ready();
                        }
                        Err(_) => return,
                    }
                }
                r = life.changed() => {
                    if r.is_err() {
                        // The container record is gone: drain once more and stop.
                        let end = file.metadata().map(|m| m.len()).unwrap_or(pos);
                        if end <= pos { return; }
                    }
                }
                _ = tx.closed() => return,
                _ = until_sleep => return,
            }
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_shim::jsonlog::{JsonLog, LogOpts, Stream};

    const LOG: &str = concat!(
        "{\"log\":\"out1\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-23T18:17:20.006641363Z\"}\n",
        "{\"log\":\"err1\\n\",\"stream\":\"stderr\",\"attrs\":{\"a b\":\"c\"},\"time\":\"2026-11-23T18:17:21.000000000Z\"}\n",
        "{\"log\":\"out2\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-23T18:17:22.000000000Z\"}\n",
        "{\"log\":\"torn"
    );

    #[test]
    fn filters_and_tail() {
        let all = parse(LOG);
        assert_eq!(all.len(), 3);
        assert_eq!(all[1].attrs, "a+b=c");
        let o = LogOptions {
            stdout: true,
            stderr: false,
            ..Default::default()
        };
        let v = select(all.clone(), &o);
        assert_eq!(
            v.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(),
            ["out1\n", "out2\n"]
        );
        let o = LogOptions {
            stdout: true,
            stderr: true,
            tail: Some(1),
            ..Default::default()
        };
        assert_eq!(select(all.clone(), &o)[0].data, "out2\n");
        let o = LogOptions {
            stdout: true,
            stderr: true,
            since: parse_time("1795457841"),
            ..Default::default()
        };
        assert_eq!(select(all.clone(), &o).len(), 2);
        let o = LogOptions {
            stdout: true,
            timestamps: true,
            ..Default::default()
        };
        assert_eq!(o.render(&all[0]), "2026-11-23T18:17:20.006641363Z out1\n");
        let o = LogOptions {
            stdout: true,
            details: true,
            ..Default::default()
        };
        assert_eq!(o.render(&all[0]), " out1\n");
    }

    #[test]
    fn fast_parser_agrees_with_serde() {
        let lines = [
            r#"{"log":"plain\n","stream":"stdout","time":"2026-11-23T18:17:20.006641363Z"}"#,
            r#"{"log":"q\"b\\s\/ \u003cé\u2028\t","stream":"stderr","time":"2026-11-23T23:18:28.27978363Z"}"#,
            r#"{"log":"","stream":"stdout","time":"2000-01-01T00:00:00Z"}"#,
            r#"{"log":"x","stream":"stdout","time":"2000-01-01T00:00:00.5Z"}"#,
        ];
        for l in lines {
            let fast = fast_parse(l.as_bytes()).unwrap_or_else(|| panic!("fast path refused {l}"));
            let slow: Line = serde_json::from_str(l).unwrap();
            assert_eq!(fast.data, slow.log, "{l}");
            assert_eq!(fast.time, slow.time, "{l}");
            assert_eq!(fast.stream, if slow.stream == "stderr" { 2 } else { 1 });
        }
        // Unusual shapes fall back to serde.
        assert!(fast_parse(
            br#"{"log":"a","stream":"stdout","attrs":{"a":"b"},"time":"2000-01-01T00:00:00Z"}"#
        )
        .is_none());
        assert!(fast_parse(
            br#"{"log":"\ud83d\ude00","stream":"stdout","time":"2000-01-01T00:00:00Z"}"#
        )
        .is_none());
        assert!(
            fast_parse(br#"{"stream":"stdout","log":"a","time":"2000-01-01T00:00:00Z"}"#).is_none()
        );
        assert!(
            fast_parse(br#"{"log":"a","stream":"stdout","time":"2000-01-01T00:00:00+01:00"}"#)
                .is_none()
        );
        assert_eq!(
            parse_line(
                br#"{"log":"\ud83d\ude00","stream":"stdout","time":"2000-01-01T00:00:00Z"}"#
            )
            .unwrap()
            .data,
            "😀"
        );
    }

    #[test]
    fn times_and_sizes() {
        assert!(parse_time("0").is_none());
        assert_eq!(
            parse_time("10.5").unwrap().timestamp_subsec_nanos(),
            500_000_000
        );
        assert!(parse_time("x").is_none());
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("1k"), Some(1024));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("abc"), None);
    }

    #[test]
    fn validation_texts() {
        let mut lc = LogConfig {
            r#type: "foo".into(),
            config: BTreeMap::new(),
        };
        assert_eq!(
            validate(&lc).unwrap_err().message,
            "error looking up logging plugin foo: plugin \"foo\" not found"
        );
        lc.r#type = "json-file".into();
        lc.config.insert("bogus".into(), "1".into());
        assert_eq!(
            validate(&lc).unwrap_err().message,
            "unknown log opt 'bogus' for json-file log driver"
        );
        lc.r#type = "local".into();
        lc.config.clear();
        lc.config.insert("labels".into(), "x".into());
        assert_eq!(
            validate(&lc).unwrap_err().message,
            "unknown log opt 'labels' for log driver local"
        );
    }

    /// Writes `n` numbered entries through the shim's writer with small rotation.
    fn write_log(dir: &Path, n: usize, max_size: u64, max_file: u32) -> PathBuf {
        let p = dir.join("c-json.log");
        let mut log = JsonLog::open_with(
            &p,
            LogOpts {
                enabled: true,
                max_size,
                max_file,
                attrs: Vec::new(),
            },
        )
        .unwrap();
        for i in 0..n {
            let t = DateTime::from_timestamp(1_000_000 + i as i64, 0).unwrap();
            let s = if i % 2 == 0 {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            log.write(
                s,
                format!("line {i:06} {}\n", "x".repeat(100)).as_bytes(),
                t,
            )
            .unwrap();
        }
        log.finish(Utc::now()).unwrap();
        p
    }

    fn read_all(p: &Path, opts: &LogOptions) -> Vec<Entry> {
        let mut v = Vec::new();
        LogSource::open(p)
            .unwrap()
            .unwrap()
            .read_initial(opts, |e| {
                v.push(e);
                true
            })
            .unwrap();
        v
    }

    #[test]
    fn rotation_index_tail_since_across_files() {
        let dir = tempfile::tempdir().unwrap();
        // ~150 bytes per entry, 200 KiB files, 4 files: the oldest entries are dropped.
        let p = write_log(dir.path(), 8000, 200 * 1024, 4);
        assert!(rotated_path(&p, 3).exists());
        assert!(!rotated_path(&p, 4).exists());
        assert!(index_path(&rotated_path(&p, 2)).exists());
        for f in [p.clone(), rotated_path(&p, 1), rotated_path(&p, 3)] {
            let len = std::fs::metadata(&f).unwrap().len();
            assert!(len <= 200 * 1024, "{len}");
            // Every index record points at the start of an entry with that entry's time.
            let data = std::fs::read(&f).unwrap();
            for (off, t) in read_index(&f) {
                let line = &data[off as usize..];
                let line = &line[..line.iter().position(|&b| b == b'\n').unwrap() + 1];
                let e = parse_line(line).unwrap();
                assert_eq!(e.time.timestamp_nanos_opt().unwrap(), t);
            }
        }
        let all = read_all(
            &p,
            &LogOptions {
                stdout: true,
                stderr: true,
                ..Default::default()
            },
        );
        let first: usize = all[0].data[5..11].parse().unwrap();
        assert_eq!(all.len(), 8000 - first);
        for (k, e) in all.iter().enumerate() {
            assert_eq!(e.data[5..11].parse::<usize>().unwrap(), first + k);
        }
        // tail spanning the current file and the previous one.
        let cur_entries = std::fs::read(&p)
            .unwrap()
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        let n = cur_entries + 10;
        let t = read_all(
            &p,
            &LogOptions {
                stdout: true,
                stderr: true,
                tail: Some(n),
                ..Default::default()
            },
        );
        assert_eq!(t, all[all.len() - n..].to_vec());
        // tail counts every entry, then filters the stream (dockerd): the last 10 alternate.
        let t = read_all(
            &p,
            &LogOptions {
                stderr: true,
                tail: Some(10),
                ..Default::default()
            },
        );
        assert_eq!(t.iter().map(|e| e.stream).collect::<Vec<_>>(), vec![2; 5]);
        assert_eq!(t[4], all[all.len() - 1]);
        // since in the middle of the oldest kept file, and until.
        let since = DateTime::from_timestamp(1_000_000 + first as i64 + 17, 0).unwrap();
        let until = DateTime::from_timestamp(1_000_000 + 7990, 0).unwrap();
        let s = read_all(
            &p,
            &LogOptions {
                stdout: true,
                stderr: true,
                since: Some(since),
                until: Some(until),
                ..Default::default()
            },
        );
        assert_eq!(
            s.first().unwrap().data[5..11].parse::<usize>().unwrap(),
            first + 17
        );
        assert_eq!(
            s.last().unwrap().data[5..11].parse::<usize>().unwrap(),
            7990
        );
        // since + tail.
        let s = read_all(
            &p,
            &LogOptions {
                stdout: true,
                stderr: true,
                since: Some(since),
                tail: Some(3),
                ..Default::default()
            },
        );
        assert_eq!(s, all[all.len() - 3..].to_vec());
        // seek_since skips files that end before `since`.
        let files: Vec<(PathBuf, File)> = [
            rotated_path(&p, 3),
            rotated_path(&p, 2),
            rotated_path(&p, 1),
            p.clone(),
        ]
        .into_iter()
        .map(|f| {
            let h = File::open(&f).unwrap();
            (f, h)
        })
        .collect();
        let late = DateTime::from_timestamp(1_000_000 + 7995, 0).unwrap();
        let (fi, off) = seek_since(&files, late);
        assert_eq!(fi, 3);
        assert!(off > 0 || read_index(&p).len() == 1);
    }

    #[tokio::test]
    async fn follow_reads_live_entries_across_rotations_then_ends() {
        use crate::containers::Lifecycle;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let opts = LogOpts {
            enabled: true,
            max_size: 600,
            max_file: 10,
            attrs: Vec::new(),
        };
        let mut log = JsonLog::open_with(&p, opts.clone()).unwrap();
        let t = Utc::now();
        log.write(Stream::Stdout, b"before\n", t).unwrap();
        let (life_tx, life_rx) = watch::channel(Lifecycle {
            running: true,
            ..Default::default()
        });
        let o = LogOptions {
            stdout: true,
            stderr: true,
            follow: true,
            tail: Some(1),
            ..Default::default()
        };
        let mut rx = stream(Some(p.clone()), o, life_rx).unwrap();
        assert_eq!(rx.recv().await.unwrap().data, "before\n");
        // Written while following, through several rotations (each file holds ~6 entries;
        // the reader keeps up, so nothing rotates away unread).
        let mut got = Vec::new();
        for i in 0..40 {
            let s = if i % 3 == 0 {
                Stream::Stderr
            } else {
                Stream::Stdout
            };
            log.write(s, format!("live {i}\n").as_bytes(), Utc::now())
                .unwrap();
            let e = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(e.stream, if i % 3 == 0 { 2 } else { 1 });
            got.push(e.data);
        }
        assert!(rotated_path(&p, 2).exists());
        assert_eq!(
            got,
            (0..40).map(|i| format!("live {i}\n")).collect::<Vec<_>>()
        );
        // A burst that rotates twice before the reader gets to run: nothing is skipped.
        for i in 40..64 {
            log.write(Stream::Stdout, format!("live {i}\n").as_bytes(), Utc::now())
                .unwrap();
        }
        for i in 40..64 {
            let e = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(e.data, format!("live {i}\n"));
        }
        // The container stops: the stream ends.
        life_tx
            .send(Lifecycle {
                running: false,
                ..Default::default()
            })
            .unwrap();
        let end = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
            .await
            .unwrap();
        assert!(end.is_none());
    }

    #[test]
    fn backwards_reader_handles_torn_and_long_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        let mut s = String::new();
        for i in 0..3 {
            s.push_str(&format!("{{\"log\":\"{}{i}\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-23T18:17:2{i}Z\"}}\n", "y".repeat(70_000)));
        }
        s.push_str("{\"log\":\"torn");
        std::fs::write(&p, &s).unwrap();
        let f = File::open(&p).unwrap();
        let mut lines = Vec::new();
        read_backwards(&f, s.len() as u64, |l| {
            lines.push(parse_line(l).unwrap());
            true
        })
        .unwrap();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].data.ends_with("2\n"));
        assert!(lines[2].data.ends_with("0\n"));
    }
}
