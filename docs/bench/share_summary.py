"""The distribution over repeated ``bench sampling`` runs (the JSON files in each DIR, pooled) of each
sampler's share of the matmul peak, eager and compiled, how many runs reach 75 %, and ``commit``'s and
``adaptive``'s time per network call against ``ode``'s in the same run, and per DIR the spread of the
measured peak beside ``ode``'s achieved FLOP/s: the last step of
docs/bench/sampling_share_runs.sh (docs/benchmarks.md, "Sampling at the machine's limit", fifth block).

    python docs/bench/share_summary.py DIR [DIR ...]
"""

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

shares, per_call, gflops = defaultdict(list), defaultdict(list), defaultdict(list)
for path in sorted(p for folder in sys.argv[1:] for p in Path(folder).glob("sampling-*.json")):
    rows = {row["sampler"]: row for row in json.loads(path.read_text())["rows"]}
    mode = "compiled" if next(iter(rows.values()))["compile"] else "eager"
    for name, row in rows.items():
        shares[mode, name].append(row["fraction_of_peak"])
    for name in ("commit", "adaptive"):
        if name in rows:  # a run may time the plain samplers alone
            per_call[mode, name].append(rows[name]["s_per_call"] / rows["ode"]["s_per_call"])
    gflops[path.parent.name].append((rows["ode"]["peak_gflops"], rows["ode"]["achieved_gflops"]))
print("mode      sampler   runs  median   min    max    runs >= 75 %")
for (mode, name), values in shares.items():
    print(f"{mode:9s} {name:9s} {len(values):4d}  {statistics.median(values):.3f}  {min(values):.3f}  "
          f"{max(values):.3f}  {sum(v >= 0.75 for v in values)}")
for (mode, name), values in per_call.items():
    print(f"{mode:9s} {name} per call vs ode: median {statistics.median(values):.2f}x, "
          f"range {min(values):.2f}-{max(values):.2f}x")
for folder, pairs in gflops.items():  # does the peak move with the host as much as a batch does?
    peaks, achieved = [p for p, _ in pairs], [a for _, a in pairs]
    print(f"{folder}: peak {min(peaks):.0f}-{max(peaks):.0f} GFLOP/s (median {statistics.median(peaks):.0f}), "
          f"ode {min(achieved):.0f}-{max(achieved):.0f} (median {statistics.median(achieved):.0f}), "
          f"eager and compiled runs together")
