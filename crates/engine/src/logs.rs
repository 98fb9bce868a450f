//! Reading the json-file log that the shim writes (`{"log":..,"stream":..,"time":..}` lines).

use chrono::{DateTime, Utc};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Line {
    log: String,
    stream: String,
    time: DateTime<Utc>,
}

/// One log entry ready to send: stream type (1 stdout, 2 stderr) and payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub stream: u8,
    pub time: DateTime<Utc>,
    pub data: String,
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
}

impl LogOptions {
    pub fn wants(&self, e: &Entry) -> bool {
        (if e.stream == 2 { self.stderr } else { self.stdout })
            && self.since.is_none_or(|s| e.time > s)
            && self.until.is_none_or(|u| e.time <= u)
    }

    /// The bytes sent for one entry (with an RFC 3339 nano timestamp when asked).
    pub fn render(&self, e: &Entry) -> String {
        if self.timestamps {
            format!("{} {}", e.time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true), e.data)
        } else {
            e.data.clone()
        }
    }
}

/// Parses a log file's complete lines; a torn last line (being written) is left out.
pub fn parse(content: &str) -> Vec<Entry> {
    content
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .filter_map(|l| serde_json::from_str::<Line>(l).ok())
        .map(|l| Entry {
            stream: if l.stream == "stderr" { 2 } else { 1 },
            time: l.time,
            data: l.log,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = concat!(
        "{\"log\":\"out1\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-23T18:17:20.006641363Z\"}\n",
        "{\"log\":\"err1\\n\",\"stream\":\"stderr\",\"time\":\"2026-11-23T18:17:21.000000000Z\"}\n",
        "{\"log\":\"out2\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-23T18:17:22.000000000Z\"}\n",
        "{\"log\":\"torn"
    );

    #[test]
    fn filters_and_tail() {
        let all = parse(LOG);
        assert_eq!(all.len(), 3);
        let o = LogOptions { stdout: true, stderr: false, ..Default::default() };
        let v = select(all.clone(), &o);
        assert_eq!(v.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(), ["out1\n", "out2\n"]);
        let o = LogOptions { stdout: true, stderr: true, tail: Some(1), ..Default::default() };
        assert_eq!(select(all.clone(), &o)[0].data, "out2\n");
        let o = LogOptions {
            stdout: true,
            stderr: true,
            since: parse_time("1795457841"),
            ..Default::default()
        };
        assert_eq!(select(all.clone(), &o).len(), 1);
        let o = LogOptions { stdout: true, timestamps: true, ..Default::default() };
        assert_eq!(o.render(&all[0]), "2026-11-23T18:17:20.006641363Z out1\n");
    }

    #[test]
    fn times() {
        assert!(parse_time("0").is_none());
        assert_eq!(parse_time("10.5").unwrap().timestamp_subsec_nanos(), 500_000_000);
        assert!(parse_time("x").is_none());
    }
}
