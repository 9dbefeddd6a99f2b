#!/usr/bin/env bash
# The test suite: set up, then run pytest (the default selection; slow runs are opt-in with -m slow).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The HTML report test opens the page in a real headless Chromium (Debian's package); install it
# where it is missing and apt-get can (root). Without it that one test is skipped with the reason.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "[test] installing chromium for the HTML report's browser test"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
        || echo "[test] could not install chromium: the browser test will be skipped" >&2
fi
set +e
.venv/bin/python -m pytest "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
    echo "[test] pytest collected no tests: failing" >&2
    exit 1
fi
exit "$code"
