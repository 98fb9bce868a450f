#!/usr/bin/env bash
# Conformance: runs every case under tests/conformance/cases/ with berth-runtime and, when
# installed, runc and crun, on the same busybox bundle, and compares what the container sees.
#
# A case is a directory:
#   config-patch.json  (optional) deep-merged into the base config (jq `*`: objects merge,
#                      arrays are replaced)
#   config.jq          (optional) jq filter applied after the patch (e.g. to append a mount)
#   cmd                shell script run in the container as `sh /conformance/cmd`; it prints
#                      the normalised facts to compare (status fields, ids, mounts, fds...)
#   expect             (optional) the exact output every runtime must produce
#   runtimes           (optional) runtimes to compare, one per line (default: all found)
#
# Usage: tests/conformance/run.sh [case-name...]
# Env:   BERTH_RUNTIME (default target/debug/berth-runtime, built if missing),
#        CONFORMANCE_RUNTIMES (default "berth-runtime runc crun"), KEEP=1 keeps the work dir.
# Needs root, busybox (/usr/bin/busybox or busybox-static) and jq. Exit status 1 on mismatch.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
if [ "$(id -u)" != 0 ]; then echo "conformance: needs root" >&2; exit 2; fi
berth=${BERTH_RUNTIME:-$repo/target/debug/berth-runtime}
if [ ! -x "$berth" ]; then
  (cd "$repo" && cargo build -q -p berth-runtime) || exit 2
fi
busybox=$(command -v busybox || echo /usr/bin/busybox)
command -v jq >/dev/null || { echo "conformance: needs jq" >&2; exit 2; }

declare -A bin
bin[berth-runtime]=$berth
for rt in runc crun; do
  p=$(command -v "$rt" 2>/dev/null) && bin[$rt]=$p
done
wanted=${CONFORMANCE_RUNTIMES:-berth-runtime runc crun}

work=$(mktemp -d /tmp/berth-conformance.XXXXXX)
chmod 755 "$work"
cleanup() {
  for rt in "${!bin[@]}"; do
    for id in $("${bin[$rt]}" --root "$work/state-$rt" list -q 2>/dev/null); do
      "${bin[$rt]}" --root "$work/state-$rt" delete -f "$id" >/dev/null 2>&1
    done
  done
  # runc leaves the (empty) parent cgroup behind.
  rmdir /sys/fs/cgroup/*/berth-conformance /sys/fs/cgroup/berth-conformance 2>/dev/null
  [ "${KEEP:-}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

# The shared rootfs: busybox and its applets.
rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,proc,sys,dev,etc,tmp,conformance,root}
cp "$busybox" "$rootfs/bin/busybox"
for a in $("$busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
echo 'root:x:0:' > "$rootfs/etc/group"

# The base config: berth-runtime's default spec, no terminal, writable root, sh runs the case.
mkdir -p "$work/base"
"$berth" spec --bundle "$work/base" || exit 2
jq '.process.terminal = false | .process.args = ["sh", "/conformance/cmd"]' \
  "$work/base/config.json" > "$work/base.json"

# Drop the comparison runtimes that cannot run a trivial container on this host (e.g. crun
# refuses cgroup v1/v2 hybrid hosts whose cgroup2 has controllers).
probe_cfg=$(jq '.process.args = ["true"]' "$work/base.json")
for rt in runc crun; do
  [ -n "${bin[$rt]:-}" ] || continue
  b=$work/probe-$rt
  mkdir -p "$b/rootfs" && mount --bind "$rootfs" "$b/rootfs"
  echo "$probe_cfg" | jq --arg cg "/berth-conformance/probe-$rt" '.linux.cgroupsPath = $cg' > "$b/config.json"
  if ! (cd "$b" && timeout 20 "${bin[$rt]}" --root "$work/state-$rt" run --bundle "$b" "probe-$rt" </dev/null >/dev/null 2>"$b/stderr"); then
    echo "skip $rt: cannot run a trivial container here: $(head -c 200 "$b/stderr")"
    unset "bin[$rt]"
  fi
  umount "$b/rootfs"
done

cases=("$@")
if [ ${#cases[@]} -eq 0 ]; then
  for d in "$here"/cases/*/; do cases+=("$(basename "$d")"); done
fi

fail=0
n=0
for c in "${cases[@]}"; do
  cdir=$here/cases/$c
  [ -f "$cdir/cmd" ] || { echo "conformance: no case $c" >&2; fail=1; continue; }
  n=$((n + 1))
  cfg=$(cat "$work/base.json")
  [ -f "$cdir/config-patch.json" ] && cfg=$(jq -s '.[0] * .[1]' <(echo "$cfg") "$cdir/config-patch.json")
  [ -f "$cdir/config.jq" ] && cfg=$(echo "$cfg" | jq -f "$cdir/config.jq")
  rts=$wanted
  [ -f "$cdir/runtimes" ] && rts=$(cat "$cdir/runtimes")
  declare -A out=()
  ran=()
  for rt in $rts; do
    [ -n "${bin[$rt]:-}" ] || continue
    b=$work/bundle-$c-$rt
    mkdir -p "$b/rootfs"
    mount --bind "$rootfs" "$b/rootfs"
    mount --bind "$cdir" "$b/rootfs/conformance" 2>/dev/null ||
      { umount "$b/rootfs"; echo "conformance: bind $cdir failed" >&2; fail=1; continue; }
    echo "$cfg" | jq --arg cg "/berth-conformance/$rt-$c" '.linux.cgroupsPath = $cg' > "$b/config.json"
    id=conf-$c-$rt
    o=$(cd "$b" && timeout 20 "${bin[$rt]}" --root "$work/state-$rt" run --bundle "$b" "$id" </dev/null 2>"$b/stderr")
    rc=$?
    umount "$b/rootfs/conformance" "$b/rootfs" 2>/dev/null
    out[$rt]="$o
exit=$rc"
    ran+=("$rt")
  done
  ok=1
  ref=${ran[0]:-}
  if [ -f "$cdir/expect" ]; then
    want="$(cat "$cdir/expect")
exit=0"
    for rt in "${ran[@]}"; do
      if [ "${out[$rt]}" != "$want" ]; then
        ok=0
        echo "--- $c: $rt differs from expect"
        diff <(echo "$want") <(echo "${out[$rt]}") | sed 's/^/    /'
        sed 's/^/    stderr: /' "$work/bundle-$c-$rt/stderr"
      fi
    done
  fi
  for rt in "${ran[@]:1}"; do
    if [ "${out[$rt]}" != "${out[$ref]}" ]; then
      ok=0
      echo "--- $c: $rt differs from $ref"
      diff <(echo "${out[$ref]}") <(echo "${out[$rt]}") | sed 's/^/    /'
      sed 's/^/    stderr: /' "$work/bundle-$c-$rt/stderr"
    fi
  done
  if [ $ok = 1 ]; then
    echo "ok   $c (${ran[*]})"
  else
    echo "FAIL $c"
    fail=1
  fi
  unset out
done
echo "conformance: $n case(s), $([ $fail = 0 ] && echo all passed || echo FAILURES)"
exit $fail
