//! cgroup v2 device control: an eBPF `BPF_PROG_TYPE_CGROUP_DEVICE` program built from
//! `linux.resources.devices` (last matching rule wins; nothing matched = deny), plus runc's
//! default allowed devices.

use berth_sys::BpfInsn;
use oci_spec::runtime::LinuxDeviceCgroup;

/// One rule: type ('a', 'b' or 'c'), major/minor (None = any), access bits, allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub typ: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    /// BPF_DEVCG_ACC_MKNOD = 1, READ = 2, WRITE = 4.
    pub access: i32,
    pub allow: bool,
}

fn access_bits(s: &str) -> i32 {
    s.chars().fold(0, |a, c| {
        a | match c {
            'm' => 1,
            'r' => 2,
            'w' => 4,
            _ => 0,
        }
    })
}

/// The spec's rules followed by runc's default allowed devices.
pub(crate) fn rules(devs: &[LinuxDeviceCgroup]) -> Vec<Rule> {
    let mut out: Vec<Rule> = devs
        .iter()
        .map(|d| Rule {
            typ: d
                .typ()
                .map(|t| t.as_str().chars().next().unwrap_or('a'))
                .unwrap_or('a'),
            major: d.major(),
            minor: d.minor(),
            access: access_bits(d.access().as_deref().unwrap_or("rwm")),
            allow: d.allow(),
        })
        .collect();
    for (maj, min) in [
        (1, Some(3)),
        (1, Some(5)),
        (1, Some(7)),
        (1, Some(8)),
        (1, Some(9)),
        (5, Some(0)),
        (5, Some(1)),
        (5, Some(2)),
        (136, None),
        (10, Some(200)),
    ] {
        out.push(Rule {
            typ: 'c',
            major: Some(maj),
            minor: min,
            access: 7,
            allow: true,
        });
    }
    out
}

fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
    BpfInsn {
        code,
        regs: (dst & 0xf) | (src << 4),
        off,
        imm,
    }
}

const LDX_W: u8 = 0x61; // r_dst = *(u32 *)(r_src + off)
const AND_K: u8 = 0x57;
const RSH_K: u8 = 0x77;
const MOV_X: u8 = 0xbf;
const MOV_K: u8 = 0xb7;
const JNE_K: u8 = 0x55;
const JNE_X: u8 = 0x5d;
const EXIT: u8 = 0x95;

/// Compiles the rules. Registers: r2 = device type (1 block, 2 char), r3 = requested access,
/// r4 = major, r5 = minor. Rules are emitted last-first, each returning on a full match.
pub(crate) fn compile(rules: &[Rule]) -> Vec<BpfInsn> {
    let mut p = vec![
        ins(LDX_W, 2, 1, 0, 0),
        ins(AND_K, 2, 0, 0, 0xffff),
        ins(LDX_W, 3, 1, 0, 0),
        ins(RSH_K, 3, 0, 0, 16),
        ins(LDX_W, 4, 1, 4, 0),
        ins(LDX_W, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        // Jumps are emitted with off = -1 and patched to "skip the rest of this block".
        let mut b: Vec<BpfInsn> = Vec::new();
        match r.typ {
            'b' => b.push(ins(JNE_K, 2, 0, -1, 1)),
            'c' => b.push(ins(JNE_K, 2, 0, -1, 2)),
            _ => {}
        }
        if r.access != 7 {
            b.push(ins(MOV_X, 1, 3, 0, 0));
            b.push(ins(AND_K, 1, 0, 0, r.access));
            b.push(ins(JNE_X, 1, 3, -1, 0));
        }
        if let Some(m) = r.major.filter(|m| *m >= 0) {
            b.push(ins(JNE_K, 4, 0, -1, m as i32));
        }
        if let Some(m) = r.minor.filter(|m| *m >= 0) {
            b.push(ins(JNE_K, 5, 0, -1, m as i32));
        }
        b.push(ins(MOV_K, 0, 0, 0, i32::from(r.allow)));
        b.push(ins(EXIT, 0, 0, 0, 0));
        let len = b.len();
        let mut unconditional = true;
        for (i, x) in b.iter_mut().enumerate() {
            if x.off == -1 {
                x.off = (len - i - 1) as i16;
                unconditional = false;
            }
        }
        p.extend(b);
        // A rule matching everything ends the program (the verifier rejects dead code).
        if unconditional {
            return p;
        }
    }
    p.push(ins(MOV_K, 0, 0, 0, 0));
    p.push(ins(EXIT, 0, 0, 0, 0));
    p
}

/// Loads the program for `devs` and attaches it to the cgroup2 directory `dir`.
pub(crate) fn attach(dir: &std::path::Path, devs: &[LinuxDeviceCgroup]) -> std::io::Result<()> {
    use std::os::fd::AsFd;
    let prog = berth_sys::bpf_load_cgroup_device_prog(&compile(&rules(devs)))?;
    let cg = std::fs::File::open(dir)?;
    berth_sys::bpf_attach_cgroup_device(cg.as_fd(), prog.as_fd())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_with_block_local_jumps() {
        let r = vec![
            Rule {
                typ: 'a',
                major: None,
                minor: None,
                access: 7,
                allow: false,
            },
            Rule {
                typ: 'c',
                major: Some(1),
                minor: Some(3),
                access: 6,
                allow: true,
            },
        ];
        let p = compile(&r);
        // prologue 6 + rule2 (type, 3 access, major, minor, mov, exit = 8) + rule1 (2); the
        // match-all deny rule ends the program.
        assert_eq!(p.len(), 6 + 8 + 2);
        assert_eq!(p[6], ins(JNE_K, 2, 0, 7, 2));
        assert_eq!(p[9], ins(JNE_X, 1, 3, 4, 0));
        assert_eq!(p[12], ins(MOV_K, 0, 0, 0, 1));
        assert_eq!(p[14], ins(MOV_K, 0, 0, 0, 0));
        assert_eq!(p[15], ins(EXIT, 0, 0, 0, 0));
        // Without a match-all rule the default is deny.
        let p = compile(&r[1..]);
        assert_eq!(p[p.len() - 2], ins(MOV_K, 0, 0, 0, 0));
    }

    /// Real kernel check: in a cgroup2 dir with the program, /dev/null opens, /dev/zero does not.
    #[test]
    fn program_filters_devices_in_the_kernel() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: needs root");
            return;
        }
        let Some(h) = crate::cgroups::hierarchies()
            .unwrap_or_default()
            .into_iter()
            .find(|h| h.v2)
        else {
            eprintln!("skipping: no cgroup2 mount");
            return;
        };
        let dir = h
            .mount
            .join(format!("berth-devtest-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let devs: Vec<LinuxDeviceCgroup> = serde_json::from_value(serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}
        ]))
        .unwrap();
        let res = attach(&dir, &devs);
        let script = format!(
            "echo $$ > {}/cgroup.procs || exit 9; \
             (: < /dev/kmsg) 2>/dev/null && echo kmsg-read-ok || echo kmsg-read-denied; \
             (: > /dev/kmsg) 2>/dev/null && echo kmsg-write-ok || echo kmsg-write-denied; \
             (: < /dev/loop0) 2>/dev/null && echo loop-ok || echo loop-denied; \
             (: < /dev/null) 2>/dev/null && echo null-ok || echo null-denied",
            dir.display()
        );
        let out = std::process::Command::new("/usr/bin/busybox")
            .args(["sh", "-c", &script])
            .output();
        let _ = std::fs::remove_dir(&dir);
        res.unwrap();
        let out = String::from_utf8_lossy(&out.unwrap().stdout).into_owned();
        assert_eq!(
            out,
            "kmsg-read-ok\nkmsg-write-denied\nloop-denied\nnull-ok\n"
        );
    }
}
