//! The Docker `json-file` log format:
//! `{"log":"...","stream":"stdout","time":"2026-11-23T18:17:20.006641363Z"}\n`.
//!
//! Output is split into lines (each entry's `log` ends with `\n`); a line longer than
//! [`MAX_LINE`] or an unterminated tail at EOF is written as an entry without the newline.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use chrono::{DateTime, Utc};

/// Longest partial line buffered before it is written out unterminated (Docker uses 16 KiB).
pub const MAX_LINE: usize = 16 * 1024;

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// RFC 3339 with exactly nine fractional digits, UTC (Docker's `RFC3339NanoFixed`).
pub fn format_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

/// Appends `data` as the contents of a JSON string (without quotes), escaped like Go's
/// `encoding/json` with HTML escaping: `<`, `>`, `&`, U+2028 and U+2029 become `\uXXXX`, control
/// characters other than `\n`, `\r`, `\t` become `\u00XX`, and every byte of invalid UTF-8
/// becomes `\ufffd`.
pub fn escape_into(out: &mut Vec<u8>, data: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for chunk in data.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\u{2028}' => out.extend_from_slice(b"\\u2028"),
                '\u{2029}' => out.extend_from_slice(b"\\u2029"),
                c if (c as u32) < 0x20 || c == '<' || c == '>' || c == '&' => {
                    let b = c as u8;
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(b >> 4) as usize]);
                    out.push(HEX[(b & 0xf) as usize]);
                }
                c => {
                    let mut tmp = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
        }
        for _ in chunk.invalid() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
}

/// Appends one complete log entry (with its trailing newline) to `out`.
pub fn entry_into(out: &mut Vec<u8>, log: &[u8], stream: Stream, time: &str) {
    out.extend_from_slice(b"{\"log\":\"");
    escape_into(out, log);
    out.extend_from_slice(b"\",\"stream\":\"");
    out.extend_from_slice(stream.name().as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// Length of the longest prefix of `buf` that does not end inside a UTF-8 sequence (so a forced
/// split of a long line does not break a character in two).
fn char_boundary(buf: &[u8]) -> usize {
    let n = buf.len();
    // Look back at most 3 bytes for the lead byte of an unfinished sequence.
    for back in 1..=3.min(n) {
        let b = buf[n - back];
        if b & 0xC0 == 0x80 {
            continue; // continuation byte: keep looking for the lead
        }
        let need = if b & 0xE0 == 0xC0 {
            2
        } else if b & 0xF0 == 0xE0 {
            3
        } else if b & 0xF8 == 0xF0 {
            4
        } else {
            1
        };
        return if need > back { n - back } else { n };
    }
    n
}

/// A json-file log being appended to.
pub struct JsonLog {
    file: File,
    partial: [Vec<u8>; 2],
}

impl JsonLog {
    /// Opens (creating if needed) `path` for appending.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            file,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Records a chunk of output read at `now`: every completed line becomes one entry.
    pub fn write(&mut self, stream: Stream, data: &[u8], now: DateTime<Utc>) -> io::Result<()> {
        let time = format_time(now);
        let buf = &mut self.partial[stream.index()];
        buf.extend_from_slice(data);
        let mut out = Vec::new();
        let mut start = 0;
        loop {
            let rest = &buf[start..];
            let window = &rest[..rest.len().min(MAX_LINE)];
            if let Some(nl) = window.iter().position(|&b| b == b'\n') {
                entry_into(&mut out, &rest[..=nl], stream, &time);
                start += nl + 1;
            } else if rest.len() >= MAX_LINE {
                let cut = match char_boundary(&rest[..MAX_LINE]) {
                    0 => MAX_LINE,
                    n => n,
                };
                entry_into(&mut out, &rest[..cut], stream, &time);
                start += cut;
            } else {
                break;
            }
        }
        buf.drain(..start);
        if out.is_empty() {
            return Ok(());
        }
        self.file.write_all(&out)
    }

    /// Writes out an unterminated last line of `stream` (at EOF).
    pub fn flush_partial(&mut self, stream: Stream, now: DateTime<Utc>) -> io::Result<()> {
        let buf = std::mem::take(&mut self.partial[stream.index()]);
        if buf.is_empty() {
            return Ok(());
        }
        let mut out = Vec::new();
        entry_into(&mut out, &buf, stream, &format_time(now));
        self.file.write_all(&out)
    }

    /// Flushes both streams' partial lines and syncs the file.
    pub fn finish(&mut self, now: DateTime<Utc>) -> io::Result<()> {
        self.flush_partial(Stream::Stdout, now)?;
        self.flush_partial(Stream::Stderr, now)?;
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(b: &[u8]) -> String {
        let mut v = Vec::new();
        escape_into(&mut v, b);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn escapes_like_go() {
        assert_eq!(esc(b"a\"b\\c\n\r\t"), r#"a\"b\\c\n\r\t"#);
        assert_eq!(
            esc(b"<a href='x'>&</a>"),
            r#"\u003ca href='x'\u003e\u0026\u003c/a\u003e"#
        );
        assert_eq!(
            esc(b"\x00\x01\x08\x0c\x1b\x7f"),
            r#"\u0000\u0001\u0008\u000c\u001b"#.to_string() + "\x7f"
        );
        assert_eq!(esc("é✓\u{2028}\u{2029}😀".as_bytes()), "é✓\\u2028\\u2029😀");
        // Invalid UTF-8: one replacement per bad byte, like Go's utf8.DecodeRune loop.
        assert_eq!(esc(b"a\xffb\xe2\x82c"), r#"a\ufffdb\ufffd\ufffdc"#);
    }

    #[test]
    fn time_has_nine_digits() {
        let t = DateTime::from_timestamp(1_795_457_840, 6_641_363).unwrap();
        assert_eq!(format_time(t), "2026-11-23T18:17:20.006641363Z");
        let t = DateTime::from_timestamp(0, 0).unwrap();
        assert_eq!(format_time(t), "1970-01-01T00:00:00.000000000Z");
    }

    #[test]
    fn splits_lines_and_keeps_partials() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x-json.log");
        let mut log = JsonLog::open(&p).unwrap();
        let t = DateTime::from_timestamp(0, 5).unwrap();
        log.write(Stream::Stdout, b"one\ntw", t).unwrap();
        log.write(Stream::Stderr, b"err\n", t).unwrap();
        log.write(Stream::Stdout, b"o\nthree", t).unwrap();
        log.finish(t).unwrap();
        let s = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines,
            vec![
                r#"{"log":"one\n","stream":"stdout","time":"1970-01-01T00:00:00.000000005Z"}"#,
                r#"{"log":"err\n","stream":"stderr","time":"1970-01-01T00:00:00.000000005Z"}"#,
                r#"{"log":"two\n","stream":"stdout","time":"1970-01-01T00:00:00.000000005Z"}"#,
                r#"{"log":"three","stream":"stdout","time":"1970-01-01T00:00:00.000000005Z"}"#,
            ]
        );
    }

    #[test]
    fn long_lines_split_on_char_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x-json.log");
        let mut log = JsonLog::open(&p).unwrap();
        let t = Utc::now();
        // 'é' is two bytes; MAX_LINE - 1 bytes of 'a' then 'é' straddles the limit.
        let mut data = vec![b'a'; MAX_LINE - 1];
        data.extend_from_slice("é\n".as_bytes());
        log.write(Stream::Stdout, &data, t).unwrap();
        log.finish(t).unwrap();
        let s = std::fs::read_to_string(&p).unwrap();
        let logs: Vec<String> = s
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["log"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(logs.len(), 2);
        assert_eq!(logs[0].len(), MAX_LINE - 1);
        assert_eq!(logs[1], "é\n");
        assert!(!s.contains("fffd"));
    }

    #[test]
    fn boundary_helper() {
        assert_eq!(char_boundary(b"abc"), 3);
        assert_eq!(char_boundary("aé".as_bytes()), 3);
        assert_eq!(char_boundary(&"aé".as_bytes()[..2]), 1);
        assert_eq!(char_boundary(&"a😀".as_bytes()[..4]), 1);
        assert_eq!(char_boundary("a😀".as_bytes()), 5);
    }
}
