//! The Dockerfile parser: directives, comments, line continuations (with empty and comment
//! lines inside them), heredocs, flags, and the JSON (exec) vs shell forms, following the
//! classic builder's rules. Errors name the line, in dockerd's words.

use serde::Serialize;

/// A parse error: `dockerfile parse error line N: <what>` (dockerd's wording).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dockerfile parse error line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// The arguments of an instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "form", content = "value", rename_all = "lowercase")]
pub enum Args {
    /// `["a", "b"]`
    Exec(Vec<String>),
    /// Anything else, verbatim (after joining continuation lines).
    Shell(String),
}

/// A heredoc body (`<<EOF` ... `EOF`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    pub name: String,
    pub content: String,
    /// `<<-EOF` strips leading tabs.
    pub chomp: bool,
    /// `<<'EOF'` / `<<"EOF"`: no variable expansion inside.
    pub expand: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instruction {
    /// Upper-case keyword, e.g. `RUN`.
    pub cmd: String,
    /// `--name=value` flags before the arguments, in order.
    pub flags: Vec<(String, String)>,
    pub args: Args,
    pub heredocs: Vec<Heredoc>,
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// The original text (continuations joined), for `Step N/M : ...` and history.
    pub original: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dockerfile {
    pub escape: char,
    /// `# syntax=` is accepted and recorded, never acted on (the classic builder).
    pub syntax: Option<String>,
    pub instructions: Vec<Instruction>,
}

pub const INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Instructions whose leading `--flags` are parsed out of the arguments.
const TAKES_FLAGS: &[&str] = &["ADD", "COPY", "FROM", "RUN", "HEALTHCHECK"];

/// Instructions that may carry heredocs.
const TAKES_HEREDOCS: &[&str] = &["RUN", "COPY", "ADD"];

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

/// Parses a whole Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut escape = '\\';
    let mut syntax = None;
    let mut i = 0;
    // Directives: only at the very top, before anything else (including other comments).
    let mut seen = std::collections::BTreeSet::new();
    while i < lines.len() {
        let t = lines[i].trim();
        let Some(rest) = t.strip_prefix('#') else {
            break;
        };
        let Some((k, v)) = rest.split_once('=') else {
            break;
        };
        let key = k.trim().to_ascii_lowercase();
        if key.is_empty() || key.contains(char::is_whitespace) {
            break;
        }
        match key.as_str() {
            "escape" | "syntax" => {
                if !seen.insert(key.clone()) {
                    return Err(err(
                        i + 1,
                        format!("only one {key} parser directive can be used"),
                    ));
                }
                if key == "escape" {
                    escape = match v.trim() {
                        "\\" => '\\',
                        "`" => '`',
                        other => {
                            return Err(err(
                                i + 1,
                                format!("invalid ESCAPE '{other}'. Must be ` or \\"),
                            ))
                        }
                    };
                } else {
                    syntax = Some(v.trim().to_string());
                }
            }
            _ => break,
        }
        i += 1;
    }
    let mut out = Vec::new();
    while i < lines.len() {
        let raw = lines[i];
        let t = raw.trim_start();
        if t.is_empty() || t.starts_with('#') {
            i += 1;
            continue;
        }
        let start = i + 1;
        // Join continuation lines: an escape char at the end (trailing whitespace allowed);
        // comment lines and empty lines inside a continuation are skipped.
        let mut joined = String::new();
        let mut cur = t.to_string();
        loop {
            let trimmed = cur.trim_end();
            if let Some(body) = trimmed.strip_suffix(escape) {
                joined.push_str(body);
                i += 1;
                // next non-comment, non-empty line
                loop {
                    if i >= lines.len() {
                        cur = String::new();
                        break;
                    }
                    let n = lines[i].trim_start();
                    if n.starts_with('#') || n.trim().is_empty() {
                        i += 1;
                        continue;
                    }
                    cur = lines[i].to_string();
                    break;
                }
                if cur.is_empty() && i >= lines.len() {
                    break;
                }
            } else {
                joined.push_str(&cur);
                i += 1;
                break;
            }
        }
        let joined = joined.trim().to_string();
        let (word, rest) = match joined.find(char::is_whitespace) {
            Some(p) => (&joined[..p], joined[p..].trim_start()),
            None => (joined.as_str(), ""),
        };
        let cmd = word.to_ascii_uppercase();
        if !INSTRUCTIONS.contains(&cmd.as_str()) {
            return Err(err(
                start,
                format!("unknown instruction: {}", word.to_ascii_uppercase()),
            ));
        }
        let (flags, rest) = if TAKES_FLAGS.contains(&cmd.as_str()) {
            split_flags(rest)
        } else {
            (Vec::new(), rest.to_string())
        };
        // Heredocs: `<<EOF`, `<<-EOF`, `<<"EOF"` words in the arguments; their bodies follow.
        let mut heredocs = Vec::new();
        if TAKES_HEREDOCS.contains(&cmd.as_str()) {
            for w in rest.split_whitespace() {
                let Some(h) = w.strip_prefix("<<") else {
                    continue;
                };
                let (chomp, h) = match h.strip_prefix('-') {
                    Some(x) => (true, x),
                    None => (false, h),
                };
                let (expand, name) = if (h.starts_with('"') && h.ends_with('"')
                    || h.starts_with('\'') && h.ends_with('\''))
                    && h.len() >= 2
                {
                    (false, &h[1..h.len() - 1])
                } else {
                    (true, h)
                };
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    continue;
                }
                let mut content = String::new();
                let mut closed = false;
                while i < lines.len() {
                    let l = lines[i];
                    i += 1;
                    let cmp = if chomp { l.trim_start_matches('\t') } else { l };
                    if cmp == name {
                        closed = true;
                        break;
                    }
                    content.push_str(if chomp { l.trim_start_matches('\t') } else { l });
                    content.push('\n');
                }
                if !closed {
                    return Err(err(start, format!("unterminated heredoc {name}")));
                }
                heredocs.push(Heredoc {
                    name: name.to_string(),
                    content,
                    chomp,
                    expand,
                });
            }
        }
        let args = match parse_json_array(&rest) {
            Some(v) => Args::Exec(v),
            None => Args::Shell(rest.clone()),
        };
        validate(&cmd, &args, start)?;
        out.push(Instruction {
            cmd,
            flags,
            args,
            heredocs,
            line: start,
            original: joined.clone(),
        });
    }
    Ok(Dockerfile {
        escape,
        syntax,
        instructions: out,
    })
}

/// `--name=value` and `--name` words at the start of the arguments.
fn split_flags(rest: &str) -> (Vec<(String, String)>, String) {
    let mut flags = Vec::new();
    let mut r = rest.trim_start();
    while let Some(f) = r.strip_prefix("--") {
        let end = f.find(char::is_whitespace).unwrap_or(f.len());
        let word = &f[..end];
        match word.split_once('=') {
            Some((k, v)) => flags.push((k.to_string(), v.to_string())),
            None => flags.push((word.to_string(), "true".into())),
        }
        r = f[end..].trim_start();
    }
    (flags, r.to_string())
}

/// The exec form: a JSON array of strings (anything else is the shell form).
fn parse_json_array(s: &str) -> Option<Vec<String>> {
    let t = s.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

fn validate(cmd: &str, args: &Args, line: usize) -> Result<(), ParseError> {
    let empty = match args {
        Args::Exec(v) => v.is_empty() && !matches!(cmd, "CMD" | "ENTRYPOINT" | "SHELL"),
        Args::Shell(s) => s.trim().is_empty(),
    };
    let may_be_empty = matches!(cmd, "CMD" | "ENTRYPOINT");
    if empty && !may_be_empty {
        return Err(err(line, format!("{cmd} requires at least one argument")));
    }
    if cmd == "SHELL" && !matches!(args, Args::Exec(_)) {
        return Err(err(line, "SHELL requires the arguments to be in JSON form"));
    }
    Ok(())
}

/// `KEY=value KEY2="v 2"` (ENV, LABEL, ARG) or the legacy `ENV key value` form. Values keep
/// their quotes removed; expansion happens later (crate::shell).
pub fn parse_key_values(
    cmd: &str,
    s: &str,
    line: usize,
) -> Result<Vec<(String, Option<String>)>, ParseError> {
    let words = split_words_keep_quotes(s);
    if words.is_empty() {
        return Err(err(line, format!("{cmd} requires at least one argument")));
    }
    if !words[0].contains('=') && cmd != "ARG" {
        // Legacy form: the first word is the key, the rest (verbatim) the value.
        if words.len() < 2 {
            return Err(err(line, format!("{cmd} must have two arguments")));
        }
        let key = words[0].clone();
        let value = s.trim_start()[key.len()..].trim().to_string();
        return Ok(vec![(key, Some(unquote(&value)))]);
    }
    let mut out = Vec::new();
    for w in words {
        match w.split_once('=') {
            Some((k, v)) => {
                if k.is_empty() {
                    return Err(err(line, format!("{cmd} names can not be blank")));
                }
                out.push((k.to_string(), Some(unquote(v))));
            }
            None if cmd == "ARG" => out.push((w.clone(), None)),
            None => {
                return Err(err(
                    line,
                    format!(
                        "Syntax error - can't find = in \"{w}\". Must be of the form: name=value"
                    ),
                ))
            }
        }
    }
    Ok(out)
}

/// Splits on unquoted whitespace, keeping quotes and escapes in the words.
fn split_words_keep_quotes(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (_, '\\') => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (_, c) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Removes one level of shell quoting (quotes and backslash escapes).
pub fn unquote(s: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => out.push(c),
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            (_, c) => out.push(c),
        }
    }
    out
}
