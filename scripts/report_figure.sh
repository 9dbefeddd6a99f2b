#!/usr/bin/env bash
# The README's HTML report screenshot, from a real run on this machine's CPU:
#   bash scripts/report_figure.sh [WORK_DIR]      (default runs/report; ~10 minutes on 2 cores)
# Trains a digits DCGAN/WGAN-GP with periodic evaluation, scores it (gantools eval), fits and
# scores an encoder inverter, inverts held-out digits into the run directory, writes
# RUN/report.html with gantools report and screenshots it in headless Chromium into
# docs/report_screenshot.png (docs/report_screenshot.json records the run and the page).
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-runs/report}
GT=".venv/bin/gantools"
PY=".venv/bin/python"
BROWSER=$(command -v chromium || command -v chromium-browser || true)
[ -n "$BROWSER" ] || { echo "report_figure: needs chromium (apt-get install -y chromium)" >&2; exit 1; }
[ -f "$W/checkpoints/latest.pt" ] || \
  $GT run --out "$W" --steps 2000 --sample-every 100 --eval-every 500 --eval-metrics digits --dataset-opt split=train
$GT plot "$W"
$GT eval "$W" --n 1000
[ -f "$W/inverters/encoder.pt" ] || $GT invert fit "$W" --inverter encoder
$GT invert eval "$W" --inverter encoder --n 200
$PY - "$W" <<'PYEOF'
import sys
from pathlib import Path
import numpy as np
from sklearn.datasets import load_digits
# 16 held-out-style digits (the last of the 1,797, 8x8 at 0..16 -> 8-bit) for gantools invert apply
x = load_digits().images[-16:]
np.savez(Path(sys.argv[1]) / "to_invert.npz", images=np.round(x * 255 / 16).astype(np.uint8))
PYEOF
$GT invert apply "$W" --inverter encoder --images "$W/to_invert.npz" --out "$W/inverted"
$GT report "$W"
"$BROWSER" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$(mktemp -d)" \
  --window-size=1200,3000 --screenshot="$PWD/docs/report_screenshot.png" "file://$PWD/$W/report.html"
$PY - "$W" <<'PYEOF'
import json, os, sys, datetime, subprocess
run = sys.argv[1]
page = os.path.join(run, "report.html")
info = {"run": run, "page_bytes": os.path.getsize(page), "images": open(page).read().count("<img"),
        "command": "bash scripts/report_figure.sh", "window": [1200, 3000],
        "date": datetime.date.today().isoformat(),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()}
json.dump(info, open("docs/report_screenshot.json", "w"), indent=2)
print(info)
PYEOF
