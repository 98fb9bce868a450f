//! Re-indent raw JSON the way Go's `json.Indent` does (4 spaces for `inspect`), keeping the
//! daemon's key order (serde_json's `Value` would sort keys).

/// Pretty-print one JSON document, preserving key order. Empty `{}`/`[]` stay compact.
pub fn indent(raw: &[u8], prefix: &str, unit: &str) -> String {
    let s = String::from_utf8_lossy(raw);
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(raw.len() * 2);
    let mut depth = 0usize;
    let mut i = 0;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(prefix);
        for _ in 0..depth {
            out.push_str(unit);
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' => {
                out.push('"');
                i += 1;
                while i < chars.len() {
                    let d = chars[i];
                    out.push(d);
                    i += 1;
                    if d == '\\' && i < chars.len() {
                        out.push(chars[i]);
                        i += 1;
                    } else if d == '"' {
                        break;
                    }
                }
                continue;
            }
            '{' | '[' => {
                // look ahead for an empty container
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                let close = if c == '{' { '}' } else { ']' };
                if j < chars.len() && chars[j] == close {
                    out.push(c);
                    out.push(close);
                    i = j + 1;
                    continue;
                }
                out.push(c);
                depth += 1;
                newline(&mut out, depth);
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_like_go_and_keeps_order() {
        let raw = br#"{"Id":"x","Args":[],"Config":{"Z":1,"A":["a, b",{"k":"v:}"}]},"E":{}}"#;
        let want = "{\n    \"Id\": \"x\",\n    \"Args\": [],\n    \"Config\": {\n        \"Z\": 1,\n        \"A\": [\n            \"a, b\",\n            {\n                \"k\": \"v:}\"\n            }\n        ]\n    },\n    \"E\": {}\n}";
        assert_eq!(indent(raw, "", "    "), want);
    }

    #[test]
    fn escaped_quotes_stay_inside_strings() {
        let raw = br#"{"a":"q\"{,}\\","b":null}"#;
        assert_eq!(
            indent(raw, "", "  "),
            "{\n  \"a\": \"q\\\"{,}\\\\\",\n  \"b\": null\n}"
        );
    }
}
