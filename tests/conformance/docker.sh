#!/usr/bin/env bash
# The conformance cases through a real dockerd: starts a private dockerd (own socket, data and
# exec roots, no networking setup) with `--add-runtime berth=<berth-runtime>`, imports a busybox
# image, and runs every case that has a `docker-args` file as
#   docker run --rm --runtime <rt> <docker-args> -v <case>:/conformance:ro bb sh /conformance/cmd
# with rt = runc and berth, comparing the outputs (and `docker-expect` when present).
# `docker-args` is shell words (may be empty); $CASE_DIR expands to the case directory.
#
# With BERTHD=<path to berthd> (or BERTHD=1 for target/debug/berthd), a private berthd is
# started too and every case also runs through it (`docker` CLI against its socket, no
# --runtime), compared with the same reference output: the suite against berthd.
#
# Usage: tests/conformance/docker.sh [case...]   Env: BERTH_RUNTIME, DOCKER_RUNTIMES ("runc berth"), BERTHD.
# Needs root, dockerd + docker CLI, busybox. Exit status 1 on a mismatch.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
if [ "$(id -u)" != 0 ]; then echo "docker conformance: needs root" >&2; exit 2; fi
command -v dockerd >/dev/null && command -v docker >/dev/null ||
  { echo "docker conformance: skipped (no dockerd/docker)"; exit 0; }
berth=${BERTH_RUNTIME:-$repo/target/debug/berth-runtime}
[ -x "$berth" ] || (cd "$repo" && cargo build -q -p berth-runtime) || exit 2
busybox=$(command -v busybox || echo /usr/bin/busybox)
runtimes=${DOCKER_RUNTIMES:-runc berth}

work=$(mktemp -d /tmp/berth-dconf.XXXXXX)
chmod 755 "$work"
# dockerd runs the runtime through containerd-shim; give it a stable copy.
cp "$berth" "$work/berth-runtime"
export DOCKER_HOST=unix://$work/docker.sock
dockerd --host "$DOCKER_HOST" --data-root "$work/data" --exec-root "$work/exec" \
  --pidfile "$work/docker.pid" --bridge none --iptables=false --ip6tables=false \
  --add-runtime "berth=$work/berth-runtime" >"$work/dockerd.log" 2>&1 &
dpid=$!
cleanup() {
  docker ps -aq 2>/dev/null | xargs -r docker rm -f >/dev/null 2>&1
  if [ -n "$bpid" ]; then
    DOCKER_HOST=$berthd_host docker ps -aq 2>/dev/null | xargs -r env DOCKER_HOST=$berthd_host docker rm -f >/dev/null 2>&1
    kill "$bpid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$bpid" 2>/dev/null || break; sleep 0.1; done
    umount -R "$work/bexec" "$work/bdata" 2>/dev/null
  fi
  kill "$dpid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
  umount -R "$work/exec" "$work/data" 2>/dev/null
  [ "${KEEP:-}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
bpid=
berthd_host=
if [ -n "${BERTHD:-}" ]; then
  bd=$BERTHD
  [ "$bd" = 1 ] && bd=$repo/target/debug/berthd
  [ -x "$bd" ] || (cd "$repo" && cargo build -q -p berthd -p berth-shim) || exit 2
  berthd_host=unix://$work/berthd.sock
  PATH=$(dirname "$bd"):$PATH "$bd" --host "$berthd_host" --data-root "$work/bdata" \
    --exec-root "$work/bexec" >"$work/berthd.log" 2>&1 &
  bpid=$!
fi
for _ in $(seq 100); do docker version >/dev/null 2>&1 && break; sleep 0.1; done
docker version >/dev/null 2>&1 || { echo "dockerd did not start:"; tail "$work/dockerd.log"; exit 2; }

mkdir -p "$work/rootfs"/{bin,etc,tmp,root}
cp "$busybox" "$work/rootfs/bin/busybox"
for a in $("$busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$work/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$work/rootfs/etc/passwd"
echo 'root:x:0:' > "$work/rootfs/etc/group"
tar -C "$work/rootfs" -c . | docker import - berth-conformance-bb >/dev/null || exit 2
if [ -n "$berthd_host" ]; then
  for _ in $(seq 100); do DOCKER_HOST=$berthd_host docker version >/dev/null 2>&1 && break; sleep 0.1; done
  tar -C "$work/rootfs" -c . | DOCKER_HOST=$berthd_host docker import - berth-conformance-bb >/dev/null ||
    { echo "berthd: import failed:"; tail -5 "$work/berthd.log"; exit 2; }
fi

cases=("$@")
if [ ${#cases[@]} -eq 0 ]; then
  for d in "$here"/cases/*/; do [ -f "$d/docker-args" ] && cases+=("$(basename "$d")"); done
fi
fail=0
for c in "${cases[@]}"; do
  CASE_DIR=$here/cases/$c
  eval "args=($(cat "$CASE_DIR/docker-args"))"
  declare -A out=()
  ran=()
  for rt in $runtimes; do
    o=$(timeout 30 docker run --rm --runtime "$rt" "${args[@]}" -v "$CASE_DIR:/conformance:ro" \
        berth-conformance-bb sh /conformance/cmd 2>"$work/stderr-$c-$rt" </dev/null)
    out[$rt]="$o
exit=$?"
    ran+=("$rt")
  done
  if [ -n "$berthd_host" ]; then
    o=$(DOCKER_HOST=$berthd_host timeout 30 docker run --rm "${args[@]}" -v "$CASE_DIR:/conformance:ro" \
        berth-conformance-bb sh /conformance/cmd 2>"$work/stderr-$c-berthd" </dev/null)
    out[berthd]="$o
exit=$?"
    ran+=(berthd)
  fi
  ok=1
  if [ -f "$CASE_DIR/docker-expect" ]; then
    want="$(cat "$CASE_DIR/docker-expect")
exit=0"
    for rt in "${ran[@]}"; do
      [ "${out[$rt]}" = "$want" ] && continue
      ok=0; echo "--- $c: $rt differs from docker-expect"
      diff <(echo "$want") <(echo "${out[$rt]}") | sed 's/^/    /'
      sed 's/^/    stderr: /' "$work/stderr-$c-$rt"
    done
  fi
  for rt in "${ran[@]:1}"; do
    [ "${out[$rt]}" = "${out[${ran[0]}]}" ] && continue
    ok=0; echo "--- $c: $rt differs from ${ran[0]}"
    diff <(echo "${out[${ran[0]}]}") <(echo "${out[$rt]}") | sed 's/^/    /'
    sed 's/^/    stderr: /' "$work/stderr-$c-$rt"
  done
  if [ $ok = 1 ]; then echo "ok   $c (${ran[*]})"; else echo "FAIL $c"; fail=1; fi
  unset out
done
echo "docker conformance: ${#cases[@]} case(s), $([ $fail = 0 ] && echo all passed || echo FAILURES)"
exit $fail
