#!/usr/bin/env bash
# gen-berth-docs.sh BERTH OUTDIR — generate berth's man pages (OUTDIR/man/*.1) and shell
# completions (OUTDIR/completions/berth.{bash,zsh,fish}) from its clap definitions, and check
# them: every file exists and is non-empty, `bash -n` accepts the bash script, and `man`
# renders berth.1 when man is installed. Install with e.g.
#   cp OUTDIR/man/*.1 /usr/local/share/man/man1/
#   cp OUTDIR/completions/berth.bash /etc/bash_completion.d/berth
set -euo pipefail
berth=${1:-target/release/berth}
out=${2:-target/berth-gen}
rm -rf "$out"
mkdir -p "$out/man" "$out/completions"
"$berth" gen man "$out/man"
for sh in bash zsh fish; do
    "$berth" gen completions "$sh" >"$out/completions/berth.$sh"
done
fail=0
for f in "$out/man/berth.1" "$out/man/berth-run.1" "$out/man/berth-container-ls.1" \
         "$out/completions/berth.bash" "$out/completions/berth.zsh" "$out/completions/berth.fish"; do
    [[ -s $f ]] || { echo "gen-berth-docs: $f is missing or empty" >&2; fail=1; }
done
bash -n "$out/completions/berth.bash" || { echo "gen-berth-docs: bash -n rejects berth.bash" >&2; fail=1; }
if command -v zsh >/dev/null; then
    zsh -n "$out/completions/berth.zsh" || { echo "gen-berth-docs: zsh -n rejects berth.zsh" >&2; fail=1; }
fi
if command -v fish >/dev/null; then
    fish -n "$out/completions/berth.fish" || { echo "gen-berth-docs: fish -n rejects berth.fish" >&2; fail=1; }
fi
if command -v man >/dev/null; then
    rendered=$(MANWIDTH=80 man -l "$out/man/berth.1" 2>/dev/null || true)
    [[ $rendered == *"berth"* ]] || { echo "gen-berth-docs: man cannot render berth.1" >&2; fail=1; }
fi
((fail == 0)) || exit 1
echo "gen-berth-docs: $(ls "$out/man" | wc -l) man pages and 3 completion scripts in $out"
