#!/usr/bin/env bash
# fuzz.sh [SECONDS] [TARGET...] — run Berth's cargo-fuzz targets (fuzz/, nightly + cargo-fuzz).
#
# Each target runs for SECONDS (default 600, the issue's "clean for 10 minutes") seeded with the
# kept corpus fuzz/corpus/<target>; new inputs go to a scratch directory, so the kept corpus only
# changes when you copy them in (then `cargo +nightly fuzz cmin`). A crash leaves its input in
# fuzz/artifacts/<target>/ and makes this script exit 1. Installs cargo-fuzz when missing.
# The kept corpora are also replayed on stable by `cargo test -p berth-fuzzing`.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^berth-fuzz$')
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz.sh: no nightly toolchain (rustup toolchain install nightly); skipping" >&2
    exit 0
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo +nightly fuzz build -O 2>&1 | tail -1
failed=()
for t in "${targets[@]}"; do
    scratch=$(mktemp -d /tmp/berth-fuzz-corpus-XXXX)
    log=$(mktemp /tmp/berth-fuzz-$t-XXXX.log)
    if cargo +nightly fuzz run -O "$t" "$scratch" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=20 >"$log" 2>&1; then
        echo "fuzz $t: clean for ${secs}s ($(grep -o 'Done [0-9]* runs' "$log" | tail -1))"
    else
        echo "fuzz $t: FAILED (log $log; inputs in fuzz/artifacts/$t/)"
        grep -E "panicked|ERROR|SUMMARY" "$log" | head -5 || true
        failed+=("$t")
    fi
    rm -rf "$scratch"
done
((${#failed[@]} == 0)) || { echo "fuzz.sh: failures: ${failed[*]}" >&2; exit 1; }
