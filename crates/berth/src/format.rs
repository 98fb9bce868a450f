//! docker's `--format` for list commands: `table` (the default columns), `table TEMPLATE`
//! (a header row from the column names, aligned like Go's tabwriter), `json` (one JSON object
//! per row, `{{json .}}`) or a raw Go template (one line per row).

use crate::humanize::table;
use crate::template::Template;
use anyhow::Result;
use serde_json::{Map, Value};

/// A parsed `--format` value for a list command.
pub enum ListFormat {
    /// Rows through tabwriter with a header line.
    Table(Template),
    /// One JSON object per row.
    Json,
    /// One rendered line per row, no header.
    Raw(Template),
}

impl ListFormat {
    /// `format` as given by the user (`None`/empty = `table`), with the command's default
    /// table template (without the `table ` prefix).
    pub fn parse(format: Option<&str>, default_table: &str) -> Result<Self> {
        let f = format.unwrap_or("").trim_end_matches('\n');
        Ok(match f {
            "" | "table" => ListFormat::Table(Template::parse(default_table)?),
            "json" => ListFormat::Json,
            _ => match f.strip_prefix("table ") {
                Some(t) => ListFormat::Table(Template::parse(&unescape_tabs(t))?),
                None => ListFormat::Raw(Template::parse(&unescape_tabs(f))?),
            },
        })
    }

    /// Render every row; `headers` maps field names to column titles (docker's header context).
    pub fn render(&self, headers: &Value, rows: &[Value]) -> Result<String> {
        let mut out = String::new();
        match self {
            ListFormat::Json => {
                for r in rows {
                    out.push_str(&crate::template::go_json(r));
                    out.push('\n');
                }
            }
            ListFormat::Raw(t) => {
                for r in rows {
                    out.push_str(&t.execute(r)?);
                    out.push('\n');
                }
            }
            ListFormat::Table(t) => {
                let mut cells: Vec<Vec<String>> = Vec::new();
                let head = t.execute(&header_context(headers))?;
                if !head.trim().is_empty() {
                    cells.extend(split_lines(&head));
                }
                for r in rows {
                    cells.extend(split_lines(&t.execute(r)?));
                }
                out.push_str(&table(&cells));
            }
        }
        Ok(out)
    }

    /// Print the rendered rows to stdout.
    pub fn print(&self, headers: &Value, rows: &[Value]) -> Result<()> {
        use std::io::Write;
        let s = self.render(headers, rows)?;
        let mut o = std::io::stdout().lock();
        o.write_all(s.as_bytes())?;
        Ok(())
    }
}

/// docker accepts a literal `\t` in format strings typed on a command line.
fn unescape_tabs(s: &str) -> String {
    s.replace("\\t", "\t").replace("\\n", "\n")
}

fn split_lines(s: &str) -> Vec<Vec<String>> {
    s.split('\n')
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// The header context: every field renders as its column title (fields the command does not
/// know render as their own upper-cased name).
fn header_context(headers: &Value) -> Value {
    headers.clone()
}

/// Build a header map from (field, title) pairs.
pub fn headers(pairs: &[(&str, &str)]) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert((*k).to_string(), Value::String((*v).to_string()));
    }
    Value::Object(m)
}

/// Go's `time.Time.String()` for a Unix time, in local time
/// (`2026-11-24 01:02:03 +0000 UTC`).
pub fn go_time(unix: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_opt(unix, 0).single() {
        Some(t) => {
            let off = t.format("%z").to_string();
            let zone = if off == "+0000" {
                "UTC".to_string()
            } else {
                t.format("%Z").to_string()
            };
            format!("{} {off} {zone}", t.format("%Y-%m-%d %H:%M:%S"))
        }
        None => String::new(),
    }
}

/// An RFC 3339 time as Go's `time.Time.String()` (fractional seconds kept, trailing zeros
/// trimmed), in local time.
pub fn go_time_rfc3339(t: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(t) {
        Ok(d) => {
            let base = go_time(d.timestamp());
            let nanos = d.timestamp_subsec_nanos();
            if nanos == 0 {
                return base;
            }
            let frac = format!("{nanos:09}");
            let frac = frac.trim_end_matches('0');
            // insert after the seconds: "YYYY-MM-DD HH:MM:SS"
            match base.get(..19) {
                Some(head) => format!("{head}.{frac}{}", &base[19..]),
                None => base,
            }
        }
        Err(_) => t.to_string(),
    }
}

/// `k=v,k2=v2` as docker's Labels column (sorted by key).
pub fn labels_column(labels: Option<&Value>) -> String {
    let Some(m) = labels.and_then(Value::as_object) else {
        return String::new();
    };
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    keys.iter()
        .map(|k| format!("{k}={}", m[*k].as_str().unwrap_or("")))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_json_and_raw() {
        let h = headers(&[("ID", "CONTAINER ID"), ("Names", "NAMES")]);
        let rows = vec![
            json!({"ID": "abc", "Names": "x"}),
            json!({"ID": "def", "Names": "yy"}),
        ];
        let f = ListFormat::parse(None, "{{.ID}}\t{{.Names}}").unwrap();
        assert_eq!(
            f.render(&h, &rows).unwrap(),
            "CONTAINER ID   NAMES\nabc            x\ndef            yy\n"
        );
        let f = ListFormat::parse(Some("table {{.Names}}\\t{{.ID}}"), "").unwrap();
        assert_eq!(
            f.render(&h, &rows).unwrap(),
            "NAMES     CONTAINER ID\nx         abc\nyy        def\n"
        );
        let f = ListFormat::parse(Some("json"), "").unwrap();
        assert_eq!(
            f.render(&h, &rows[..1]).unwrap(),
            "{\"ID\":\"abc\",\"Names\":\"x\"}\n"
        );
        let f = ListFormat::parse(Some("{{.ID}}:{{.Names}}"), "").unwrap();
        assert_eq!(f.render(&h, &rows).unwrap(), "abc:x\ndef:yy\n");
        assert_eq!(labels_column(Some(&json!({"b": "2", "a": "1"}))), "a=1,b=2");
        if go_time(0).ends_with("UTC") {
            assert_eq!(
                go_time_rfc3339("2026-11-24T01:46:08.738950700Z"),
                "2026-11-24 01:46:08.7389507 +0000 UTC"
            );
        }
    }
}
