//! Display of JSON-message streams (pull, push, load, build): live per-layer progress bars
//! (indicatif) on a terminal, docker's plain lines otherwise (progress updates are dropped,
//! every status line is printed once). Colours only on a terminal and never with NO_COLOR.

use anyhow::Result;
use berth_client::JsonLines;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};

/// True when stdout is a terminal (progress bars, colours).
pub fn stdout_is_tty() -> bool {
    std::io::stdout().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// Colours are allowed: a terminal and no NO_COLOR.
pub fn color_enabled() -> bool {
    stdout_is_tty() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A stream error with docker's exit code (errorDetail.code, else 1).
#[derive(Debug)]
pub struct StreamFailed {
    pub message: String,
    pub code: i32,
}

impl std::fmt::Display for StreamFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for StreamFailed {}

fn progress_of(v: &Value) -> Option<(u64, Option<u64>)> {
    let d = v.get("progressDetail")?;
    let cur = d.get("current").and_then(Value::as_u64).unwrap_or(0);
    let total = d.get("total").and_then(Value::as_u64).filter(|t| *t > 0);
    if cur == 0 && total.is_none() {
        return None;
    }
    Some((cur, total))
}

/// Render one stream; `aux` sees every `aux` object (image ids, push digests).
pub async fn display(lines: &mut JsonLines, mut aux: impl FnMut(&Value)) -> Result<()> {
    let tty = stdout_is_tty();
    let mut bars = Bars::new(tty);
    loop {
        let v = match lines.next().await {
            Ok(Some(v)) => v,
            Ok(None) => break,
            Err(berth_client::Error::Stream { message, code }) => {
                bars.finish();
                return Err(StreamFailed {
                    message,
                    code: code.map(|c| c as i32).filter(|c| *c != 0).unwrap_or(1),
                }
                .into());
            }
            Err(e) => {
                bars.finish();
                return Err(e.into());
            }
        };
        if let Some(a) = v.get("aux") {
            aux(a);
            continue;
        }
        if let Some(s) = v.get("stream").and_then(Value::as_str) {
            bars.print_raw(s);
            continue;
        }
        let status = v.get("status").and_then(Value::as_str).unwrap_or("");
        let id = v.get("id").and_then(Value::as_str).unwrap_or("");
        let prog = progress_of(&v);
        if id.is_empty() {
            bars.line(status);
            continue;
        }
        bars.layer(id, status, prog);
    }
    bars.finish();
    Ok(())
}

struct Bars {
    tty: bool,
    mp: Option<MultiProgress>,
    by_id: HashMap<String, ProgressBar>,
}

impl Bars {
    fn new(tty: bool) -> Self {
        let mp = tty.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        Bars {
            tty,
            mp,
            by_id: HashMap::new(),
        }
    }

    fn style(with_bar: bool) -> ProgressStyle {
        let color = color_enabled();
        let t = match (with_bar, color) {
            (true, true) => "{prefix}: {msg:<12} [{bar:40.cyan/blue}] {bytes}/{total_bytes}",
            (true, false) => "{prefix}: {msg:<12} [{bar:40}] {bytes}/{total_bytes}",
            (false, _) => "{prefix}: {msg}",
        };
        ProgressStyle::with_template(t)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
    }

    /// A line without an id ends the current group of layers (docker does the same): the
    /// bars stay on screen as they are and later lines go below them.
    fn end_group(&mut self) {
        if !self.by_id.is_empty() {
            self.finish();
            self.mp = self
                .tty
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        }
    }

    fn line(&mut self, text: &str) {
        self.end_group();
        println!("{text}");
    }

    fn print_raw(&mut self, text: &str) {
        self.end_group();
        print!("{text}");
        let _ = std::io::stdout().flush();
    }

    fn layer(&mut self, id: &str, status: &str, prog: Option<(u64, Option<u64>)>) {
        let Some(mp) = &self.mp else {
            // plain output: progress updates are not printed, status changes are
            if prog.is_none() {
                println!("{id}: {status}");
            }
            return;
        };
        let pb = self.by_id.entry(id.to_string()).or_insert_with(|| {
            let pb = mp.add(ProgressBar::new(0));
            pb.set_style(Self::style(false));
            pb.set_prefix(id.to_string());
            pb
        });
        match prog {
            Some((cur, Some(total))) => {
                pb.set_style(Self::style(true));
                pb.set_length(total);
                pb.set_position(cur.min(total));
            }
            Some((cur, None)) => pb.set_position(cur),
            None => pb.set_style(Self::style(false)),
        }
        pb.set_message(status.to_string());
    }

    fn finish(&mut self) {
        for pb in self.by_id.values() {
            if !pb.is_finished() {
                pb.finish();
            }
        }
        self.by_id.clear();
    }
}
