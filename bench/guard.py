#!/usr/bin/env python3
"""Benchmark regression guard.

Compares the Berth/reference median ratios in a bench/run.py --json result with
bench/baseline.json and exits 1 when any ratio is more than `factor` (2x) worse
than the recorded one. Only gross regressions fail: timings never gate normal
tests, and a scenario that was skipped in either file is reported, not failed.

    python3 bench/guard.py RESULT.json            # check
    python3 bench/guard.py --record RESULT.json   # write its ratios as the new baseline
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BASELINE = Path(__file__).resolve().parent / "baseline.json"


def ratios(result: dict) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for s in result.get("scenarios", []):
        if s.get("status") != "ok":
            continue
        r = {ref: v["median"] for ref, v in (s.get("ratios") or {}).items() if v.get("median")}
        if r:
            out[str(s["id"])] = r
    return out


def check(baseline: dict, fresh: dict[str, dict[str, float]]) -> list[str]:
    factor = float(baseline.get("factor", 2.0))
    failures = []
    for sid, refs in sorted(baseline["ratios"].items()):
        for ref, base in sorted(refs.items()):
            got = fresh.get(sid, {}).get(ref)
            if got is None:
                print(f"  {sid:>3} vs {ref:<14} baseline {base:7.3f}  fresh   (none)  not measured")
                continue
            limit = base * factor
            verdict = "ok" if got <= limit else "REGRESSION"
            print(f"  {sid:>3} vs {ref:<14} baseline {base:7.3f}  fresh {got:7.3f}  limit {limit:7.3f}  {verdict}")
            if got > limit:
                failures.append(f"scenario {sid} vs {ref}: ratio {got:.3f} > {factor} x {base:.3f}")
    return failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("result", help="JSON written by bench/run.py --json")
    ap.add_argument("--baseline", default=str(BASELINE))
    ap.add_argument("--record", action="store_true", help="store the result's ratios as the baseline")
    a = ap.parse_args()
    fresh = ratios(json.loads(Path(a.result).read_text()))
    base_path = Path(a.baseline)
    if a.record:
        old = json.loads(base_path.read_text()) if base_path.exists() else {}
        old["ratios"] = {k: {r: round(v, 3) for r, v in refs.items()} for k, refs in fresh.items()}
        tmp = base_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(old, indent=2) + "\n")
        tmp.replace(base_path)
        print(f"recorded {sum(len(v) for v in fresh.values())} ratios into {base_path}")
        return 0
    baseline = json.loads(base_path.read_text())
    print(f"benchmark guard: fail when a ratio is > {baseline.get('factor', 2.0)}x the baseline")
    failures = check(baseline, fresh)
    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
