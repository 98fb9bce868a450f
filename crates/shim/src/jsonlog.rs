//! The Docker `json-file` log format:
//! `{"log":"...","stream":"stdout","time":"2026-11-23T18:17:20.006641363Z"}\n`.
//!
//! Output is split into lines (each entry's `log` ends with `\n`); a line longer than
//! [`MAX_LINE`] or an unterminated tail at EOF is written as an entry without the newline.

use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

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

/// Where and how the log is kept (`--log-driver`, `--log-max-size`, `--log-max-file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOpts {
    /// `false` for the `none` driver: nothing is written.
    pub enabled: bool,
    /// Rotate when the current file would grow past this many bytes (0: never).
    pub max_size: u64,
    /// Files kept, the current one included (at least 1).
    pub max_file: u32,
    /// Pre-rendered `"attrs":{...},` fragment (labels/env log options), or empty.
    pub attrs: Vec<u8>,
}

impl Default for LogOpts {
    fn default() -> Self {
        LogOpts {
            enabled: true,
            max_size: 0,
            max_file: 1,
            attrs: Vec::new(),
        }
    }
}

/// Bytes of log between two index records.
pub const INDEX_EVERY: u64 = 64 * 1024;
/// Size of one index record: offset (u64 LE) then time in Unix nanoseconds (i64 LE).
pub const INDEX_RECORD: usize = 16;

/// The sidecar index of a log file: `<log>.idx`.
pub fn index_path(log: &Path) -> PathBuf {
    let mut s = log.as_os_str().to_os_string();
    s.push(".idx");
    PathBuf::from(s)
}

/// The `n`-th rotated file (`<log>.1` is the most recent).
pub fn rotated_path(log: &Path, n: u32) -> PathBuf {
    let mut s = log.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Encodes one index record.
pub fn index_record(offset: u64, nanos: i64) -> [u8; INDEX_RECORD] {
    let mut r = [0u8; INDEX_RECORD];
    r[..8].copy_from_slice(&offset.to_le_bytes());
    r[8..].copy_from_slice(&nanos.to_le_bytes());
    r
}

/// A json-file log being appended to, rotated by size, with a sparse time index beside each
/// file so that readers can seek by time (`--since`) instead of scanning.
pub struct JsonLog {
    path: PathBuf,
    opts: LogOpts,
    file: Option<File>,
    index: Option<File>,
    size: u64,
    /// Offset of the last index record (None: none yet in this file).
    last_indexed: Option<u64>,
    partial: [Vec<u8>; 2],
    /// Render buffer and entry starts, reused for every chunk (no allocation per write once
    /// they have grown to the largest chunk).
    out: Vec<u8>,
    starts: Vec<(usize, i64)>,
}

impl JsonLog {
    /// Opens (creating if needed) `path` for appending, unrotated.
    pub fn open(path: &Path) -> io::Result<Self> {
        Self::open_with(path, LogOpts::default())
    }

    /// Opens `path` for appending with rotation and driver options.
    pub fn open_with(path: &Path, opts: LogOpts) -> io::Result<Self> {
        let mut log = JsonLog {
            path: path.to_path_buf(),
            opts,
            file: None,
            index: None,
            size: 0,
            last_indexed: None,
            partial: [Vec::new(), Vec::new()],
            out: Vec::with_capacity(READ_OUT_CAP),
            starts: Vec::with_capacity(1024),
        };
        if log.opts.enabled {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            log.open_current()?;
        }
        Ok(log)
    }

    fn open_current(&mut self) -> io::Result<()> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(&self.path)?;
        self.size = file.metadata()?.len();
        let index = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(index_path(&self.path))?;
        // After a restart: the last record already written (if any) stays valid.
        let ilen = index.metadata()?.len();
        self.last_indexed = if ilen >= INDEX_RECORD as u64 {
            let mut rec = [0u8; INDEX_RECORD];
            let f = File::open(index_path(&self.path))?;
            f.read_exact_at(
                &mut rec,
                ilen - ilen % INDEX_RECORD as u64 - INDEX_RECORD as u64,
            )?;
            Some(u64::from_le_bytes(rec[..8].try_into().unwrap_or_default()))
        } else {
            None
        };
        self.file = Some(file);
        self.index = Some(index);
        Ok(())
    }

    /// Renames `<log>` to `<log>.1` (shifting older files up and dropping the oldest) and
    /// starts a new file. Readers holding the old file open keep reading it.
    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        self.index = None;
        let keep = self.opts.max_file.max(1);
        if keep == 1 {
            // Only one file: start it over (what dockerd does with max-file=1).
            let _ = std::fs::remove_file(&self.path);
            let _ = std::fs::remove_file(index_path(&self.path));
        } else {
            for n in (1..keep).rev() {
                let from = if n == 1 {
                    self.path.clone()
                } else {
                    rotated_path(&self.path, n - 1)
                };
                let to = rotated_path(&self.path, n);
                // The index moves first: a reader that sees the log at its new name finds
                // its index there too (or none, and falls back to scanning).
                let _ = std::fs::rename(index_path(&from), index_path(&to));
                match std::fs::rename(&from, &to) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.open_current()
    }

    /// Appends rendered entries (`self.out`) whose first entry starts at the buffer's start.
    fn append(&mut self, entry_starts: &[(usize, i64)]) -> io::Result<()> {
        if self.out.is_empty() || !self.opts.enabled {
            self.out.clear();
            return Ok(());
        }
        let res = self.append_inner(entry_starts);
        self.out.clear();
        res
    }

    fn append_inner(&mut self, entry_starts: &[(usize, i64)]) -> io::Result<()> {
        // Rotation happens on entry boundaries, so every file holds whole entries.
        let mut from = 0usize;
        for (k, &(start, nanos)) in entry_starts.iter().enumerate() {
            let end = entry_starts.get(k + 1).map_or(self.out.len(), |e| e.0);
            let len = (end - start) as u64;
            // Where this entry would start in the current file.
            let mut offset = self.size + (start - from) as u64;
            if self.opts.max_size > 0 && offset > 0 && offset + len > self.opts.max_size {
                self.write_range(from, start)?;
                from = start;
                self.rotate()?;
                offset = self.size;
            }
            let due = match self.last_indexed {
                None => true,
                Some(last) => offset >= last + INDEX_EVERY,
            };
            if due {
                // The entries before this one go first, so the index never points past the data.
                self.write_range(from, start)?;
                from = start;
                if let Some(ix) = self.index.as_mut() {
                    ix.write_all(&index_record(offset, nanos))?;
                }
                self.last_indexed = Some(offset);
            }
        }
        self.write_range(from, self.out.len())
    }

    fn write_range(&mut self, from: usize, to: usize) -> io::Result<()> {
        if from >= to {
            return Ok(());
        }
        if let Some(f) = self.file.as_mut() {
            f.write_all(&self.out[from..to])?;
        }
        self.size += (to - from) as u64;
        Ok(())
    }

    /// Records a chunk of output read at `now`: every completed line becomes one entry.
    pub fn write(&mut self, stream: Stream, data: &[u8], now: DateTime<Utc>) -> io::Result<()> {
        if !self.opts.enabled {
            return Ok(());
        }
        let time = format_time(now);
        let nanos = now.timestamp_nanos_opt().unwrap_or(0);
        let mut starts = std::mem::take(&mut self.starts);
        starts.clear();
        let buf = &mut self.partial[stream.index()];
        buf.extend_from_slice(data);
        let mut start = 0;
        loop {
            let rest = &buf[start..];
            let window = &rest[..rest.len().min(MAX_LINE)];
            if let Some(nl) = window.iter().position(|&b| b == b'\n') {
                starts.push((self.out.len(), nanos));
                entry_attrs_into(&mut self.out, &rest[..=nl], stream, &self.opts.attrs, &time);
                start += nl + 1;
            } else if rest.len() >= MAX_LINE {
                let cut = match char_boundary(&rest[..MAX_LINE]) {
                    0 => MAX_LINE,
                    n => n,
                };
                starts.push((self.out.len(), nanos));
                entry_attrs_into(&mut self.out, &rest[..cut], stream, &self.opts.attrs, &time);
                start += cut;
            } else {
                break;
            }
        }
        buf.drain(..start);
        let res = self.append(&starts);
        self.starts = starts;
        res
    }

    /// Writes out an unterminated last line of `stream` (at EOF).
    pub fn flush_partial(&mut self, stream: Stream, now: DateTime<Utc>) -> io::Result<()> {
        let buf = std::mem::take(&mut self.partial[stream.index()]);
        if buf.is_empty() || !self.opts.enabled {
            return Ok(());
        }
        let nanos = now.timestamp_nanos_opt().unwrap_or(0);
        entry_attrs_into(
            &mut self.out,
            &buf,
            stream,
            &self.opts.attrs,
            &format_time(now),
        );
        self.append(&[(0, nanos)])
    }

    /// Flushes both streams' partial lines and syncs the file.
    pub fn finish(&mut self, now: DateTime<Utc>) -> io::Result<()> {
        self.flush_partial(Stream::Stdout, now)?;
        self.flush_partial(Stream::Stderr, now)?;
        match self.file.as_mut() {
            Some(f) => f.sync_data(),
            None => Ok(()),
        }
    }
}

/// Initial capacity of the render buffer (reused for every chunk).
const READ_OUT_CAP: usize = 128 * 1024;

/// Like [`entry_into`], with an `"attrs":{...},` fragment between `stream` and `time` (where
/// dockerd's json-file driver puts it).
pub fn entry_attrs_into(out: &mut Vec<u8>, log: &[u8], stream: Stream, attrs: &[u8], time: &str) {
    if attrs.is_empty() {
        return entry_into(out, log, stream, time);
    }
    out.extend_from_slice(b"{\"log\":\"");
    escape_into(out, log);
    out.extend_from_slice(b"\",\"stream\":\"");
    out.extend_from_slice(stream.name().as_bytes());
    out.extend_from_slice(b"\",");
    out.extend_from_slice(attrs);
    out.extend_from_slice(b"\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// Renders log attributes (`{"k":"v",...}`) as the fragment [`LogOpts::attrs`] holds.
pub fn attrs_fragment(attrs: &[(String, String)]) -> Vec<u8> {
    if attrs.is_empty() {
        return Vec::new();
    }
    let mut out = b"\"attrs\":{".to_vec();
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        escape_into(&mut out, k.as_bytes());
        out.extend_from_slice(b"\":\"");
        escape_into(&mut out, v.as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b"},");
    out
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

    fn entries(p: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn rotates_on_entry_boundaries_and_keeps_max_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let opts = LogOpts {
            max_size: 1000,
            max_file: 3,
            ..Default::default()
        };
        let mut log = JsonLog::open_with(&p, opts).unwrap();
        let t = DateTime::from_timestamp(100, 0).unwrap();
        // One chunk with many lines: rotation happens inside it, between entries.
        let mut chunk = String::new();
        for i in 0..100 {
            chunk.push_str(&format!("line {i:03}\n"));
        }
        log.write(Stream::Stdout, chunk.as_bytes(), t).unwrap();
        log.finish(t).unwrap();
        assert!(rotated_path(&p, 2).exists() && !rotated_path(&p, 3).exists());
        let mut all = Vec::new();
        for f in [rotated_path(&p, 2), rotated_path(&p, 1), p.clone()] {
            let len = std::fs::metadata(&f).unwrap().len();
            assert!(len <= 1000, "{} is {len} bytes", f.display());
            // Each file starts with an index record at offset 0.
            let ix = std::fs::read(index_path(&f)).unwrap();
            assert_eq!(&ix[..INDEX_RECORD], &index_record(0, 100_000_000_000));
            all.extend(entries(&f));
        }
        // The newest entries survive, contiguous, ending with the last one.
        let nums: Vec<u32> = all
            .iter()
            .map(|e| e["log"].as_str().unwrap()[5..8].parse().unwrap())
            .collect();
        assert_eq!(*nums.last().unwrap(), 99);
        assert_eq!(nums, (nums[0]..100).collect::<Vec<_>>());
    }

    #[test]
    fn max_file_one_starts_over_and_reopen_appends() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let opts = LogOpts {
            max_size: 300,
            max_file: 1,
            ..Default::default()
        };
        let t = Utc::now();
        let mut log = JsonLog::open_with(&p, opts.clone()).unwrap();
        for i in 0..20 {
            log.write(Stream::Stderr, format!("e{i}\n").as_bytes(), t)
                .unwrap();
        }
        drop(log);
        assert!(!rotated_path(&p, 1).exists());
        assert!(std::fs::metadata(&p).unwrap().len() <= 300);
        // A restarted shim appends to the same file (and its index).
        let before = entries(&p).len();
        let mut log = JsonLog::open_with(&p, opts).unwrap();
        log.write(Stream::Stdout, b"again\n", t).unwrap();
        let after = entries(&p);
        assert!(after.len() == before + 1 || after.len() == 1);
        assert_eq!(after.last().unwrap()["log"], "again\n");
    }

    #[test]
    fn none_driver_writes_nothing_and_attrs_sit_before_time() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("none.log");
        let mut log = JsonLog::open_with(
            &p,
            LogOpts {
                enabled: false,
                ..Default::default()
            },
        )
        .unwrap();
        log.write(Stream::Stdout, b"x\n", Utc::now()).unwrap();
        log.finish(Utc::now()).unwrap();
        assert!(!p.exists());
        let q = dir.path().join("a.log");
        let attrs = attrs_fragment(&[("a".into(), "b<".into()), ("z".into(), "1".into())]);
        let mut log = JsonLog::open_with(
            &q,
            LogOpts {
                attrs,
                ..Default::default()
            },
        )
        .unwrap();
        let t = DateTime::from_timestamp(0, 0).unwrap();
        log.write(Stream::Stdout, b"hi\n", t).unwrap();
        assert_eq!(
            std::fs::read_to_string(&q).unwrap(),
            "{\"log\":\"hi\\n\",\"stream\":\"stdout\",\"attrs\":{\"a\":\"b\\u003c\",\"z\":\"1\"},\"time\":\"1970-01-01T00:00:00.000000000Z\"}\n"
        );
    }

    #[test]
    fn index_every_64k() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.log");
        let mut log = JsonLog::open_with(&p, LogOpts::default()).unwrap();
        let line = format!("{}\n", "z".repeat(1000));
        for i in 0..1000 {
            let t = DateTime::from_timestamp(i, 0).unwrap();
            log.write(Stream::Stdout, line.as_bytes(), t).unwrap();
        }
        let len = std::fs::metadata(&p).unwrap().len();
        let ix = std::fs::read(index_path(&p)).unwrap();
        let n = ix.len() / INDEX_RECORD;
        assert!(
            n as u64 >= len / INDEX_EVERY && n as u64 <= len / INDEX_EVERY + 1,
            "{n} records for {len}"
        );
        let data = std::fs::read(&p).unwrap();
        for r in ix.chunks_exact(INDEX_RECORD) {
            let off = u64::from_le_bytes(r[..8].try_into().unwrap()) as usize;
            assert!(off == 0 || data[off - 1] == b'\n');
            assert_eq!(&data[off..off + 8], b"{\"log\":\"");
        }
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
