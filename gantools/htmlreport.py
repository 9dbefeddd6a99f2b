"""`gantools report`: one self-contained HTML page of a run (config with sources, curves, grids,
timelapse, evaluations, inversion results); images inlined as data: URIs, no script, no network."""
from __future__ import annotations

import base64
import html
import json
import math
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from PIL import Image

from gantools import animation, diagnostics, fileio
from gantools.errors import UserError
from gantools.metrics import scalar_items
from gantools.report import read_metrics

MIME = {".png": "image/png", ".gif": "image/gif", ".webp": "image/webp", ".jpg": "image/jpeg"}
STEP_GRIDS_SHOWN = 4  # fixed-latent grids shown beside the latest one
TIMELAPSE_FRAMES = 24  # at most, so the page stays small (a GIF frame of an 8x8 grid: ~100 kB)
WIDE_PX = 1500  # a plot at least this wide (the periodic evaluation's panels) spans the page
JSONL_ROWS = 5  # last rows of an inverter's history shown
CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em}td,th{border:1px solid #ddd;padding:.2em .6em;
text-align:left;vertical-align:top}th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{display:inline-block;margin:.4em 1em .8em 0;vertical-align:top}figcaption{font-size:.85em;color:#555}
img{max-width:100%;image-rendering:pixelated}img.plot{image-rendering:auto;width:520px}
img.wide{width:100%}img.grid{width:400px}img.step{width:250px}
.row{display:flex;gap:2em;flex-wrap:wrap}summary{cursor:pointer;color:#06c}
nav a{margin-right:1em}.note{color:#777;font-style:italic}"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def image_tag(data: bytes, mime: str, alt: str, css_class: str = "") -> str:
    """An <img> holding ``data`` as a base64 data: URI."""
    src = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    klass = f' class="{esc(css_class)}"' if css_class else ""
    return f'<img src="{src}" alt="{esc(alt)}"{klass}>'


def figure(path: Path, caption: str, css_class: str = "") -> str:
    """A <figure> of the image file ``path``, inlined, with ``caption``."""
    tag = image_tag(path.read_bytes(), MIME.get(path.suffix.lower(), "image/png"), caption, css_class)
    return f"<figure>{tag}<figcaption>{esc(caption)}</figcaption></figure>"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """An HTML table of escaped cells; numbers right-aligned and shown to 4 significant digits."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = [f'<td class="num">{esc(_fmt(c))}</td>' if isinstance(c, (int, float)) and not isinstance(c, bool)
                 else f"<td>{esc(_fmt(c))}</td>" for c in row]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def flatten(record: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts as (dotted key, scalar) pairs; lists are left out unless short and flat."""
    if isinstance(record, dict):
        return [pair for key, value in record.items() for pair in flatten(value, f"{prefix}{key}.")]
    if isinstance(record, list) and not (len(record) <= 8 and all(isinstance(v, (int, float, str)) for v in record)):
        return []
    return [(prefix.rstrip("."), record)]


# ---- sections ---------------------------------------------------------------------------------
def config_section(record: dict[str, Any]) -> str:
    """The resolved config, where each value came from, the data and the versions."""
    sources = record.get("sources", {})
    rows = [(key, value, sources.get(key, "")) for key, value in record.get("config", {}).items()]
    chosen = [row for row in rows if row[2] != "default"]
    parts = [f"<h3>settings not at their default ({len(chosen)} of {len(rows)})</h3>",
             table(["setting", "value", "from"], chosen),
             f"<details><summary>all {len(rows)} settings</summary>{table(['setting', 'value', 'from'], rows)}"
             "</details>", '<div class="row">']
    if record.get("data"):
        parts.append("<div><h3>data</h3>" + table(["field", "value"], flatten(record["data"])) + "</div>")
    if record.get("versions"):
        parts.append("<div><h3>versions</h3>" + table(["package", "version"], flatten(record["versions"])) + "</div>")
    return "".join(parts) + "</div>"


def curves_section(run_dir: Path) -> str:
    """RUN/plots/*.png, or the curves drawn now from metrics.jsonl when the run has none yet."""
    plots = sorted((run_dir / "plots").glob("*.png"))
    if plots:
        return _plot_figures(plots, run_dir / "plots" / "plots.json")
    metrics = run_dir / "metrics.jsonl"
    if not metrics.is_file():
        return note("no metrics.jsonl: nothing logged yet")
    with tempfile.TemporaryDirectory() as tmp:
        written = diagnostics.plot_run(metrics, tmp)
        return _plot_figures(sorted(written.values()), Path(tmp) / "plots.json") if written else note(
            "metrics.jsonl has no logged rows yet")


def _plot_figures(paths: Sequence[Path], index: Path) -> str:
    titles = {}
    if index.is_file():
        titles = {v["file"]: v.get("title", "") for v in load_json(index).values()}
    return "".join(figure(p, titles.get(p.name) or p.stem, "plot wide" if _width(p) > WIDE_PX else "plot")
                   for p in paths)


def _width(path: Path) -> int:
    try:
        with Image.open(path) as image:
            return image.width
    except OSError:  # not an image Pillow reads: inlined as it is, the browser shows its alt text
        return 0


def load_json(path: Path) -> Any:
    """The JSON in ``path``.

    Raises:
        UserError: the file is not valid JSON (torn or hand-edited), naming it.
    """
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not valid JSON ({error})") from None


def guarded(section: Callable[[Path], str], run_dir: Path) -> str:
    """``section(run_dir)``, or a note saying why it cannot be shown: one unreadable or malformed
    result file costs its own section, not the page."""
    try:
        return section(run_dir)
    except UserError as error:
        return note(f"cannot show this part: {error}")
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        return note(f"cannot show this part: a file in {run_dir} is not laid out as gantools writes it "
                    f"({type(error).__name__}: {error})")


def samples_section(run_dir: Path) -> str:
    """samples/latest.png, then a few fixed-latent grids spread over training (first and last included)."""
    parts = []
    if (run_dir / "samples" / "latest.png").is_file():
        parts.append(figure(run_dir / "samples" / "latest.png", "latest samples", "grid"))
    grids = animation.step_grids(run_dir)
    if len(grids) > STEP_GRIDS_SHOWN:
        picks = {round(i * (len(grids) - 1) / (STEP_GRIDS_SHOWN - 1)) for i in range(STEP_GRIDS_SHOWN)}
        grids = [grids[i] for i in sorted(picks)]
    if grids:
        parts.append("<h3>fixed latents over training</h3>")
        parts += [figure(path, f"step {step}", "step") for step, path in grids]
    return "".join(parts) or note("no sample grids yet")


def timelapse_section(run_dir: Path) -> str:
    """The fixed-latent grids as a GIF (gantools animate), at most TIMELAPSE_FRAMES frames."""
    count = len(animation.step_grids(run_dir))
    if count < 2:
        return note("fewer than two fixed-latent grids: no timelapse")
    frames = animation.run_frames(run_dir, every=math.ceil(count / TIMELAPSE_FRAMES))
    data = animation.encode_animation([image for _, image in frames], "GIF", fps=4, hold_last=2.0)
    caption = f"{len(frames)} grids, steps {frames[0][0]} to {frames[-1][0]}"
    return f"<figure>{image_tag(data, 'image/gif', 'timelapse', 'grid')}<figcaption>{esc(caption)}</figcaption></figure>"


def eval_section(run_dir: Path) -> str:
    """RUN/eval.json (gantools eval) as a table, and the periodic evaluations of metrics.jsonl per step."""
    parts = []
    path = run_dir / "eval.json"
    if path.is_file():
        result = load_json(path)
        rows = [(name, figures.get("label", ""), key, value, result.get("seconds", {}).get(name, "")) if i == 0
                else ("", "", key, value, "")  # metric, label and seconds on its first row only
                for name, figures in result.get("metrics", {}).items()
                for i, (key, value) in enumerate(scalar_items(figures))]
        rows += [(name, "", "skipped", reason, "") for name, reason in result.get("skipped", {}).items()]
        parts.append(f"<h3>gantools eval: {esc(result.get('n', '?'))} samples, step {esc(result.get('step', '?'))}, "
                     f"checkpoint {esc(result.get('checkpoint', '?'))}</h3>")
        parts.append(table(["metric", "label", "figure", "value", "seconds"], rows))
    else:
        parts.append(note(f"no eval.json: run gantools eval {run_dir}"))
    per_step = [row for row in read_metrics(run_dir / "metrics.jsonl") if "eval" in row]
    if per_step:
        columns = sorted({f"{m}.{k}" for row in per_step for m, f in row["eval"].items() for k, _ in scalar_items(f)})
        cells = [[row["step"]] + [_dig(row["eval"], c) for c in columns] for row in per_step]
        parts.append("<h3>during training (--eval-every)</h3>" + table(["step", *columns], cells))
    return "".join(parts)


def _dig(figures: dict[str, Any], column: str) -> Any:
    metric, _, key = column.partition(".")
    return figures.get(metric, {}).get(key, "")


def inversion_section(run_dir: Path) -> str:
    """RUN/inverters: fit histories (NAME.png, the last rows of NAME.jsonl) and evaluations
    (eval_NAME.json); and the outputs of gantools invert written inside the run."""
    parts = []
    folder = run_dir / "inverters"
    for path in sorted(folder.glob("*.png")):
        parts.append(figure(path, f"inverter {path.stem}: fit history", "plot"))
    for path in sorted(folder.glob("*.jsonl")):
        rows = read_metrics(path)  # a torn last line is left out
        if rows:
            keys = list(rows[-1])
            parts.append(f"<h3>{esc(path.name)}: last {min(len(rows), JSONL_ROWS)} of {len(rows)} rows</h3>")
            parts.append(table(keys, [[row.get(k, "") for k in keys] for row in rows[-JSONL_ROWS:]]))
    for path in sorted(folder.glob("*.json")):
        parts.append(f"<h3>{esc(path.name)}</h3>" + table(["figure", "value"], flatten(load_json(path))))
    for path in sorted(run_dir.rglob("side_by_side.png")):
        parts.append(_inverted(path.parent, run_dir))
    return "".join(parts) or note("no inversion results in the run directory")


def _inverted(folder: Path, run_dir: Path) -> str:
    """One gantools invert output folder: inputs beside reconstructions, and the mean errors."""
    where = folder.relative_to(run_dir).as_posix()
    parts = [f"<h3>gantools invert: {esc(where)}</h3>",
             figure(folder / "side_by_side.png", "inputs | reconstructions", "grid")]
    errors = folder / "errors.json"
    if errors.is_file():
        rows = load_json(errors)
        if rows:
            means = [(k, sum(r[k] for r in rows) / len(rows)) for k in rows[0] if k != "index"]
            parts.append(table(["mean over %d images" % len(rows), "value"], means))
    return "".join(parts)


# ---- the page ---------------------------------------------------------------------------------
def build(run_dir: str | Path) -> str:
    """The HTML page of the run in ``run_dir``.

    Raises:
        UserError: no config.json (not a run directory), or one that is not valid JSON or has no
            config object. Any other result file that cannot be read costs only its section.
    """
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise UserError(f"no config.json in {run_dir}: not a run directory")
    record = load_json(config_path)
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise UserError(f"{config_path} is not a gantools config.json (no config object)")
    config = record["config"]
    parts = [("samples", "Samples", samples_section), ("curves", "Training curves", curves_section),
             ("eval", "Evaluation", eval_section), ("timelapse", "Timelapse", timelapse_section),
             ("inversion", "Inversion", inversion_section), ("config", "Configuration", lambda _: config_section(record))]
    sections = [(key, name, guarded(section, run_dir)) for key, name, section in parts]
    title = (f"{run_dir.resolve().name}: {config.get('arch', '?')} / {config.get('loss', '?')} / "
             f"{config.get('dataset', '?')}")
    nav = "".join(f'<a href="#{key}">{esc(name)}</a>' for key, name, _ in sections)
    body = "".join(f'<section id="{key}"><h2>{esc(name)}</h2>{html_}</section>' for key, name, html_ in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1><p>{esc(run_dir.resolve())}</p>"
            f"<nav>{nav}</nav>{body}</body></html>\n")


def write(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of ``run_dir`` to ``out`` (default RUN/report.html), atomically."""
    out = Path(out) if out is not None else Path(run_dir) / "report.html"
    return fileio.atomic_write(out, build(run_dir))
