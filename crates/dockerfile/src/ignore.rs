//! `.dockerignore` with Docker's rules: one pattern per line, `#` comments, patterns cleaned
//! (`./a` = `a`, a leading `/` dropped), Go `filepath.Match` syntax plus `**` for any number of
//! directories, `!` re-includes, the last matching pattern wins, and a pattern that matches a
//! directory matches everything below it. (The Dockerfile and `.dockerignore` themselves are
//! always sent; that is the builder's business.)

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub text: String,
    pub exclusion: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Matcher {
    pub patterns: Vec<Pattern>,
}

/// Lexical cleaning like Go's `filepath.Clean` for slash paths, relative result.
fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !p.starts_with('/') {
                    out.push("..");
                }
            }
            s => out.push(s),
        }
    }
    if out.is_empty() {
        ".".into()
    } else {
        out.join("/")
    }
}

impl Matcher {
    /// Reads `.dockerignore` content.
    pub fn parse(content: &str) -> Matcher {
        let mut patterns = Vec::new();
        for line in content.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let (exclusion, p) = match l.strip_prefix('!') {
                Some(r) => (true, r.trim()),
                None => (false, l),
            };
            let text = clean(p);
            if text == "." && !exclusion {
                // `.` or `/` would exclude the whole context: Docker ignores such a pattern's
                // effect on the root itself; keep it for children.
            }
            patterns.push(Pattern { text, exclusion });
        }
        Matcher { patterns }
    }

    /// Whether `path` (relative to the context, `/`-separated) is excluded.
    pub fn excluded(&self, path: &str) -> bool {
        let path = clean(path);
        let mut excluded = false;
        for p in &self.patterns {
            if p.exclusion == excluded {
                // Only a pattern that can change the verdict needs checking.
                if matches_or_parent(&p.text, &path) {
                    excluded = !p.exclusion;
                }
            }
        }
        excluded
    }
}

/// The pattern matches the path or one of its parent directories.
fn matches_or_parent(pattern: &str, path: &str) -> bool {
    if glob(pattern.as_bytes(), path.as_bytes()) {
        return true;
    }
    let mut p = path;
    while let Some(i) = p.rfind('/') {
        p = &p[..i];
        if glob(pattern.as_bytes(), p.as_bytes()) {
            return true;
        }
    }
    false
}

/// Go `filepath.Match` plus `**` (any run of characters including `/`; `**/` may match
/// nothing). Memoised over (pattern position, text position), so hostile patterns (many `*`
/// against long paths) stay polynomial.
pub fn glob(p: &[u8], s: &[u8]) -> bool {
    let mut memo = vec![None; (p.len() + 1) * (s.len() + 1)];
    glob_at(p, s, 0, 0, &mut memo)
}

fn glob_at(p: &[u8], s: &[u8], pi: usize, si: usize, memo: &mut Vec<Option<bool>>) -> bool {
    let key = pi * (s.len() + 1) + si;
    if let Some(v) = memo[key] {
        return v;
    }
    let (pp, ss) = (&p[pi..], &s[si..]);
    let v = if pp.is_empty() {
        ss.is_empty()
    } else {
        match pp[0] {
            b'*' if pp.get(1) == Some(&b'*') => {
                let rest = pi + 2;
                // `**/` can also match zero directories.
                (p.get(rest) == Some(&b'/') && glob_at(p, s, rest + 1, si, memo))
                    || (si..=s.len()).any(|k| glob_at(p, s, rest, k, memo))
            }
            b'*' => {
                let mut found = false;
                for k in si..=s.len() {
                    if glob_at(p, s, pi + 1, k, memo) {
                        found = true;
                        break;
                    }
                    if k < s.len() && s[k] == b'/' {
                        break;
                    }
                }
                found
            }
            b'?' => !ss.is_empty() && ss[0] != b'/' && glob_at(p, s, pi + 1, si + 1, memo),
            b'[' => {
                if ss.is_empty() || ss[0] == b'/' {
                    false
                } else {
                    match class(&pp[1..], ss[0]) {
                        Some((matched, used)) => {
                            matched && glob_at(p, s, pi + 1 + used, si + 1, memo)
                        }
                        None => false,
                    }
                }
            }
            b'\\' if pp.len() > 1 => {
                !ss.is_empty() && ss[0] == pp[1] && glob_at(p, s, pi + 2, si + 1, memo)
            }
            c => !ss.is_empty() && ss[0] == c && glob_at(p, s, pi + 1, si + 1, memo),
        }
    };
    memo[key] = Some(v);
    v
}

/// A `[...]` class (after the `[`): whether `c` matches, and how many pattern bytes it used
/// (through the closing `]`). `None` for a malformed class.
fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 0;
    let negate = matches!(p.first(), Some(b'^') | Some(b'!'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        let mut lo = p[i];
        if lo == b'\\' && i + 1 < p.len() {
            i += 1;
            lo = p[i];
        }
        let mut hi = lo;
        if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
            hi = p[i + 2];
            i += 2;
        }
        if lo <= c && c <= hi {
            matched = true;
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_rules() {
        let m =
            Matcher::parse("# comment\n*.md\n!README.md\n/temp?\n**/*.log\nbuild/\n./docs/*.txt\n");
        assert!(m.excluded("a.md"));
        assert!(!m.excluded("README.md"));
        assert!(m.excluded("temp1"));
        assert!(!m.excluded("temp12"));
        assert!(m.excluded("x/y/z.log"));
        assert!(m.excluded("z.log"));
        assert!(m.excluded("build/out/bin"));
        assert!(m.excluded("docs/a.txt"));
        assert!(!m.excluded("docs/sub/a.txt"));
        assert!(!m.excluded("src/main.rs"));
    }

    #[test]
    fn last_match_wins_and_classes() {
        let m = Matcher::parse("*\n!keep/**\nkeep/drop\n");
        assert!(m.excluded("anything"));
        assert!(!m.excluded("keep/a/b"));
        assert!(m.excluded("keep/drop"));
        assert!(glob(b"[a-c]x", b"bx"));
        assert!(!glob(b"[^a-c]x", b"bx"));
        assert!(glob(b"a\\*b", b"a*b"));
        assert!(!glob(b"a*", b"a/b"));
        assert!(glob(b"a/**", b"a/b/c"));
    }
}
