//! Seccomp filters from `linux.seccomp` (compiled with libseccomp): every action, architecture,
//! argument operator and filter flag of the runtime spec, plus the `SCMP_ACT_NOTIFY` listener.

use std::collections::BTreeMap;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

/// Init-side error text.
type R<T> = Result<T, String>;

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> ScmpAction {
    use LinuxSeccompAction::*;
    match a {
        ScmpActKill | ScmpActKillThread => ScmpAction::KillThread,
        ScmpActKillProcess => ScmpAction::KillProcess,
        ScmpActTrap => ScmpAction::Trap,
        ScmpActErrno => ScmpAction::Errno(errno.unwrap_or(libc::EPERM as u32) as i32),
        ScmpActNotify => ScmpAction::Notify,
        ScmpActTrace => ScmpAction::Trace(errno.unwrap_or(libc::EPERM as u32) as u16),
        ScmpActLog => ScmpAction::Log,
        ScmpActAllow => ScmpAction::Allow,
    }
}

fn arch_name<T: serde::Serialize>(a: &T) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn compare(index: usize, op: LinuxSeccompOperator, value: u64, two: Option<u64>) -> ScmpArgCompare {
    use LinuxSeccompOperator::*;
    let idx = index as u32;
    match op {
        ScmpCmpNe => ScmpArgCompare::new(idx, ScmpCompareOp::NotEqual, value),
        ScmpCmpLt => ScmpArgCompare::new(idx, ScmpCompareOp::Less, value),
        ScmpCmpLe => ScmpArgCompare::new(idx, ScmpCompareOp::LessOrEqual, value),
        ScmpCmpEq => ScmpArgCompare::new(idx, ScmpCompareOp::Equal, value),
        ScmpCmpGe => ScmpArgCompare::new(idx, ScmpCompareOp::GreaterEqual, value),
        ScmpCmpGt => ScmpArgCompare::new(idx, ScmpCompareOp::Greater, value),
        // Like runc: `value` is the mask, `valueTwo` the datum.
        ScmpCmpMaskedEq => {
            ScmpArgCompare::new(idx, ScmpCompareOp::MaskedEqual(value), two.unwrap_or(0))
        }
    }
}

/// Whether the profile uses `SCMP_ACT_NOTIFY` anywhere.
pub(crate) fn uses_notify(s: &LinuxSeccomp) -> bool {
    s.default_action() == LinuxSeccompAction::ScmpActNotify
        || s.syscalls()
            .iter()
            .flatten()
            .any(|c| c.action() == LinuxSeccompAction::ScmpActNotify)
}

/// Compiles the profile into a libseccomp filter (not loaded yet).
pub(crate) fn build(s: &LinuxSeccomp) -> R<ScmpFilterContext> {
    let e = |what: &str| {
        let what = what.to_string();
        move |err: libseccomp::error::SeccompError| format!("seccomp: {what}: {err}")
    };
    let default = action(s.default_action(), s.default_errno_ret());
    let mut ctx = ScmpFilterContext::new_filter(default).map_err(e("create filter"))?;
    // We set no_new_privs ourselves when the spec asks for it; libseccomp must not.
    ctx.set_ctl_nnp(false).map_err(e("clear nnp"))?;
    for a in s.architectures().iter().flatten() {
        let name = arch_name(a);
        let arch: ScmpArch = name
            .parse()
            .map_err(|_| format!("seccomp: unknown architecture {name}"))?;
        ctx.add_arch(arch)
            .map_err(e(&format!("add architecture {name}")))?;
    }
    for f in s.flags().iter().flatten() {
        match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => {
                ctx.set_ctl_log(true).map_err(e("flag log"))?
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                ctx.set_ctl_ssb(true).map_err(e("flag spec_allow"))?
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {
                ctx.set_ctl_tsync(true).map_err(e("flag tsync"))?
            }
        }
    }
    for rule in s.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret());
        if act == default {
            continue;
        }
        let args = rule.args().clone().unwrap_or_default();
        // Conditions on distinct arguments are ANDed in one rule; several conditions on the same
        // argument cannot be (libseccomp refuses), so like runc they become one rule each (OR).
        let mut by_index: BTreeMap<usize, usize> = BTreeMap::new();
        for a in &args {
            *by_index.entry(a.index()).or_default() += 1;
        }
        let same_index = by_index.values().any(|n| *n > 1);
        for name in rule.names() {
            // Unknown names (newer or other-arch syscalls) are skipped, as runc does.
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                continue;
            };
            if args.is_empty() {
                ctx.add_rule(act, sc)
                    .map_err(e(&format!("add rule for {name}")))?;
            } else if same_index {
                for a in &args {
                    let c = compare(a.index(), a.op(), a.value(), a.value_two());
                    ctx.add_rule_conditional(act, sc, &[c])
                        .map_err(e(&format!("add rule for {name}")))?;
                }
            } else {
                let cs: Vec<ScmpArgCompare> = args
                    .iter()
                    .map(|a| compare(a.index(), a.op(), a.value(), a.value_two()))
                    .collect();
                ctx.add_rule_conditional(act, sc, &cs)
                    .map_err(e(&format!("add rule for {name}")))?;
            }
        }
    }
    Ok(ctx)
}

/// Loads the profile into the calling process; returns the notify fd when the profile uses
/// `SCMP_ACT_NOTIFY`.
pub(crate) fn load(s: &LinuxSeccomp) -> R<Option<std::os::fd::OwnedFd>> {
    let ctx = build(s)?;
    ctx.load()
        .map_err(|e| format!("seccomp: load filter: {e}"))?;
    if uses_notify(s) {
        let raw = ctx
            .get_notify_fd()
            .map_err(|e| format!("seccomp: notify fd: {e}"))?;
        let fd = berth_sys::dup_raw_fd(raw)
            .map_err(|e| format!("seccomp: dup notify fd: {}", crate::error::io_text(&e)))?;
        return Ok(Some(fd));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_every_action_and_operator() {
        let profile: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [
                {"names": ["read", "write", "nosuchsyscall"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["getpid"], "action": "SCMP_ACT_LOG"},
                {"names": ["kill"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["tkill"], "action": "SCMP_ACT_KILL_THREAD"},
                {"names": ["getppid"], "action": "SCMP_ACT_TRAP"},
                {"names": ["getuid"], "action": "SCMP_ACT_TRACE", "errnoRet": 3},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [
                    {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [
                    {"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"},
                    {"index": 1, "value": 5, "op": "SCMP_CMP_NE"},
                    {"index": 2, "value": 5, "op": "SCMP_CMP_LT"},
                    {"index": 3, "value": 5, "op": "SCMP_CMP_LE"},
                    {"index": 4, "value": 5, "op": "SCMP_CMP_GE"},
                    {"index": 5, "value": 5, "op": "SCMP_CMP_GT"}]}
            ]
        }))
        .unwrap();
        let ctx = build(&profile).unwrap();
        assert!(ctx.is_arch_present(ScmpArch::X86).unwrap());
        assert!(!uses_notify(&profile));
    }
}
