#!/usr/bin/env bash
# GPU suite (issue 15): one prepared run on a lent H100/H200 that needs nothing outside the checkout.
#
#   bash benchmarks/gpu_suite.sh                                   # on the GPU machine, in the repo root
#   GANTOOLS_SUITE_CPU=1 PYTHON=.venv/bin/python bash benchmarks/gpu_suite.sh   # plumbing check, no GPU
#
# Parts, in order, each under its own `timeout`, with its own log, the suite going on when one
# fails: info (device, torch, CUDA, commit); build (the extension for sm_90, in place, installed
# editable without dependencies or an index); imports; tests (`pytest tests -k cuda`, native
# required); bandwidth (benchmarks/gpu_bandwidth.py); critic (bench_critic_step.py -k cuda: fp32
# and bf16 against the plain baseline); train-b<B>-{plain,gantools,graphs} (bench_training.py:
# whole-training images/s of gantools, eager and with --cuda-graphs, against a plain WGAN-GP loop,
# DCGAN 64x64x3, batch 64 and 256); nccl (1-process torchrun of `gantools run` and a 1-rank
# collective); precision (bench_distributed.py precision).
# CPU mode skips build, bandwidth, critic and precision, runs the rest with tiny settings on the CPU.
#
# Results under $OUT (default ./gpu_results), rewritten after every part: results.json,
# results.md and logs.txt (every part's log). Environment: PYTHON (default python3), OUT,
# GANTOOLS_SUITE_CPU=1, GANTOOLS_SUITE_BUDGET (seconds for the whole suite, default 470),
# GANTOOLS_SUITE_PARTS (comma-separated part names or prefixes to run; default all),
# GANTOOLS_SUITE_TESTS (pytest paths for the tests part), GANTOOLS_COMMIT (when the copy has no .git).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
PY="${PYTHON:-python3}"
OUT="${OUT:-$ROOT/gpu_results}"
CPU_MODE="${GANTOOLS_SUITE_CPU:-0}"
BUDGET="${GANTOOLS_SUITE_BUDGET:-470}"
PARTS="${GANTOOLS_SUITE_PARTS:-}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu_suite.XXXXXX")"
START=$(date +%s)
mkdir -p "$OUT"
rm -f "$OUT/results.json" "$OUT/results.md" "$OUT/logs.txt"
export PY WORK ROOT CPU_MODE PYTHONUNBUFFERED=1 PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
COMMIT="${GANTOOLS_COMMIT:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)}"
DIRTY="$(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l | tr -d ' ')"
export COMMIT DIRTY
if [ "$CPU_MODE" = 1 ]; then
  # One thread per process: on a small shared machine OpenMP's barriers otherwise cost more than the work.
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
  DEVICE=cpu; TRAIN_BATCHES="8"; TRAIN_ARGS="--steps 2 --warmup 1 --size 16 --width 8"
  TESTS="${GANTOOLS_SUITE_TESTS:-tests/ops/test_ops_backend.py}"
else
  DEVICE=cuda; TRAIN_BATCHES="64 256"; TRAIN_ARGS="--steps 50 --warmup 10 --size 64 --width 64"
  TESTS="${GANTOOLS_SUITE_TESTS:-tests}"
fi
export DEVICE TESTS

# record NAME STATUS RC SECONDS BUDGET NOTE, then rewrite the results under $OUT.
record() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "${6//$'\t'/ }" >> "$WORK/parts.tsv"
  "$PY" "$ROOT/benchmarks/gpu_suite_summary.py" "$WORK" "$OUT" || echo "== gpu suite: the summary failed"
}

wanted() {  # is part $1 selected by GANTOOLS_SUITE_PARTS (names or prefixes)?
  [ -z "$PARTS" ] && return 0
  local p
  for p in ${PARTS//,/ }; do [[ "$1" == "$p"* ]] && return 0; done
  return 1
}

# part NAME BUDGET COMMAND...: run COMMAND under timeout (clipped to the suite's budget), log to $WORK/NAME.log.
part() {
  local name="$1" budget="$2"; shift 2
  wanted "$name" || return 0
  local left=$(( BUDGET - ($(date +%s) - START) - 10 ))
  (( budget > left )) && budget=$left
  if (( budget < 15 )); then
    record "$name" skipped 0 0 0 "the suite's time budget (${BUDGET}s) is spent"
    return 0
  fi
  echo "== gpu suite: $name (timeout ${budget}s, $(( $(date +%s) - START ))s into the suite)"
  local t0 rc status note=""
  t0=$(date +%s)
  timeout --kill-after=10 "$budget" "$@" > "$WORK/$name.log" 2>&1
  rc=$?
  status=ok
  # A part may explain itself in WORK/NAME.note; else a failure's note is its log's last line.
  [ -s "$WORK/$name.note" ] && note="$(head -c 300 "$WORK/$name.note" | tr '\n\t' '  ' | sed 's/ *$//')"
  if (( rc == 124 || rc == 137 )); then
    status=timeout; note="stopped after ${budget}s${note:+; $note}"
  elif (( rc != 0 )); then
    status=failed; [ -n "$note" ] || note="$(grep -v '^\s*$' "$WORK/$name.log" | tail -n 1 | cut -c1-200)"
  fi
  record "$name" "$status" "$rc" "$(( $(date +%s) - t0 ))" "$budget" "$note"
  tail -n 4 "$WORK/$name.log" | cut -c1-200 | sed 's/^/   /'
}

skip() {  # skip NAME REASON
  wanted "$1" && record "$1" skipped 0 0 0 "$2"
  return 0
}

info() {
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null
  "$PY" - <<'EOF'
import json, os, time
import torch
cuda = torch.cuda.is_available()
info = {"device_name": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__,
        "cuda": torch.version.cuda, "commit": os.environ["COMMIT"], "dirty": int(os.environ["DIRTY"] or 0),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "mode": "cpu (GANTOOLS_SUITE_CPU=1)" if os.environ["CPU_MODE"] == "1" else "gpu"}
if cuda:
    p = torch.cuda.get_device_properties(0)
    info.update(sms=p.multi_processor_count, memory_gib=round(p.total_memory / 2**30, 1))
    info["driver"] = os.popen("nvidia-smi --query-gpu=driver_version --format=csv,noheader").read().strip()
json.dump(info, open(os.path.join(os.environ["WORK"], "info.json"), "w"), indent=1)
print(" ".join(f"{k}={v}" for k, v in info.items()))
EOF
}

build() {
  export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" FORCE_CUDA=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}"
  # C++ exceptions from the extension crashed an earlier image when built with its default CXX (/opt/gcc).
  if [ -z "${CXX:-}" ] && [ -x /usr/bin/g++ ]; then export CXX=/usr/bin/g++; fi
  nvcc --version | tail -n 2
  "$PY" -m pip install --no-build-isolation --no-deps --no-index -e . && return 0
  echo "pip install -e failed; building in place only (the plugins' entry points will be missing)" | tee "$WORK/build.note"
  "$PY" setup.py build_ext --inplace
}

imports() {
  "$PY" - <<'EOF'
import importlib, json, os
missing = {}
for name in ("numpy", "PIL", "sklearn", "click", "matplotlib", "tqdm", "gantools", "gantools_plugins"):
    try:
        importlib.import_module(name)
    except Exception as exc:
        missing[name] = f"{type(exc).__name__}: {exc}"
from gantools.ops import _backend
native = _backend._load_native()
result = {"missing": missing, "native": native, "reason": _backend._state["reason"]}
if native:
    import torch
    result["backends"] = _backend.backends()
json.dump(result, open(os.path.join(os.environ["WORK"], "imports.json"), "w"), indent=1)
print(json.dumps(result, indent=1))
note = "; ".join(f"{k} missing" for k in missing) + ("" if native else f"; native not loadable: {result['reason']}")
open(os.path.join(os.environ["WORK"], "imports.note"), "w").write(note.strip("; "))
raise SystemExit(1 if missing or not native else 0)
EOF
}

tests() {
  # shellcheck disable=SC2086
  GANTOOLS_REQUIRE_NATIVE=1 "$PY" -m pytest $TESTS -k cuda -q -p no:cacheprovider --continue-on-collection-errors \
    --junitxml="$WORK/tests.xml" -o junit_family=xunit1
}

train() {  # train BATCH VARIANT [--cuda-graphs]; a refusal goes into the part's note
  local batch="$1" variant="$2"; shift 2
  local name="train-b$batch-${1:+graphs}"
  [ -n "${1:-}" ] || name="train-b$batch-$variant"
  # shellcheck disable=SC2086
  "$PY" benchmarks/bench_training.py --device "$DEVICE" --batch "$batch" $TRAIN_ARGS --variants "$variant" "$@" \
    --json "$WORK/$name.json" || return 1
  "$PY" -c "import json, sys; print('; '.join(r['status'] for r in json.load(open(sys.argv[1]))['results'] if r['status'] != 'ok'))" \
    "$WORK/$name.json" > "$WORK/$name.note"
}

nccl() {
  local backend=nccl
  [ "$DEVICE" = cpu ] && backend=gloo
  # A world of 1 trains as a single process (no process group), so the collective is checked apart.
  cat > "$WORK/collective.py" <<EOF
import torch, torch.distributed as dist
dist.init_process_group("$backend")
t = torch.ones(4, device="$DEVICE") * (dist.get_rank() + 1)
dist.all_reduce(t)
assert t.sum().item() == 4 * dist.get_world_size(), t
print(f"$backend all_reduce ok: world {dist.get_world_size()}, backend {dist.get_backend()}")
dist.destroy_process_group()
EOF
  "$PY" -m torch.distributed.run --standalone --nproc_per_node 1 "$WORK/collective.py" || return 1
  "$PY" -m torch.distributed.run --standalone --nproc_per_node 1 -m gantools run --device "$DEVICE" \
    --steps "${NCCL_STEPS:-5}" --log-every 1 --sample-every 100 --checkpoint-every 100 --no-progress \
    --out "$WORK/nccl-run" || return 1
  tail -n 2 "$WORK/nccl-run/metrics.jsonl"
}

export -f info build imports tests train nccl
export TRAIN_ARGS

part info 30 bash -c info
cat "$WORK/info.log" 2>/dev/null
if [ "$CPU_MODE" = 1 ]; then
  skip build "CPU mode: the installed package is used"
else
  part build 240 bash -c build
fi
part imports 30 bash -c imports
part tests 120 bash -c tests
if [ "$CPU_MODE" = 1 ]; then
  skip bandwidth "CPU mode: needs CUDA"
  skip critic "CPU mode: needs CUDA (CPU figures: pytest benchmarks/bench_critic_step.py -k cpu)"
else
  part bandwidth 90 "$PY" benchmarks/gpu_bandwidth.py --json "$WORK/bandwidth.json"
  part critic 90 "$PY" -m pytest benchmarks/bench_critic_step.py -k cuda -q -p no:cacheprovider \
    --benchmark-group-by=group --benchmark-json="$WORK/critic.json"
fi
for batch in $TRAIN_BATCHES; do
  part "train-b$batch-plain" 60 bash -c "train $batch plain"
  part "train-b$batch-gantools" 60 bash -c "train $batch gantools"
  part "train-b$batch-graphs" 60 bash -c "train $batch gantools --cuda-graphs"
done
if [ "$CPU_MODE" = 1 ]; then
  NCCL_STEPS=2 part nccl 60 bash -c nccl
  skip precision "CPU mode: fp16 on a CPU is very slow (GPU figures: bench_distributed.py precision --device cuda)"
else
  part nccl 60 bash -c nccl
  part precision 90 "$PY" benchmarks/bench_distributed.py precision --device cuda --rounds 15
fi

echo "== gpu suite: done in $(( $(date +%s) - START ))s; results in $OUT (work files in $WORK)"
cat "$OUT/results.md" 2>/dev/null
