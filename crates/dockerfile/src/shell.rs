//! Variable expansion as Docker's shell lexer does it for ENV, ARG, LABEL, WORKDIR, COPY, ADD,
//! EXPOSE, USER, VOLUME, STOPSIGNAL and FROM: `$x`, `${x}`, `${x:-word}`, `${x:+word}`,
//! single quotes (literal), double quotes (expanded), and the escape character.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error("missing '}}' in substitution")]
    MissingBrace,
    #[error("unsupported modifier ({0}) in substitution")]
    BadModifier(char),
    #[error("unexpected end of statement while looking for matching {0}")]
    Unterminated(char),
}

/// Expands one word; quotes are removed. `env` maps names to values (unset names expand to
/// the empty string).
pub fn process_word(
    word: &str,
    env: &BTreeMap<String, String>,
    escape: char,
) -> Result<String, ExpandError> {
    Ok(process(word, env, escape, false)?.join(""))
}

/// Expands and splits on unquoted whitespace (EXPOSE, VOLUME in shell form, ...).
pub fn process_words(
    word: &str,
    env: &BTreeMap<String, String>,
    escape: char,
) -> Result<Vec<String>, ExpandError> {
    process(word, env, escape, true)
}

fn process(
    word: &str,
    env: &BTreeMap<String, String>,
    escape: char,
    split: bool,
) -> Result<Vec<String>, ExpandError> {
    let chars: Vec<char> = word.chars().collect();
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == escape {
            i += 1;
            if i < chars.len() {
                cur.push(chars[i]);
                in_word = true;
            }
            i += 1;
            continue;
        }
        match c {
            '\'' => {
                i += 1;
                let start = i;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(ExpandError::Unterminated('\''));
                }
                cur.extend(&chars[start..i]);
                in_word = true;
                i += 1;
            }
            '"' => {
                i += 1;
                loop {
                    if i >= chars.len() {
                        return Err(ExpandError::Unterminated('"'));
                    }
                    let d = chars[i];
                    if d == '"' {
                        i += 1;
                        break;
                    }
                    if d == escape && i + 1 < chars.len() && matches!(chars[i + 1], '"' | '$')
                        || (d == escape && i + 1 < chars.len() && chars[i + 1] == escape)
                    {
                        cur.push(chars[i + 1]);
                        i += 2;
                        continue;
                    }
                    if d == '$' {
                        let (v, n) = variable(&chars, i, env, escape)?;
                        cur.push_str(&v);
                        i = n;
                        continue;
                    }
                    cur.push(d);
                    i += 1;
                }
                in_word = true;
            }
            '$' => {
                let (v, n) = variable(&chars, i, env, escape)?;
                if split {
                    // Unquoted expansions split too.
                    let mut parts = v.split(char::is_whitespace).peekable();
                    let mut first = true;
                    while let Some(p) = parts.next() {
                        if !first && in_word {
                            words.push(std::mem::take(&mut cur));
                            in_word = false;
                        }
                        first = false;
                        if !p.is_empty() {
                            cur.push_str(p);
                            in_word = true;
                        }
                    }
                } else {
                    cur.push_str(&v);
                    in_word = true;
                }
                i = n;
            }
            c if split && c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
                i += 1;
            }
            c => {
                cur.push(c);
                in_word = true;
                i += 1;
            }
        }
    }
    if in_word || !split {
        words.push(cur);
    }
    Ok(words)
}

/// `$name`, `${name}`, `${name:-word}`, `${name:+word}` at `chars[i] == '$'`; returns the value
/// and the index after it. A `$` not followed by a name is literal.
fn variable(
    chars: &[char],
    i: usize,
    env: &BTreeMap<String, String>,
    escape: char,
) -> Result<(String, usize), ExpandError> {
    let mut j = i + 1;
    if j >= chars.len() {
        return Ok(("$".into(), j));
    }
    if chars[j] == '{' {
        j += 1;
        let start = j;
        while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
            j += 1;
        }
        let name: String = chars[start..j].iter().collect();
        if j >= chars.len() {
            return Err(ExpandError::MissingBrace);
        }
        if chars[j] == '}' {
            return Ok((env.get(&name).cloned().unwrap_or_default(), j + 1));
        }
        if chars[j] != ':' {
            return Err(ExpandError::BadModifier(chars[j]));
        }
        j += 1;
        if j >= chars.len() {
            return Err(ExpandError::MissingBrace);
        }
        let modifier = chars[j];
        j += 1;
        // The word runs to the matching '}' (nested ${...} allowed).
        let wstart = j;
        let mut depth = 1;
        while j < chars.len() {
            match chars[j] {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        if j >= chars.len() {
            return Err(ExpandError::MissingBrace);
        }
        let word: String = chars[wstart..j].iter().collect();
        let value = env.get(&name).filter(|v| !v.is_empty());
        let out = match modifier {
            '-' => match value {
                Some(v) => v.clone(),
                None => process_word(&word, env, escape)?,
            },
            '+' => match value {
                Some(_) => process_word(&word, env, escape)?,
                None => String::new(),
            },
            other => return Err(ExpandError::BadModifier(other)),
        };
        return Ok((out, j + 1));
    }
    let start = j;
    while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
        j += 1;
    }
    if j == start {
        return Ok(("$".into(), start));
    }
    let name: String = chars[start..j].iter().collect();
    Ok((env.get(&name).cloned().unwrap_or_default(), j))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        [("a", "1"), ("b", "two words"), ("e", "")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expansions() {
        let e = env();
        let p = |w: &str| process_word(w, &e, '\\').unwrap();
        assert_eq!(p("$a"), "1");
        assert_eq!(p("${a}x"), "1x");
        assert_eq!(p("x$ay"), "x");
        assert_eq!(p("${nope:-dflt}"), "dflt");
        assert_eq!(p("${e:-dflt}"), "dflt");
        assert_eq!(p("${a:-dflt}"), "1");
        assert_eq!(p("${a:+set}"), "set");
        assert_eq!(p("${nope:+set}"), "");
        assert_eq!(p("'$a'"), "$a");
        assert_eq!(p("\"$a $b\""), "1 two words");
        assert_eq!(p("\\$a"), "$a");
        assert_eq!(p("cost $"), "cost $");
        assert_eq!(p("${nope:-${a}}"), "1");
        assert!(matches!(
            process_word("${a", &e, '\\'),
            Err(ExpandError::MissingBrace)
        ));
        assert!(matches!(
            process_word("${a:?x}", &e, '\\'),
            Err(ExpandError::BadModifier('?'))
        ));
        assert!(matches!(
            process_word("'abc", &e, '\\'),
            Err(ExpandError::Unterminated('\''))
        ));
    }

    #[test]
    fn words_split_like_docker() {
        let e = env();
        assert_eq!(
            process_words("80/tcp $a  \"x y\"", &e, '\\').unwrap(),
            ["80/tcp", "1", "x y"]
        );
        assert_eq!(process_words("$b", &e, '\\').unwrap(), ["two", "words"]);
        assert_eq!(process_words("`$a", &e, '`').unwrap(), ["$a"]);
    }
}
