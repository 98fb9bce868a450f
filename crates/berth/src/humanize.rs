//! Docker-style human-readable durations, sizes and table output.

pub use berth_api_types::humanize::human_duration;

/// `human_duration(now - then) + " ago"`, for unix-second timestamps.
pub fn ago(unix_secs: i64) -> String {
    let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    format!("{} ago", human_duration(now - unix_secs as f64))
}

/// Format `v` with `sig` significant digits like Go's `%.{sig}g` (for 0 <= v < 10000).
fn sig_digits(v: f64, sig: i32) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let mut mag = v.abs().log10().floor() as i32;
    // rounding may carry into the next power of ten (999.7 -> 1000 with 3 digits)
    let scale = 10f64.powi(sig - 1 - mag);
    if (v * scale).round() / scale >= 10f64.powi(mag + 1) {
        mag += 1;
    }
    if mag >= sig {
        // Go switches to exponent form: %.3g of 999.9 is "1e+03"
        let m = v / 10f64.powi(mag);
        let digits = sig_digits(m, sig);
        return format!("{digits}e+{mag:02}");
    }
    let decimals = (sig - 1 - mag).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn human_units(size: f64, base: f64, units: &[&str]) -> String {
    human_units_prec(size, 4, base, units)
}

fn human_units_prec(size: f64, prec: i32, base: f64, units: &[&str]) -> String {
    let mut v = size;
    let mut i = 0;
    while v >= base && i < units.len() - 1 {
        v /= base;
        i += 1;
    }
    format!("{}{}", sig_digits(v, prec), units[i])
}

/// Decimal sizes with 3 significant digits like docker's tables: "4.3MB", "1.98MB", "512B".
pub fn human_size(bytes: i64) -> String {
    human_size_prec(bytes, 3)
}

/// Decimal sizes with `prec` significant digits (docker's HumanSizeWithPrecision).
pub fn human_size_prec(bytes: i64, prec: i32) -> String {
    human_units_prec(
        bytes.max(0) as f64,
        prec,
        1000.0,
        &["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"],
    )
}

/// docker's `units.HumanSize`: decimal units, 4 significant digits.
pub fn human_size_prec4(bytes: i64) -> String {
    human_size_prec(bytes, 4)
}

/// Binary sizes like docker info's "Total Memory: 23.54GiB".
pub fn bytes_size(bytes: i64) -> String {
    human_units(
        bytes.max(0) as f64,
        1024.0,
        &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"],
    )
}

/// Render rows like Go's tabwriter with docker's settings (minwidth 10, padding 3):
/// every column but the last is padded to max(10, widest cell + 3).
pub fn table(rows: &[Vec<String>]) -> String {
    table_min(rows, 10)
}

/// `table` with another tabwriter minimum cell width (`top` uses 20).
pub fn table_min(rows: &[Vec<String>], min: usize) -> String {
    let ncols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; ncols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                let w = (widths[i] + 3).max(min);
                for _ in c.chars().count()..w {
                    line.push(' ');
                }
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Shorten to `max` characters with a trailing "…" like docker's Ellipsis.
pub fn ellipsis(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// First 12 hex digits of an id, dropping any `sha256:` prefix.
pub fn short_id(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_match_docker_thresholds() {
        assert_eq!(human_duration(0.4), "Less than a second");
        assert_eq!(human_duration(1.2), "1 second");
        assert_eq!(human_duration(59.9), "59 seconds");
        assert_eq!(human_duration(60.0), "About a minute");
        assert_eq!(human_duration(119.0), "About a minute");
        assert_eq!(human_duration(120.0), "2 minutes");
        assert_eq!(human_duration(59.0 * 60.0), "59 minutes");
        assert_eq!(human_duration(3600.0), "About an hour");
        assert_eq!(human_duration(5400.0), "2 hours"); // 1.5h rounds up
        assert_eq!(human_duration(47.0 * 3600.0), "47 hours");
        assert_eq!(human_duration(48.0 * 3600.0), "2 days");
        assert_eq!(human_duration(14.0 * 86400.0), "2 weeks");
        assert_eq!(human_duration(60.0 * 86400.0), "2 months");
        assert_eq!(human_duration(800.0 * 86400.0), "2 years");
        assert_eq!(human_duration(-5.0), "Less than a second");
    }

    #[test]
    fn sizes_match_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(1_980_000), "1.98MB");
        assert_eq!(human_size(4_300_000), "4.3MB");
        assert_eq!(human_size(1_982_464), "1.98MB");
        assert_eq!(human_size(1_234_567), "1.23MB");
        assert_eq!(human_size_prec(1_234_567, 4), "1.235MB");
        assert_eq!(human_size(999_999), "1e+03kB");
        assert_eq!(human_size(9_996), "10kB");
        assert_eq!(human_size(5_000_000_000), "5GB");
        assert_eq!(bytes_size(25_275_817_984), "23.54GiB");
        assert_eq!(bytes_size(1024), "1KiB");
    }

    #[test]
    fn table_pads_like_tabwriter() {
        let t = table(&[
            vec![
                "CONTAINER ID".into(),
                "IMAGE".into(),
                "PORTS".into(),
                "NAMES".into(),
            ],
            vec![
                "7698917236c0".into(),
                "busybox".into(),
                "".into(),
                "t1".into(),
            ],
        ]);
        assert_eq!(
            t,
            "CONTAINER ID   IMAGE     PORTS     NAMES\n7698917236c0   busybox             t1\n"
        );
    }

    #[test]
    fn ellipsis_and_short_id() {
        assert_eq!(ellipsis("sleep 100", 20), "sleep 100");
        assert_eq!(
            ellipsis("abcdefghijklmnopqrstuvwxyz", 20),
            "abcdefghijklmnopqrs…"
        );
        assert_eq!(short_id("sha256:50d84a6f50e64553558fab4e"), "50d84a6f50e6");
    }
}
