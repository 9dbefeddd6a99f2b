#!/usr/bin/env bash
# The main job: set up, then train the default DCGAN / WGAN-GP on the embedded digits and
# write sample grids (runs/main-*/samples/latest.png) and the run's HTML report (report.html).
# Extra arguments go to `gantools run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out="runs/main-$(date +%Y%m%d-%H%M%S)"
.venv/bin/gantools run --arch dcgan --loss wgan-gp --dataset digits --out "$out" "$@"
.venv/bin/gantools sample "$out" --n 100 --out "$out/samples/final_100.png"
.venv/bin/gantools report "$out" >/dev/null
echo "[main] sample grid: $out/samples/final_100.png  (training grids: $out/samples/, curves: $out/plots/)"
echo "[main] the whole run on one page: $out/report.html  (open it in a browser; gantools report $out)"
