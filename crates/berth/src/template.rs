//! A small evaluator for the Go `text/template` subset used with `--format`:
//! `{{.Field}}`, `{{.A.B}}`, `{{json .X}}`, pipelines (`{{.X | json}}`), `{{range .X}}…{{end}}`,
//! `{{if .X}}…{{else}}…{{end}}`, `{{with .X}}…{{end}}`, `{{- trim -}}` markers, string/number
//! literals, `$` for the root, variables (`{{$x := .A}}`, `{{range $k, $v := .M}}`) and functions json, upper, lower, title, len, index, join,
//! split, print, println, printf (%s %d %v %q), eq, ne, not, and, or, and docker's truncate
//! and pad.
//! Data is JSON (`serde_json::Value`), printed the way Go prints decoded JSON values.

use serde_json::Value;

#[derive(Debug)]
pub enum TemplateError {
    Parse(String),
    Exec(String),
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateError::Parse(m) => write!(f, "template parsing error: {m}"),
            TemplateError::Exec(m) => write!(f, "template: executing: {m}"),
        }
    }
}
impl std::error::Error for TemplateError {}

type R<T> = Result<T, TemplateError>;

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Dot(Vec<String>),         // . or .A.B
    Root(Vec<String>),        // $ or $.A.B
    Var(String, Vec<String>), // $name or $name.A.B
    Str(String),
    Num(f64),
    Bool(bool),
    Ident(String), // function name
    Sub(Pipeline), // ( pipeline ) optionally followed by .Field chain
}

type Command = Vec<Operand>;
type Pipeline = Vec<Command>;

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    Range(
        Pipeline,
        Vec<Node>,
        Vec<Node>,
        Option<String>,
        Option<String>,
    ),
    Assign(String, Pipeline),
    With(Pipeline, Vec<Node>, Vec<Node>),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

enum Piece {
    Text(String),
    Action(String),
}

fn lex(src: &str) -> R<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        let mut text = rest[..start].to_string();
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| TemplateError::Parse("unclosed action".into()))?;
        let mut inner = &after[..end];
        if let Some(s) = inner.strip_prefix("- ") {
            text = text.trim_end().to_string();
            inner = s;
        } else if inner == "-" {
            text = text.trim_end().to_string();
            inner = "";
        }
        let mut trim_right = false;
        if let Some(s) = inner.strip_suffix(" -") {
            trim_right = true;
            inner = s;
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        pieces.push(Piece::Action(inner.trim().to_string()));
        rest = &after[end + 2..];
        if trim_right {
            rest = rest.trim_start();
        }
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    Ok(pieces)
}

fn tokenize(s: &str) -> R<Vec<String>> {
    let mut toks = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '`' {
            let q = c;
            let mut j = i + 1;
            let mut tok = String::from(q);
            while j < chars.len() && chars[j] != q {
                if q == '"' && chars[j] == '\\' && j + 1 < chars.len() {
                    tok.push(chars[j]);
                    j += 1;
                }
                tok.push(chars[j]);
                j += 1;
            }
            if j >= chars.len() {
                return Err(TemplateError::Parse(format!(
                    "unterminated quoted string in {s:?}"
                )));
            }
            tok.push(q);
            toks.push(tok);
            i = j + 1;
        } else if c == '|' || c == '(' || c == ')' {
            toks.push(c.to_string());
            i += 1;
        } else {
            let mut j = i;
            let mut tok = String::new();
            while j < chars.len() && !chars[j].is_whitespace() && !"|()\"`".contains(chars[j]) {
                tok.push(chars[j]);
                j += 1;
            }
            toks.push(tok);
            i = j;
        }
    }
    Ok(toks)
}

fn fields(path: &str) -> Vec<String> {
    path.split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_pipeline(toks: &[String], pos: &mut usize) -> R<Pipeline> {
    let mut pipe = Vec::new();
    let mut cmd: Command = Vec::new();
    while *pos < toks.len() {
        let t = &toks[*pos];
        *pos += 1;
        match t.as_str() {
            "|" => {
                if cmd.is_empty() {
                    return Err(TemplateError::Parse("missing command before |".into()));
                }
                pipe.push(std::mem::take(&mut cmd));
            }
            ")" => {
                *pos -= 1;
                break;
            }
            "(" => {
                let sub = parse_pipeline(toks, pos)?;
                if toks.get(*pos).map(String::as_str) != Some(")") {
                    return Err(TemplateError::Parse("unclosed (".into()));
                }
                *pos += 1;
                cmd.push(Operand::Sub(sub));
            }
            _ => cmd.push(parse_operand(t)?),
        }
    }
    if cmd.is_empty() {
        return Err(TemplateError::Parse("missing value for command".into()));
    }
    pipe.push(cmd);
    Ok(pipe)
}

fn parse_operand(t: &str) -> R<Operand> {
    if let Some(rest) = t.strip_prefix('$') {
        if rest.starts_with(|c: char| c.is_alphanumeric() || c == '_') {
            let (name, path) = rest.split_once('.').unwrap_or((rest, ""));
            return Ok(Operand::Var(name.to_string(), fields(path)));
        }
        return Ok(Operand::Root(fields(rest)));
    }
    if t.starts_with('.') {
        return Ok(Operand::Dot(fields(t)));
    }
    if (t.starts_with('"') && t.ends_with('"')) && t.len() >= 2 {
        let s: String = serde_json::from_str(t)
            .map_err(|_| TemplateError::Parse(format!("bad string literal {t}")))?;
        return Ok(Operand::Str(s));
    }
    if t.starts_with('`') && t.ends_with('`') && t.len() >= 2 {
        return Ok(Operand::Str(t[1..t.len() - 1].to_string()));
    }
    if t == "true" || t == "false" {
        return Ok(Operand::Bool(t == "true"));
    }
    if let Ok(n) = t.parse::<f64>() {
        return Ok(Operand::Num(n));
    }
    if t.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return Ok(Operand::Ident(t.to_string()));
    }
    Err(TemplateError::Parse(format!("unexpected {t:?} in command")))
}

fn parse_action(s: &str) -> R<Pipeline> {
    let toks = tokenize(s)?;
    let mut pos = 0;
    let p = parse_pipeline(&toks, &mut pos)?;
    if pos != toks.len() {
        return Err(TemplateError::Parse(format!("unexpected ) in {s:?}")));
    }
    Ok(p)
}

/// `$a, $b := rest` / `$a := rest` -> (["a", "b"], rest); otherwise ([], whole).
fn split_decl(s: &str) -> (Vec<String>, &str) {
    let Some((left, rest)) = s.split_once(":=") else {
        return (Vec::new(), s);
    };
    let names: Vec<&str> = left.split(',').map(str::trim).collect();
    if names.is_empty()
        || !names.iter().all(|n| {
            n.len() > 1
                && n.starts_with('$')
                && n[1..].chars().all(|c| c.is_alphanumeric() || c == '_')
        })
    {
        return (Vec::new(), s);
    }
    (
        names.iter().map(|n| n[1..].to_string()).collect(),
        rest.trim(),
    )
}

enum Stop {
    End,
    Else,
    Eof,
}

fn parse_nodes(
    pieces: &mut std::iter::Peekable<std::vec::IntoIter<Piece>>,
) -> R<(Vec<Node>, Stop)> {
    let mut nodes = Vec::new();
    while let Some(p) = pieces.next() {
        match p {
            Piece::Text(t) => nodes.push(Node::Text(t)),
            Piece::Action(a) => {
                let (kw, rest) = match a.split_once(char::is_whitespace) {
                    Some((k, r)) => (k, r.trim()),
                    None => (a.as_str(), ""),
                };
                match kw {
                    "end" => return Ok((nodes, Stop::End)),
                    "else" => return Ok((nodes, Stop::Else)),
                    "if" | "range" | "with" => {
                        let (decl, rest) = split_decl(rest);
                        let pipe = parse_action(rest)?;
                        let (body, stop) = parse_nodes(pieces)?;
                        let els = match stop {
                            Stop::End => Vec::new(),
                            Stop::Else => match parse_nodes(pieces)? {
                                (e, Stop::End) => e,
                                _ => {
                                    return Err(TemplateError::Parse(format!(
                                        "missing {{{{end}}}} for {kw}"
                                    )))
                                }
                            },
                            Stop::Eof => {
                                return Err(TemplateError::Parse(format!(
                                    "unexpected EOF: missing {{{{end}}}} for {kw}"
                                )))
                            }
                        };
                        nodes.push(match kw {
                            "if" => Node::If(pipe, body, els),
                            "range" => {
                                let (k, v) = match decl.as_slice() {
                                    [] => (None, None),
                                    [v] => (None, Some(v.clone())),
                                    [k, v, ..] => (Some(k.clone()), Some(v.clone())),
                                };
                                Node::Range(pipe, body, els, k, v)
                            }
                            _ => Node::With(pipe, body, els),
                        });
                    }
                    _ if a.starts_with("/*") => {}
                    _ => match split_decl(&a) {
                        (d, rest) if d.len() == 1 => {
                            nodes.push(Node::Assign(d[0].clone(), parse_action(rest)?))
                        }
                        _ => nodes.push(Node::Action(parse_action(&a)?)),
                    },
                }
            }
        }
    }
    Ok((nodes, Stop::Eof))
}

impl Template {
    pub fn parse(src: &str) -> R<Self> {
        let mut it = lex(src)?.into_iter().peekable();
        match parse_nodes(&mut it)? {
            (nodes, Stop::Eof) => Ok(Template { nodes }),
            (_, Stop::End) => Err(TemplateError::Parse("unexpected {{end}}".into())),
            (_, Stop::Else) => Err(TemplateError::Parse("unexpected {{else}}".into())),
        }
    }

    pub fn execute(&self, data: &Value) -> R<String> {
        let mut out = String::new();
        let scope = Scope {
            root: data.clone(),
            vars: std::cell::RefCell::new(Vec::new()),
        };
        exec_nodes(&self.nodes, data, &scope, &mut out)?;
        Ok(out)
    }
}

/// Parse and run in one go.
pub fn render(src: &str, data: &Value) -> R<String> {
    Template::parse(src)?.execute(data)
}

/// `$` and the variables in scope (`{{$x := ...}}`, `{{range $k, $v := ...}}`).
struct Scope {
    root: Value,
    vars: std::cell::RefCell<Vec<(String, Value)>>,
}

/// A template value: JSON, or "missing" (a map key that does not exist).
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Json(Value),
    Missing,
}

fn truthy(v: &Val) -> bool {
    match v {
        Val::Missing => false,
        Val::Json(j) => match j {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
        },
    }
}

fn exec_nodes(nodes: &[Node], dot: &Value, root: &Scope, out: &mut String) -> R<()> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => {
                let v = eval_pipeline(p, dot, root)?;
                out.push_str(&print_val(&v));
            }
            Node::If(p, body, els) => {
                let v = eval_pipeline(p, dot, root)?;
                exec_nodes(if truthy(&v) { body } else { els }, dot, root, out)?;
            }
            Node::With(p, body, els) => {
                let v = eval_pipeline(p, dot, root)?;
                if truthy(&v) {
                    let Val::Json(j) = v else { unreachable!() };
                    exec_nodes(body, &j, root, out)?;
                } else {
                    exec_nodes(els, dot, root, out)?;
                }
            }
            Node::Assign(name, p) => {
                let v = match eval_pipeline(p, dot, root)? {
                    Val::Json(j) => j,
                    Val::Missing => Value::Null,
                };
                root.vars.borrow_mut().push((name.clone(), v));
            }
            Node::Range(p, body, els, kvar, vvar) => {
                let v = eval_pipeline(p, dot, root)?;
                let items: Vec<(Value, Value)> = match v {
                    Val::Json(Value::Array(a)) => a
                        .into_iter()
                        .enumerate()
                        .map(|(i, x)| (Value::from(i), x))
                        .collect(),
                    // Go ranges over map values in key order
                    Val::Json(Value::Object(o)) => {
                        let mut keys: Vec<_> = o.keys().cloned().collect();
                        keys.sort();
                        keys.into_iter()
                            .map(|k| (Value::String(k.clone()), o[&k].clone()))
                            .collect()
                    }
                    Val::Json(Value::Null) | Val::Missing => Vec::new(),
                    Val::Json(other) => {
                        return Err(TemplateError::Exec(format!(
                            "range can't iterate over {}",
                            print_json(&other)
                        )))
                    }
                };
                if items.is_empty() {
                    exec_nodes(els, dot, root, out)?;
                }
                for (k, it) in &items {
                    let mark = root.vars.borrow().len();
                    if let Some(kv) = kvar {
                        root.vars.borrow_mut().push((kv.clone(), k.clone()));
                    }
                    if let Some(vv) = vvar {
                        root.vars.borrow_mut().push((vv.clone(), it.clone()));
                    }
                    let r = exec_nodes(body, it, root, out);
                    root.vars.borrow_mut().truncate(mark);
                    r?;
                }
            }
        }
    }
    Ok(())
}

fn lookup(base: &Value, path: &[String]) -> R<Val> {
    let mut cur = base.clone();
    for (i, f) in path.iter().enumerate() {
        match cur {
            Value::Object(mut o) => match o.remove(f) {
                Some(v) => cur = v,
                None => return Ok(Val::Missing),
            },
            Value::Null if i > 0 => return Ok(Val::Missing),
            other => {
                return Err(TemplateError::Exec(format!(
                    "can't evaluate field {f} in type {}",
                    type_name(&other)
                )))
            }
        }
    }
    Ok(Val::Json(cur))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "interface {}",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn eval_pipeline(p: &Pipeline, dot: &Value, root: &Scope) -> R<Val> {
    let mut prev: Option<Val> = None;
    for cmd in p {
        prev = Some(eval_command(cmd, dot, root, prev)?);
    }
    prev.ok_or_else(|| TemplateError::Exec("empty pipeline".into()))
}

fn eval_operand(o: &Operand, dot: &Value, root: &Scope) -> R<Val> {
    match o {
        Operand::Dot(f) => lookup(dot, f),
        Operand::Root(f) => lookup(&root.root, f),
        Operand::Var(name, f) => {
            let vars = root.vars.borrow();
            match vars.iter().rev().find(|(n, _)| n == name) {
                Some((_, v)) => lookup(v, f),
                None => Err(TemplateError::Exec(format!("undefined variable: ${name}"))),
            }
        }
        Operand::Str(s) => Ok(Val::Json(Value::String(s.clone()))),
        Operand::Num(n) => Ok(Val::Json(num(*n))),
        Operand::Bool(b) => Ok(Val::Json(Value::Bool(*b))),
        Operand::Sub(p) => eval_pipeline(p, dot, root),
        Operand::Ident(name) => call(name, Vec::new()),
    }
}

fn num(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

fn eval_command(cmd: &Command, dot: &Value, root: &Scope, prev: Option<Val>) -> R<Val> {
    if let Some(Operand::Ident(name)) = cmd.first() {
        let mut args = Vec::new();
        for o in &cmd[1..] {
            args.push(eval_operand(o, dot, root)?);
        }
        if let Some(p) = prev {
            args.push(p);
        }
        return call(name, args);
    }
    // docker's formatting contexts have a `Label KEY` method: `{{.Label "k"}}` reads the
    // `Labels` of the same object (a map, or docker's "k=v,k2=v2" column string).
    if let (Some(Operand::Dot(path)), 2) = (cmd.first(), cmd.len()) {
        if path.last().map(String::as_str) == Some("Label") && prev.is_none() {
            let mut lp = path.clone();
            lp.pop();
            lp.push("Labels".into());
            let key = as_str(&eval_operand(&cmd[1], dot, root)?);
            return Ok(match lookup(dot, &lp)? {
                Val::Json(Value::Object(o)) => o
                    .get(&key)
                    .cloned()
                    .map_or(Val::Json(Value::String(String::new())), Val::Json),
                // the table header renders a label column as the key's last dotted part
                Val::Json(Value::String(st)) if st == "LABELS" => Val::Json(Value::String(
                    key.rsplit('.').next().unwrap_or("").to_string(),
                )),
                Val::Json(Value::String(st)) => Val::Json(Value::String(
                    st.split(',')
                        .find_map(|kv| {
                            kv.split_once('=')
                                .filter(|(k, _)| *k == key)
                                .map(|(_, v)| v.to_string())
                        })
                        .unwrap_or_default(),
                )),
                _ => Val::Json(Value::String(String::new())),
            });
        }
    }
    if cmd.len() > 1 || prev.is_some() {
        return Err(TemplateError::Exec(
            "can't give argument to non-function".into(),
        ));
    }
    eval_operand(&cmd[0], dot, root)
}

fn as_str(v: &Val) -> String {
    print_val(v)
}

fn call(name: &str, args: Vec<Val>) -> R<Val> {
    let s = |v: String| Ok(Val::Json(Value::String(v)));
    let want = |n: usize| -> R<()> {
        if args.len() != n {
            Err(TemplateError::Exec(format!(
                "wrong number of args for {name}: want {n} got {}",
                args.len()
            )))
        } else {
            Ok(())
        }
    };
    match name {
        "json" => {
            want(1)?;
            match &args[0] {
                Val::Missing => s("null".into()),
                // docker's json func encodes without HTML escaping
                Val::Json(j) => s(serde_json::to_string(j).unwrap_or_default()),
            }
        }
        "truncate" => {
            want(2)?;
            let n = match &args[1] {
                Val::Json(Value::Number(n)) => n.as_f64().unwrap_or(0.0).max(0.0) as usize,
                other => as_str(other).parse().unwrap_or(0),
            };
            s(as_str(&args[0]).chars().take(n).collect())
        }
        "pad" => {
            want(3)?;
            let n = |v: &Val| match v {
                Val::Json(Value::Number(n)) => n.as_f64().unwrap_or(0.0).max(0.0) as usize,
                other => as_str(other).parse().unwrap_or(0),
            };
            s(format!(
                "{}{}{}",
                " ".repeat(n(&args[1])),
                as_str(&args[0]),
                " ".repeat(n(&args[2]))
            ))
        }
        "upper" => {
            want(1)?;
            s(as_str(&args[0]).to_uppercase())
        }
        "lower" => {
            want(1)?;
            s(as_str(&args[0]).to_lowercase())
        }
        "title" => {
            want(1)?;
            let t = as_str(&args[0]);
            let mut out = String::new();
            let mut start = true;
            for c in t.chars() {
                if start {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                start = !c.is_alphanumeric();
            }
            s(out)
        }
        "len" => {
            want(1)?;
            let n = match &args[0] {
                Val::Json(Value::Array(a)) => a.len(),
                Val::Json(Value::Object(o)) => o.len(),
                Val::Json(Value::String(st)) => st.len(),
                Val::Json(Value::Null) => 0,
                _ => return Err(TemplateError::Exec("len of unsupported type".into())),
            };
            Ok(Val::Json(Value::from(n)))
        }
        "index" => {
            if args.len() < 2 {
                return Err(TemplateError::Exec("index needs a value and keys".into()));
            }
            let mut cur = args[0].clone();
            for k in &args[1..] {
                cur = match (cur, k) {
                    (Val::Json(Value::Object(mut o)), key) => {
                        o.remove(&as_str(key)).map_or(Val::Missing, Val::Json)
                    }
                    (Val::Json(Value::Array(a)), Val::Json(Value::Number(n))) => {
                        let i = n.as_u64().unwrap_or(u64::MAX) as usize;
                        Val::Json(a.get(i).cloned().ok_or_else(|| {
                            TemplateError::Exec(format!("index out of range: {i}"))
                        })?)
                    }
                    (Val::Json(Value::Null), _) | (Val::Missing, _) => Val::Missing,
                    (other, _) => {
                        return Err(TemplateError::Exec(format!(
                            "can't index item of type {:?}",
                            other
                        )))
                    }
                };
            }
            Ok(cur)
        }
        "join" => {
            want(2)?;
            let items = match &args[0] {
                Val::Json(Value::Array(a)) => a.iter().map(print_json).collect::<Vec<_>>(),
                Val::Json(Value::Null) | Val::Missing => Vec::new(),
                other => vec![as_str(other)],
            };
            s(items.join(&as_str(&args[1])))
        }
        "split" => {
            want(2)?;
            let parts = as_str(&args[0])
                .split(as_str(&args[1]).as_str())
                .map(|p| Value::String(p.to_string()))
                .collect();
            Ok(Val::Json(Value::Array(parts)))
        }
        "print" | "println" => {
            let mut out = String::new();
            for (i, a) in args.iter().enumerate() {
                let is_str = matches!(a, Val::Json(Value::String(_)));
                let prev_str = i > 0 && matches!(args[i - 1], Val::Json(Value::String(_)));
                if i > 0 && (name == "println" || (!is_str && !prev_str)) {
                    out.push(' ');
                }
                out.push_str(&as_str(a));
            }
            if name == "println" {
                out.push('\n');
            }
            s(out)
        }
        "printf" => {
            if args.is_empty() {
                return Err(TemplateError::Exec("printf needs a format".into()));
            }
            let fmt = as_str(&args[0]);
            let mut rest = args[1..].iter();
            let mut out = String::new();
            let mut chars = fmt.chars();
            while let Some(c) = chars.next() {
                if c != '%' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('%') => out.push('%'),
                    Some('q') => out.push_str(
                        &serde_json::to_string(&rest.next().map(as_str).unwrap_or_default())
                            .unwrap_or_default(),
                    ),
                    Some(_) => out.push_str(
                        &rest
                            .next()
                            .map(as_str)
                            .unwrap_or_else(|| "%!v(MISSING)".into()),
                    ),
                    None => out.push_str("%!(NOVERB)"),
                }
            }
            s(out)
        }
        "eq" | "ne" => {
            want(2)?;
            let eq = match (&args[0], &args[1]) {
                (Val::Json(Value::Number(a)), Val::Json(Value::Number(b))) => {
                    a.as_f64() == b.as_f64()
                }
                (a, b) => a == b,
            };
            Ok(Val::Json(Value::Bool(if name == "eq" { eq } else { !eq })))
        }
        "not" => {
            want(1)?;
            Ok(Val::Json(Value::Bool(!truthy(&args[0]))))
        }
        "and" | "or" => {
            if args.is_empty() {
                return Err(TemplateError::Exec(format!("{name} needs arguments")));
            }
            for a in &args {
                if truthy(a) == (name == "or") {
                    return Ok(a.clone());
                }
            }
            Ok(args[args.len() - 1].clone())
        }
        _ => Err(TemplateError::Parse(format!(
            "function {name:?} not defined"
        ))),
    }
}

/// JSON the way Go's `json.Marshal` writes it: `<`, `>` and `&` escaped inside strings.
pub fn go_json(v: &Value) -> String {
    serde_json::to_string(v)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn print_val(v: &Val) -> String {
    match v {
        Val::Missing => "<no value>".into(),
        Val::Json(j) => print_json(j),
    }
}

/// Go's default formatting of decoded JSON: maps as `map[k:v]` (sorted), slices as `[a b]`.
fn print_json(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                if f.fract() == 0.0 && f.abs() < 1e21 {
                    format!("{f:.0}")
                } else {
                    f.to_string()
                }
            }
        }
        Value::String(s) => s.clone(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(print_json).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(o) => {
            let mut keys: Vec<_> = o.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", print_json(&o[k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data() -> Value {
        json!({
            "Id": "abc123",
            "Name": "/web",
            "State": {"Status": "running", "Running": true, "ExitCode": 0, "Pid": 4242},
            "Config": {"Env": ["A=1", "B=2"], "Labels": {"k": "v", "a": "b"}, "Cmd": null},
            "Mounts": [{"Destination": "/data"}, {"Destination": "/logs"}],
            "Size": 1980000
        })
    }

    #[test]
    fn fields_and_nested_fields() {
        let d = data();
        assert_eq!(render("{{.Id}}", &d).unwrap(), "abc123");
        assert_eq!(
            render("{{.State.Status}} {{.State.Pid}}", &d).unwrap(),
            "running 4242"
        );
        assert_eq!(render("{{.Size}}", &d).unwrap(), "1980000");
        assert_eq!(render("{{.State.Nope}}", &d).unwrap(), "<no value>");
        assert_eq!(render("x{{.}}y", &json!("s")).unwrap(), "xsy");
        assert!(render("{{.Id.Foo}}", &d).is_err());
    }

    #[test]
    fn json_function_and_pipes() {
        let d = data();
        assert_eq!(
            render("{{json .Config.Env}}", &d).unwrap(),
            r#"["A=1","B=2"]"#
        );
        assert_eq!(
            render("{{.Config.Env | json}}", &d).unwrap(),
            r#"["A=1","B=2"]"#
        );
        assert_eq!(render("{{json .Config.Cmd}}", &d).unwrap(), "null");
        assert_eq!(render("{{json .State.Running}}", &d).unwrap(), "true");
        assert_eq!(render("{{upper .State.Status}}", &d).unwrap(), "RUNNING");
    }

    #[test]
    fn go_default_printing() {
        let d = data();
        assert_eq!(render("{{.Config.Env}}", &d).unwrap(), "[A=1 B=2]");
        assert_eq!(render("{{.Config.Labels}}", &d).unwrap(), "map[a:b k:v]");
        assert_eq!(render("{{.Config.Cmd}}", &d).unwrap(), "<nil>");
    }

    #[test]
    fn control_flow() {
        let d = data();
        assert_eq!(
            render("{{range .Mounts}}{{.Destination}},{{end}}", &d).unwrap(),
            "/data,/logs,"
        );
        assert_eq!(
            render("{{if .State.Running}}up{{else}}down{{end}}", &d).unwrap(),
            "up"
        );
        assert_eq!(
            render("{{if .State.ExitCode}}bad{{else}}ok{{end}}", &d).unwrap(),
            "ok"
        );
        assert_eq!(
            render("{{with .State}}{{.Pid}}{{end}}", &d).unwrap(),
            "4242"
        );
        assert_eq!(
            render("{{range .Config.Env}}{{$.Id}} {{end}}", &d).unwrap(),
            "abc123 abc123 "
        );
        assert_eq!(render("a  {{- .Id -}}  b", &d).unwrap(), "aabc123b");
        assert_eq!(render("{{index .Config.Labels \"k\"}}", &d).unwrap(), "v");
        assert_eq!(render("{{join .Config.Env \",\"}}", &d).unwrap(), "A=1,B=2");
        assert_eq!(render("{{len .Mounts}}", &d).unwrap(), "2");
        assert_eq!(
            render("{{if eq .State.Status \"running\"}}y{{end}}", &d).unwrap(),
            "y"
        );
        assert_eq!(
            render("{{printf \"%s-%d\" .Id .State.Pid}}", &d).unwrap(),
            "abc123-4242"
        );
    }

    #[test]
    fn docker_added_functions() {
        let d = data();
        assert_eq!(
            render("{{.Label \"b\"}}", &json!({"Labels": "a=1,b=2"})).unwrap(),
            "2"
        );
        assert_eq!(render("{{.Config.Label \"k\"}}", &d).unwrap(), "v");
        assert_eq!(
            render("[{{.Label \"zz\"}}]", &json!({"Labels": "a=1"})).unwrap(),
            "[]"
        );
        assert_eq!(render("{{truncate .Id 3}}", &d).unwrap(), "abc");
        assert_eq!(render("[{{pad .Id 1 2}}]", &d).unwrap(), "[ abc123  ]");
        assert_eq!(
            render("{{split \"a,b\" \",\" | json}}", &d).unwrap(),
            r#"["a","b"]"#
        );
        assert_eq!(
            render("{{title \"hello world\"}}", &d).unwrap(),
            "Hello World"
        );
        assert_eq!(
            render("{{json .}}", &json!({"a": "<none>"})).unwrap(),
            r#"{"a":"<none>"}"#
        );
        assert_eq!(
            go_json(&json!({"a": "<none>"})),
            r#"{"a":"\u003cnone\u003e"}"#
        );
    }

    #[test]
    fn variables() {
        let d = data();
        assert_eq!(
            render(
                "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
                &d
            )
            .unwrap(),
            "a=b;k=v;"
        );
        assert_eq!(
            render(
                "{{range $i, $m := .Mounts}}{{$i}}:{{$m.Destination}} {{end}}",
                &d
            )
            .unwrap(),
            "0:/data 1:/logs "
        );
        assert_eq!(
            render("{{$n := .Name}}{{range .Mounts}}{{$n}}{{end}}", &d).unwrap(),
            "/web/web"
        );
        assert!(render("{{$nope}}", &d).is_err());
    }

    #[test]
    fn parse_errors() {
        assert!(Template::parse("{{.Id").is_err());
        assert!(Template::parse("{{if .X}}a").is_err());
        assert!(Template::parse("{{end}}").is_err());
        assert!(render("{{nosuchfunc .Id}}", &data()).is_err());
    }
}
