"""Summarise a benchmarks/gpu_suite.sh run: WORK's part records and result files -> OUT/results.json, results.md, logs.txt.

Run by the suite after every part (so a suite stopped half-way still leaves its results):
    python benchmarks/gpu_suite_summary.py WORK OUT
Standard library only: it must work when torch or the build does not.
"""
from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

LOG_TAIL = 200_000  # characters of each part's log kept in logs.txt
TARGETS = {"critic_step": 1.3, "training_b64": 1.3, "training_b256": 1.0, "bandwidth": 0.8}


def read_parts(work: Path) -> list[dict]:
    """The suite's parts.tsv: name, status, rc, seconds, budget, note (one line each)."""
    path = work / "parts.tsv"
    parts = []
    for line in path.read_text().splitlines() if path.exists() else []:
        name, status, rc, seconds, budget, note = (line.split("\t") + [""] * 6)[:6]
        parts.append({"part": name, "status": status, "rc": int(rc or 0), "seconds": int(seconds or 0),
                      "budget_s": int(budget or 0), "note": note})
    return parts


def _load_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def tests_summary(work: Path) -> dict | None:
    """Counts and failed test ids from the junit XML of the tests part."""
    try:
        root = ET.parse(work / "tests.xml").getroot()
    except (OSError, ET.ParseError):
        return None
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    failed = []
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        if case.find("failure") is not None or case.find("error") is not None:
            counts["failed" if case.find("failure") is not None else "errors"] += 1
            failed.append(name)
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return {**counts, "failed_tests": failed}


def critic_summary(work: Path) -> list[dict] | None:
    """Median seconds per critic-step variant and each variant's speed-up over the plain baseline."""
    data = _load_json(work / "critic.json")
    if not data:
        return None
    medians: dict[str, dict[str, float]] = {}
    for bench in data.get("benchmarks", []):
        params = bench.get("params") or {}
        key = f"{params.get('device', '?')} {params.get('precision', '?')}"
        medians.setdefault(key, {})[params.get("variant", bench.get("name", "?"))] = bench["stats"]["median"]
    rows = []
    for key, variants in medians.items():
        base = variants.get("baseline")
        for variant, median in sorted(variants.items()):
            row = {"case": key, "variant": variant, "median_ms": 1e3 * median}
            if base and variant != "baseline":
                row["vs_baseline"] = base / median
                if variant == "gantools":
                    row["target"] = TARGETS["critic_step"]
                    row["met"] = row["vs_baseline"] >= row["target"]
            rows.append(row)
    return rows


def training_summary(work: Path) -> list[dict]:
    """One row per bench_training.py run (train-b<batch>-<variant>.json), with the ratio to the plain loop."""
    rows = []
    for path in sorted(work.glob("train-b*.json")):
        data = _load_json(path) or {}
        settings = data.get("settings", {})
        for result in data.get("results", []):
            rows.append({"batch": settings.get("batch"), "precision": settings.get("precision"),
                         "variant": result.get("variant"), "status": result.get("status"),
                         "images_per_s": result.get("images_per_s")})
    order = {"plain": 0, "gantools": 1}
    rows.sort(key=lambda r: (r["batch"] or 0, order.get(r["variant"], 2)))
    plain = {r["batch"]: r["images_per_s"] for r in rows if r["variant"] == "plain" and r["status"] == "ok"}
    for row in rows:
        if row["variant"] != "plain" and row["status"] == "ok" and plain.get(row["batch"]):
            row["vs_plain"] = row["images_per_s"] / plain[row["batch"]]
            target = TARGETS.get(f"training_b{row['batch']}")
            if target is not None:
                row["target"], row["met"] = target, row["vs_plain"] >= target
    return rows


def precision_summary(work: Path) -> list[dict]:
    """The JSON rows bench_distributed.py precision printed."""
    log = work / "precision.log"
    rows = []
    for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass
    return rows


def collect(work: Path) -> dict:
    bandwidth = _load_json(work / "bandwidth.json")
    return {"info": _load_json(work / "info.json") or {}, "imports": _load_json(work / "imports.json"),
            "parts": read_parts(work), "tests": tests_summary(work), "bandwidth": bandwidth,
            "critic_step": critic_summary(work), "training": training_summary(work),
            "precision": precision_summary(work), "targets": TARGETS}


def _fmt(value, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows] + [""]


def _met(row: dict) -> str:
    return "" if "met" not in row else ("met" if row["met"] else "**missed**")


def markdown_head(result: dict) -> list[str]:
    info = result["info"]
    lines = ["# GPU suite results (issue 15)", "",
             f"- device: {info.get('device_name', '?')}; torch {info.get('torch', '?')}, CUDA {info.get('cuda', '?')}, "
             f"driver {info.get('driver', '-')}",
             f"- commit: {info.get('commit', '?')}{' (+ uncommitted changes)' if info.get('dirty') else ''}; "
             f"date {info.get('date', '?')}; mode {info.get('mode', '?')}", ""]
    lines += _table(["part", "status", "seconds", "budget s", "note"],
                    [[p["part"], p["status"], p["seconds"], p["budget_s"], p["note"]] for p in result["parts"]])
    tests = result["tests"]
    if tests:
        lines += [f"Tests: {tests['passed']} passed, {tests['failed']} failed, {tests['errors']} errors, "
                  f"{tests['skipped']} skipped.", ""]
        lines += [f"- FAILED {name}" for name in tests["failed_tests"][:40]] + ([""] if tests["failed_tests"] else [])
    return lines


def markdown_results(result: dict) -> list[str]:
    lines = []
    bandwidth = (result["bandwidth"] or {}).get("bandwidth")
    if bandwidth:
        lines += ["## Op bandwidth (device time from CUDA-graph replay; target: penalty kernels >= 80% of copy)", ""]
        lines += _table(["op", "tensor", "MiB moved", "us device", "us one call", "GB/s", "of copy", "target"],
                        [[r["op"], r["tensor"], r["mib_moved"], r["us_device"], r["us_one_call"], r["gbs"],
                          f"{100 * r['of_copy']:.0f}%", _met(r)] for r in bandwidth])
    if result["critic_step"]:
        lines += ["## Critic step (target: gantools >= 1.3x the plain baseline)", ""]
        lines += _table(["case", "variant", "median ms", "vs baseline", "target"],
                        [[r["case"], r["variant"], r["median_ms"], _fmt(r.get("vs_baseline"), 2), _met(r)]
                         for r in result["critic_step"]])
    if result["training"]:
        lines += ["## Whole training, critic images/s (targets: >= 1.3x the plain loop at batch 64, >= 1.0x at 256)",
                  ""]
        lines += _table(["batch", "precision", "variant", "status", "images/s", "vs plain", "target"],
                        [[r["batch"], r["precision"], r["variant"], r["status"], r["images_per_s"],
                          _fmt(r.get("vs_plain"), 2), _met(r)] for r in result["training"]])
    if result["precision"]:
        lines += ["## Precision (bench_distributed.py precision)", ""]
        keys = list(result["precision"][0])
        lines += _table(keys, [[row.get(k) for k in keys] for row in result["precision"]])
    return lines


def write_logs(work: Path, out: Path, parts: list[dict]) -> None:
    """logs.txt: every part's log (its last LOG_TAIL characters) under a header, in suite order."""
    chunks = []
    for part in parts:
        log = work / f"{part['part']}.log"
        text = log.read_text(errors="replace") if log.exists() else "(no log)\n"
        cut = f"[... {len(text) - LOG_TAIL} characters cut ...]\n" if len(text) > LOG_TAIL else ""
        chunks.append(f"===== {part['part']}: {part['status']} (rc {part['rc']}, {part['seconds']} s)\n"
                      f"{cut}{text[-LOG_TAIL:]}\n")
    (out / "logs.txt").write_text("".join(chunks))


def main(argv: list[str]) -> int:
    work, out = Path(argv[0]), Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    result = collect(work)
    (out / "results.json").write_text(json.dumps(result, indent=1))
    (out / "results.md").write_text("\n".join(markdown_head(result) + markdown_results(result)))
    write_logs(work, out, result["parts"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
