//! Rendering of the classic builder's stream (`POST /build`): as is (docker's classic
//! output, the default off a terminal), BuildKit's plain style (`--progress plain`: one `#N`
//! vertex per step, CACHED, output lines with their time, DONE with the step's duration), or
//! the terminal style (`--progress tty`/auto on a terminal: bold steps, cache hits in colour,
//! each step's time).

use std::time::Instant;

/// Which rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Classic,
    Plain,
    Tty,
}

impl Style {
    /// `--progress` (or `BUILDKIT_PROGRESS`): auto, plain, tty, or `rawjson`/`quiet` as
    /// classic.
    pub fn pick(flag: Option<&str>, tty: bool) -> Style {
        let v = flag
            .map(str::to_string)
            .or_else(|| std::env::var("BUILDKIT_PROGRESS").ok())
            .unwrap_or_else(|| "auto".into());
        match v.as_str() {
            "plain" => Style::Plain,
            "tty" => Style::Tty,
            "auto" if tty => Style::Tty,
            _ => Style::Classic,
        }
    }
}

/// Line-buffered renderer; returns the text to print for each chunk of the stream.
pub struct Renderer {
    style: Style,
    color: bool,
    buf: String,
    step: usize,
    steps: usize,
    step_started: Option<Instant>,
    cached: bool,
    started: Instant,
}

impl Renderer {
    pub fn new(style: Style, color: bool) -> Self {
        Renderer {
            style,
            color,
            buf: String::new(),
            step: 0,
            steps: 0,
            step_started: None,
            cached: false,
            started: Instant::now(),
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    /// Feed one `stream` value.
    pub fn feed(&mut self, text: &str) -> String {
        if self.style == Style::Classic {
            return text.to_string();
        }
        self.buf.push_str(text);
        let mut out = String::new();
        while let Some(i) = self.buf.find('\n') {
            let line: String = self.buf.drain(..=i).collect();
            out.push_str(&self.line(line.trim_end_matches('\n')));
        }
        out
    }

    fn close_step(&mut self) -> String {
        let Some(t) = self.step_started.take() else {
            return String::new();
        };
        let secs = t.elapsed().as_secs_f64();
        match self.style {
            Style::Plain if self.cached => String::new(),
            Style::Plain => format!("#{} DONE {secs:.1}s\n", self.step),
            _ if self.cached => String::new(),
            _ => format!(
                "{}\n",
                self.paint("2", &format!(" ---> done in {secs:.1}s"))
            ),
        }
    }

    fn line(&mut self, l: &str) -> String {
        if let Some(rest) = l.strip_prefix("Step ") {
            let mut out = self.close_step();
            let (nm, instr) = rest.split_once(" : ").unwrap_or((rest, ""));
            let (n, m) = nm.split_once('/').unwrap_or((nm, nm));
            self.step = n.parse().unwrap_or(self.step + 1);
            self.steps = m.parse().unwrap_or(self.steps);
            self.step_started = Some(Instant::now());
            self.cached = false;
            match self.style {
                Style::Plain => out.push_str(&format!(
                    "#{} [{}/{}] {instr}\n",
                    self.step, self.step, self.steps
                )),
                _ => out.push_str(&format!("{}\n", self.paint("1", l))),
            }
            return out;
        }
        let t = l.trim();
        if t == "---> Using cache" {
            self.cached = true;
            return match self.style {
                Style::Plain => format!("#{} CACHED\n", self.step),
                _ => format!("{}\n", self.paint("36", l)),
            };
        }
        if let Some(b) = t.strip_prefix("Successfully built ") {
            let mut out = self.close_step();
            match self.style {
                Style::Plain => {
                    let n = self.steps + 1;
                    out.push_str(&format!(
                        "#{n} exporting to image\n#{n} writing image {b} done\n"
                    ));
                }
                _ => {
                    out.push_str(l);
                    out.push('\n');
                }
            }
            return out;
        }
        if let Some(tag) = t.strip_prefix("Successfully tagged ") {
            return match self.style {
                Style::Plain => format!("#{} naming to {tag} done\n", self.steps + 1),
                _ => format!("{l}\n"),
            };
        }
        match self.style {
            Style::Plain => {
                // the classic builder's bookkeeping lines have no BuildKit counterpart
                if t.starts_with("---> ") || t.starts_with("Removing intermediate container ") {
                    return String::new();
                }
                let secs = self.step_started.map_or(0.0, |s| s.elapsed().as_secs_f64());
                format!("#{} {secs:.3} {l}\n", self.step)
            }
            _ => format!("{l}\n"),
        }
    }

    /// The end of the stream.
    pub fn finish(&mut self) -> String {
        let mut out = String::new();
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            out.push_str(&self.line(&rest));
        }
        out.push_str(&self.close_step());
        match self.style {
            Style::Plain if self.steps > 0 => out.push_str(&format!("#{} DONE\n", self.steps + 1)),
            Style::Tty if self.steps > 0 => out.push_str(&format!(
                "{}\n",
                self.paint(
                    "2",
                    &format!(
                        "Build finished in {:.1}s",
                        self.started.elapsed().as_secs_f64()
                    )
                )
            )),
            _ => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[&str] = &[
        "Step 1/3 : FROM busybox:local",
        "\n",
        " ---> 5f0eb2cca796\n",
        "Step 2/3 : COPY msg.txt /app/msg.txt",
        "\n",
        " ---> Using cache\n",
        " ---> fa8081ea6738\n",
        "Step 3/3 : RUN cat /app/msg.txt",
        "\n",
        " ---> Running in fe0c3b17fa42\n",
        "message file\n",
        "Removing intermediate container fe0c3b17fa42\n",
        " ---> 77276f8bf37e\n",
        "Successfully built 77276f8bf37e\n",
        "Successfully tagged built:v1\n",
    ];

    fn render(style: Style) -> String {
        let mut r = Renderer::new(style, false);
        let mut out: String = SAMPLE.iter().map(|c| r.feed(c)).collect();
        out.push_str(&r.finish());
        out
    }

    #[test]
    fn classic_passes_through() {
        assert_eq!(render(Style::Classic), SAMPLE.concat());
    }

    #[test]
    fn buildkit_plain_vertices() {
        let out = render(Style::Plain);
        let masked: Vec<String> = out
            .lines()
            .map(|l| {
                l.split(' ')
                    .map(|w| {
                        if w.ends_with('s') && w[..w.len() - 1].parse::<f64>().is_ok() {
                            "T"
                        } else if w.parse::<f64>().is_ok() {
                            "T"
                        } else {
                            w
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        assert_eq!(
            masked,
            vec![
                "#1 [1/3] FROM busybox:local",
                "#1 DONE T",
                "#2 [2/3] COPY msg.txt /app/msg.txt",
                "#2 CACHED",
                "#3 [3/3] RUN cat /app/msg.txt",
                "#3 T message file",
                "#3 DONE T",
                "#4 exporting to image",
                "#4 writing image 77276f8bf37e done",
                "#4 naming to built:v1 done",
                "#4 DONE",
            ]
        );
    }

    #[test]
    fn tty_style_marks_steps_and_times() {
        let out = render(Style::Tty);
        assert!(out.contains("Step 1/3 : FROM busybox:local\n ---> 5f0eb2cca796\n ---> done in"));
        assert!(out.contains("Build finished in"));
        assert_eq!(Style::pick(Some("plain"), true), Style::Plain);
        assert_eq!(Style::pick(Some("auto"), false), Style::Classic);
        assert_eq!(Style::pick(Some("auto"), true), Style::Tty);
    }
}
