#!/usr/bin/env bash
# demo.sh — build Berth, start berthd, import a busybox image with the docker CLI
# and run `docker run --rm busybox echo hello from berth`.
# Env: BERTH_SOCK (default /run/berth/berth.sock), BERTH_DATA_ROOT (default
# /var/lib/berth), BERTH_EXEC_ROOT (default: the socket's directory), DOCKER_CLI.
set -euo pipefail
cd "$(dirname "$0")/.."

sock=${BERTH_SOCK:-/run/berth/berth.sock}
data_root=${BERTH_DATA_ROOT:-/var/lib/berth}
exec_root=${BERTH_EXEC_ROOT:-$(dirname "$sock")}
docker_cli=${DOCKER_CLI:-/usr/local/bin/docker}
[[ -x $docker_cli ]] || docker_cli=docker
export DOCKER_HOST=unix://$sock

step() { printf '\n==> %s\n' "$*"; }

# What a fresh Debian 12 needs: a static busybox for the image, libseccomp for the runtime,
# libclang for the nftables bindings (bindgen at build time).
need=()
for pkg in busybox-static libseccomp-dev pkg-config libclang-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
    step "apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${need[@]}" ||
        { apt-get update -q && apt-get install -y -q --no-install-recommends "${need[@]}"; }
fi

step "cargo build --release --workspace"
cargo build --release --workspace

step "berth man pages and shell completions (target/berth-gen)"
bash scripts/gen-berth-docs.sh target/release/berth target/berth-gen

step "start berthd on $sock (data root $data_root, exec root $exec_root)"
mkdir -p "$(dirname "$sock")" "$data_root" "$exec_root"
log=$(mktemp /tmp/berthd-demo.XXXXXX.log)
./target/release/berthd --host "unix://$sock" --data-root "$data_root" --exec-root "$exec_root" \
    >"$log" 2>&1 &
berthd_pid=$!
stop_berthd() {
    if kill -0 "$berthd_pid" 2>/dev/null; then
        printf '\n==> stop berthd (pid %s)\n' "$berthd_pid"
        kill -TERM "$berthd_pid"
        wait "$berthd_pid" || true
    fi
}
trap stop_berthd EXIT
for i in $(seq 1 100); do
    "$docker_cli" version >/dev/null 2>&1 && break
    if ! kill -0 "$berthd_pid" 2>/dev/null; then
        echo "berthd exited; its log:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.1
    [[ $i -eq 100 ]] && { echo "berthd did not answer on $sock; its log:" >&2; cat "$log" >&2; exit 1; }
done
echo "berthd is up (pid $berthd_pid, log $log)"
"$docker_cli" version

step "make the busybox rootfs (scripts/mkimage.sh)"
tar=$(mktemp /tmp/busybox-rootfs.XXXXXX.tar)
bash scripts/mkimage.sh "$tar"

step "docker import --change 'CMD [\"sh\"]' $tar busybox"
"$docker_cli" import --change 'CMD ["sh"]' "$tar" busybox
rm -f "$tar"
"$docker_cli" images

step "docker run --rm busybox echo hello from berth"
"$docker_cli" run --rm busybox echo hello from berth
