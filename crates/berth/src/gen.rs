//! Generated artefacts from the clap definitions: shell completions (bash, zsh, fish) with
//! dynamic completion of container, image, network, volume and context names through the
//! hidden `berth __complete WORDS...`, and man pages (`berth gen man DIR`).

use anyhow::{bail, Context, Result};
use clap::{Args, CommandFactory, Subcommand};
use std::path::Path;

#[derive(Subcommand, Debug)]
pub enum GenCmd {
    /// Print a shell completion script (bash, zsh or fish)
    Completions(CompletionsArgs),
    /// Write man pages (berth.1, berth-run.1, berth-container-ls.1, ...) into DIR
    Man(ManArgs),
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// bash, zsh or fish
    pub shell: String,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Output directory (created if missing)
    pub dir: String,
}

#[derive(Args, Debug)]
pub struct CompleteArgs {
    /// The words typed after `berth` (the last one is the word being completed)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub words: Vec<String>,
}

const BASH_DYNAMIC: &str = r#"
# Names from the daemon (containers, images, networks, volumes, contexts).
_berth_dynamic() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    _berth "$@"
    if [[ "$cur" != -* ]]; then
        local names
        names=$(berth __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)
        if [[ -n "$names" ]]; then
            local IFS=$'\n'
            COMPREPLY+=( $(compgen -W "$names" -- "$cur") )
        fi
    fi
}
complete -F _berth_dynamic -o bashdefault -o default berth
"#;

const ZSH_DYNAMIC: &str = r#"
# Names from the daemon (containers, images, networks, volumes, contexts).
_berth_dynamic() {
    local -a names
    names=(${(f)"$(berth __complete ${words[2,CURRENT]} 2>/dev/null)"})
    (( ${#names} )) && compadd -a names
    _berth "$@"
}
if [ "$funcstack[1]" = "_berth" ]; then
    _berth_dynamic "$@"
else
    compdef _berth_dynamic berth
fi
"#;

const FISH_DYNAMIC: &str = r#"
# Names from the daemon (containers, images, networks, volumes, contexts).
complete -c berth -f -a '(berth __complete (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'
"#;

/// The completion script for `shell`.
pub fn completion_script(shell: &str) -> Result<String> {
    use clap_complete::Shell;
    let sh = match shell {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        other => bail!("unsupported shell {other:?}: use bash, zsh or fish"),
    };
    let mut cmd = crate::Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(sh, &mut cmd, "berth", &mut buf);
    let mut s = String::from_utf8(buf).context("completion script is not UTF-8")?;
    if sh == Shell::Zsh {
        // our own dispatch block replaces clap's (it would run `_berth` a second time)
        if let Some(i) = s.rfind("if [ \"$funcstack[1]\" = \"_berth\" ]; then") {
            s.truncate(i);
        }
    }
    s.push_str(match sh {
        Shell::Bash => BASH_DYNAMIC,
        Shell::Zsh => ZSH_DYNAMIC,
        _ => FISH_DYNAMIC,
    });
    Ok(s)
}

fn write_man(cmd: &clap::Command, name: &str, dir: &Path, count: &mut usize) -> Result<()> {
    if cmd.is_hide_set() {
        return Ok(());
    }
    let named = cmd
        .clone()
        .name(name.to_string())
        .bin_name(name.replace('-', " "));
    let mut buf = Vec::new();
    clap_mangen::Man::new(named).render(&mut buf)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
    *count += 1;
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        write_man(sub, &format!("{name}-{}", sub.get_name()), dir, count)?;
    }
    Ok(())
}

pub fn dispatch(cmd: GenCmd) -> Result<i32> {
    match cmd {
        GenCmd::Completions(a) => {
            print!("{}", completion_script(&a.shell)?);
            Ok(0)
        }
        GenCmd::Man(a) => {
            let dir = Path::new(&a.dir);
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let mut cmd = crate::Cli::command();
            cmd.build();
            let mut n = 0;
            write_man(&cmd, "berth", dir, &mut n)?;
            eprintln!("wrote {n} man pages to {}", dir.display());
            Ok(0)
        }
    }
}

/// What kind of name the word being completed is, from the words before it.
pub fn completion_kind(words: &[String]) -> Option<&'static str> {
    // words = typed words after `berth`, the last being the (partial) current word
    let before = &words[..words.len().saturating_sub(1)];
    let prev = before.last().map(String::as_str).unwrap_or("");
    if prev == "--network" || prev == "--net" {
        return Some("networks");
    }
    if prev == "--volumes-from" {
        return Some("containers");
    }
    if prev == "--context" {
        return Some("contexts");
    }
    let positional: Vec<&str> = before
        .iter()
        .map(String::as_str)
        .filter(|w| !w.starts_with('-'))
        .collect();
    let (group, cmd, npos) = match positional.as_slice() {
        [] => return None,
        [g @ ("container" | "image" | "network" | "volume" | "context" | "system"), c, rest @ ..] => {
            (*g, *c, rest.len())
        }
        [g @ ("container" | "image" | "network" | "volume" | "context" | "system")] => (*g, "", 0),
        [c, rest @ ..] => ("", *c, rest.len()),
    };
    let containers = [
        "attach", "commit", "diff", "exec", "export", "inspect", "kill", "logs", "pause", "port",
        "rename", "restart", "rm", "start", "stats", "stop", "top", "unpause", "update", "wait",
        "cp",
    ];
    let images = ["history", "push", "rmi", "save", "tag", "run", "create"];
    match group {
        "" if containers.contains(&cmd) => {
            if matches!(
                cmd,
                "exec"
                    | "rename"
                    | "port"
                    | "top"
                    | "attach"
                    | "diff"
                    | "export"
                    | "logs"
                    | "commit"
            ) && npos > 0
            {
                return None;
            }
            Some("containers")
        }
        "" if images.contains(&cmd) => {
            if matches!(cmd, "run" | "create") && npos > 0 {
                return None;
            }
            Some("images")
        }
        "container" if containers.contains(&cmd) || cmd == "ls" => {
            (cmd != "ls").then_some("containers")
        }
        "image" if matches!(cmd, "rm" | "inspect" | "history" | "push" | "save" | "tag") => {
            Some("images")
        }
        "network" if matches!(cmd, "rm" | "inspect") => Some("networks"),
        "network" if matches!(cmd, "connect" | "disconnect") => {
            Some(if npos == 0 { "networks" } else { "containers" })
        }
        "volume" if matches!(cmd, "rm" | "inspect") => Some("volumes"),
        "context" if matches!(cmd, "use" | "rm" | "inspect" | "update") => Some("contexts"),
        _ => None,
    }
}

/// `berth __complete WORDS...`: print matching names, one per line; silent on any error.
pub async fn complete(host: Option<&str>, a: CompleteArgs) -> i32 {
    let Some(kind) = completion_kind(&a.words) else {
        return 0;
    };
    let cur = a.words.last().cloned().unwrap_or_default();
    let names = tokio::time::timeout(std::time::Duration::from_secs(3), names(host, kind))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    for n in names.iter().filter(|n| n.starts_with(&cur)) {
        println!("{n}");
    }
    0
}

async fn names(host: Option<&str>, kind: &str) -> Result<Vec<String>> {
    use serde_json::Value;
    if kind == "contexts" {
        let mut v = vec!["default".to_string()];
        let dir = crate::context::config_dir().join("contexts").join("meta");
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if let Ok(b) = std::fs::read(e.path().join("meta.json")) {
                if let Ok(m) = serde_json::from_slice::<Value>(&b) {
                    if let Some(n) = m["Name"].as_str() {
                        v.push(n.to_string());
                    }
                }
            }
        }
        return Ok(v);
    }
    let client = berth_client::Client::connect_with_tls(host, crate::context::tls()).await?;
    let mut out = Vec::new();
    match kind {
        "containers" => {
            let list = client
                .list_containers(&berth_client::ListContainersOptions {
                    all: true,
                    ..Default::default()
                })
                .await?;
            for c in &list {
                for n in c["Names"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    let n = n.trim_start_matches('/');
                    if !n.contains('/') {
                        out.push(n.to_string());
                    }
                }
            }
        }
        "images" => {
            for i in client.list_images(false).await? {
                for t in i["RepoTags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if t != "<none>:<none>" {
                        out.push(t.to_string());
                    }
                }
            }
        }
        "networks" => {
            for n in client.list_networks(None).await? {
                if let Some(name) = n["Name"].as_str() {
                    out.push(name.to_string());
                }
            }
        }
        "volumes" => {
            let v: Value = client.get_json("/volumes").await?;
            for x in v["Volumes"].as_array().into_iter().flatten() {
                if let Some(name) = x["Name"].as_str() {
                    out.push(name.to_string());
                }
            }
        }
        _ => {}
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn kinds_from_the_command_line() {
        assert_eq!(completion_kind(&w("stop we")), Some("containers"));
        assert_eq!(completion_kind(&w("container rm -f ")), Some("containers"));
        assert_eq!(completion_kind(&w("rmi bu")), Some("images"));
        assert_eq!(completion_kind(&w("run -it ")), Some("images"));
        assert_eq!(completion_kind(&w("run bb ")), None);
        assert_eq!(completion_kind(&w("run --network ")), Some("networks"));
        assert_eq!(
            completion_kind(&w("network connect net1 ")),
            Some("containers")
        );
        assert_eq!(completion_kind(&w("volume rm v")), Some("volumes"));
        assert_eq!(completion_kind(&w("context use ")), Some("contexts"));
        assert_eq!(completion_kind(&w("exec c1 ")), None);
        assert_eq!(completion_kind(&w("ps ")), None);
    }

    #[test]
    fn scripts_generate() {
        for sh in ["bash", "zsh", "fish"] {
            let s = completion_script(sh).unwrap();
            assert!(s.contains("__complete"), "{sh}");
        }
        assert!(completion_script("tcsh").is_err());
    }
}
