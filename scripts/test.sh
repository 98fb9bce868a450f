#!/usr/bin/env bash
# test.sh — the one command that runs Berth's whole test suite on a fresh Debian 12.
#
# 1. installs what the tests need (busybox-static, pip, iproute2, docker.io for the
#    reference daemon of the differential tests, runc, crun; pytest and docker-py);
# 2. cargo build --release --workspace;
# 3. cargo test --workspace --release;
# 4. python3 -m pytest -v tests/e2e against target/release/berthd
#    (and, when dockerd is present, the differential tests against it);
# 5. the benchmark regression guard (bench/guard.py: fails only on a ratio more
#    than 2x worse than bench/baseline.json).
# Exits non-zero if any step fails. Env: BERTH_E2E_DIFF=0 disables the
# differential tests; PYTEST_ARGS adds pytest arguments; BERTH_BENCH_GUARD=0
# skips the benchmark guard.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# --- system packages -----------------------------------------------------------
need_pkgs=()
for pkg in busybox-static python3-pip iproute2 docker.io runc crun util-linux tar libseccomp-dev pkg-config docker-registry skopeo tmux libclang-dev nftables docker-compose iperf3; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_pkgs+=("$pkg")
done
if ((${#need_pkgs[@]})); then
    step "apt-get install ${need_pkgs[*]}"
    if [[ $(id -u) -ne 0 ]]; then
        echo "test.sh: must run as root to install ${need_pkgs[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" ||
        { apt-get update -q && apt-get install -y -q --no-install-recommends "${need_pkgs[@]}"; }
fi

# --- python packages ----------------------------------------------------------
pip_install() {
    python3 -m pip install -q "$@" 2>/dev/null ||
        python3 -m pip install -q --break-system-packages "$@"
}
python3 -c 'import pytest' 2>/dev/null || { step "pip install pytest"; pip_install pytest; }
python3 -c 'import docker' 2>/dev/null || { step "pip install docker"; pip_install docker; }

# --- build and unit tests -----------------------------------------------------
step "cargo build --release --workspace"
cargo build --release --workspace

# --- berth's generated man pages and shell completions (target/berth-gen) ---------
step "berth man pages and completions"
bash scripts/gen-berth-docs.sh target/release/berth target/berth-gen

failed=()
step "cargo test --workspace --release"
cargo test --workspace --release || failed+=("cargo test")

# --- the berth CLI against a real berthd ---------------------------------------
step "berth CLI integration tests against berthd"
cli_root=$(mktemp -d /tmp/berth-cli-XXXXXX)
./target/release/berthd --host "unix://$cli_root/b.sock" --data-root "$cli_root/data" \
    --exec-root "$cli_root/exec" >"$cli_root/berthd.log" 2>&1 &
cli_pid=$!
for _ in $(seq 1 100); do [[ -S $cli_root/b.sock ]] && break; sleep 0.1; done
BERTH_TEST_HOST="unix://$cli_root/b.sock" cargo test --release -p berth --test cli || failed+=("berth CLI")
DOCKER_HOST="unix://$cli_root/b.sock" ./target/release/berth ps -aq | xargs -r ./target/release/berth -H "unix://$cli_root/b.sock" rm -f >/dev/null || true
kill -TERM "$cli_pid" && wait "$cli_pid" || failed+=("berthd clean exit")
rm -rf "$cli_root"

# --- end-to-end ---------------------------------------------------------------
if command -v dockerd >/dev/null; then
    export BERTH_E2E_DIFF=${BERTH_E2E_DIFF:-1}
fi
export BERTH_E2E_TARGET=${BERTH_E2E_TARGET:-berth}
export BERTHD=${BERTHD:-$PWD/target/release/berthd}
step "python3 -m pytest -v tests/e2e (target $BERTH_E2E_TARGET, diff ${BERTH_E2E_DIFF:-0})"
# shellcheck disable=SC2086
python3 -m pytest -v -p no:cacheprovider tests/e2e ${PYTEST_ARGS:-} || failed+=("e2e")

# --- fuzzing --------------------------------------------------------------------
# The kept corpora are replayed on stable by `cargo test` above; here a short libFuzzer run of
# every target (nightly + cargo-fuzz; skipped with a message without nightly). BERTH_FUZZ_SECS
# sets the time per target; 0 skips. The 10-minute runs: scripts/fuzz.sh 600.
if [[ ${BERTH_FUZZ_SECS:-5} != 0 ]]; then
    step "short fuzz run (scripts/fuzz.sh ${BERTH_FUZZ_SECS:-5})"
    bash scripts/fuzz.sh "${BERTH_FUZZ_SECS:-5}" || failed+=("fuzz")
fi

# --- benchmark regression guard ----------------------------------------------------
# The quick benchmark (Berth and the reference side by side, same run) fails only on a gross
# regression: a ratio more than 2x worse than bench/baseline.json. One retry absorbs a burst of
# load on a shared machine. BERTH_BENCH_GUARD=0 skips it.
if [[ ${BERTH_BENCH_GUARD:-1} != 0 ]]; then
    step "benchmark regression guard (bench/run.py --quick + bench/guard.py)"
    guard_ok=0
    for attempt in 1 2; do
        out=$(mktemp /tmp/berth-bench-guard-XXXX.json)
        if python3 bench/run.py --quick --json "$out" >/dev/null && python3 bench/guard.py "$out"; then
            guard_ok=1
        fi
        rm -f "$out"
        ((guard_ok)) && break
        echo "bench guard: attempt $attempt failed"
    done
    ((guard_ok)) || failed+=("bench guard")
fi

if ((${#failed[@]})); then
    echo
    echo "test.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo
echo "test.sh: all tests passed"
