"""`gantools report`: the self-contained HTML page of a run, checked as text and in a real
headless Chromium (every image loads, the eval table is there, the screenshot is not blank)."""
from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from gantools import htmlreport
from gantools.cli import main

IMG = re.compile(r'<img src="data:(image/[a-z]+);base64,([A-Za-z0-9+/=]+)" alt="([^"]*)"')


def _png(path, grey, size=(24, 20)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, grey).save(path)


@pytest.fixture
def run_dir(tmp_path):
    """A made-up run directory with every part the report reads (no training: fast)."""
    run = tmp_path / "run"
    config = {"arch": "dcgan", "loss": "wgan-gp", "dataset": "digits", "steps": 40, "lr": 0.0004,
              "dataset_opts": {"note": "<b>&not bold</b>"}}
    sources = {"arch": "cli", "loss": "cli", "dataset": "cli", "steps": "cli", "lr": "dataset:digits",
               "dataset_opts": "default"}
    (run / "samples").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"config": config, "sources": sources, "data": {"shape": [1, 16, 16]},
                                                 "versions": {"gantools": "0.1.0"}}))
    rows = [{"step": s, "d_loss": -s / 10, "g_loss": s / 20, "wasserstein": 1.0, "lr": 0.0004} for s in (10, 20, 30, 40)]
    rows += [{"step": 20, "eval": {"digits": {"confident": 0.5, "classes_covered": 9, "per_class": [1, 2]}}},
             {"step": 40, "eval": {"digits": {"confident": 0.75, "classes_covered": 10}}}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for k, step in enumerate((10, 20, 30, 40)):
        _png(run / "samples" / f"step_{step:07d}.png", 50 * k)
    _png(run / "samples" / "latest.png", 150)
    (run / "eval.json").write_text(json.dumps({"n": 100, "step": 40, "checkpoint": "latest.pt", "seconds": {"digits": 1.5},
                                               "metrics": {"digits": {"confident": 0.8125, "label": "digits <cls>",
                                                                       "classes_covered": 10}},
                                               "skipped": {"fid": "needs <features>"}}))
    _png(run / "inverters" / "encoder.png", 90)
    (run / "inverters" / "encoder.jsonl").write_text("".join(json.dumps({"step": s, "mse": 1 / s}) + "\n"
                                                             for s in range(1, 9)))
    (run / "inverters" / "eval_encoder.json").write_text(json.dumps({"real": {"mse": 0.25, "n": 10}}))
    _png(run / "inverted" / "side_by_side.png", 200)
    (run / "inverted" / "errors.json").write_text(json.dumps([{"index": 0, "mse": 0.5, "psnr_db": 9.0},
                                                              {"index": 1, "mse": 0.25, "psnr_db": 12.0}]))
    return run


def _images(page: str) -> dict[str, Image.Image]:
    """alt -> image of every <img> of the page (each decoded from its data: URI)."""
    found = {}
    for mime, data, alt in IMG.findall(page):
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        assert image.format.lower() == mime.split("/")[1]
        found[alt] = image
    return found


def test_page_holds_every_part_inlined_and_escaped(run_dir):
    path = htmlreport.write(run_dir)
    assert path == run_dir / "report.html"
    page = path.read_text()
    assert page.count("<img") == len(IMG.findall(page)) == 12  # 4 curves, latest + 4 grids, timelapse, 2 inversion
    images = _images(page)
    assert images["timelapse"].n_frames == 4 and images["step 10"].size == (24, 20)
    assert "src=\"http" not in page and "<script" not in page and "<link" not in page
    assert "&lt;b&gt;&amp;not bold&lt;/b&gt;" in page and "<b>&not" not in page  # config text escaped
    assert "digits &lt;cls&gt;" in page and "needs &lt;features&gt;" in page
    assert re.search(r"<td>lr</td><td class=\"num\">0.0004</td><td>dataset:digits</td>", page)
    assert "settings not at their default (5 of 6)" in page
    # gantools eval's table, and the --eval-every rows one per step
    assert ('<td>digits</td><td>digits &lt;cls&gt;</td><td>confident</td><td class="num">0.8125</td>'
            '<td class="num">1.5</td></tr><tr><td></td><td></td><td>classes_covered</td><td class="num">10</td><td></td>'
            ) in page  # the metric's name, label and seconds on its first row only
    assert ("<th>step</th><th>digits.classes_covered</th><th>digits.confident</th></tr><tr><td class=\"num\">20</td>"
            "<td class=\"num\">9</td><td class=\"num\">0.5</td></tr>") in page
    assert "encoder.jsonl: last 5 of 8 rows" in page and "<td>real.mse</td>" in page
    assert 'mean over 2 images</th><th>value</th></tr><tr><td>mse</td><td class="num">0.375</td>' in page
    assert not (run_dir / "plots").exists()  # curves drawn into a temporary folder, not the run


def test_existing_plots_are_used_and_an_empty_run_still_renders(run_dir, tmp_path):
    _png(run_dir / "plots" / "losses.png", 10)
    _png(run_dir / "plots" / "periodic_eval.png", 10, size=(1600, 20))
    page = htmlreport.build(run_dir)
    assert list(_images(page))[5:7] == ["losses", "periodic_eval"] and page.count("<img") == 10  # none drawn
    assert 'alt="losses" class="plot">' in page and 'alt="periodic_eval" class="plot wide">' in page
    assert [m.group(1) for m in re.finditer(r'<section id="(\w+)">', page)] == [
        "samples", "curves", "eval", "timelapse", "inversion", "config"]  # what people look at first
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text(json.dumps({"config": {"arch": "mlp"}, "sources": {}}))
    page = htmlreport.build(bare)
    assert "<img" not in page and "no eval.json" in page and "no sample grids yet" in page


def test_cli_report(run_dir, tmp_path, capsys, cli_error):
    with pytest.raises(SystemExit) as info:
        main(["report", str(run_dir), "--out", str(tmp_path / "r.html")])
    assert info.value.code == 0 and f"wrote {tmp_path / 'r.html'}" in capsys.readouterr().out
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    assert "no config.json in" in cli_error(["report", str(tmp_path / "nothing")])


# ---- in a real browser ----------------------------------------------------------------------
CHECK = """<script>window.addEventListener("load", () => {
  const imgs = [...document.images], ok = imgs.filter(i => i.complete && i.naturalWidth > 0);
  document.body.dataset.images = ok.length + "/" + imgs.length;
  document.body.dataset.evalTables = document.querySelectorAll("#eval table").length;
});</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no chromium on PATH: scripts/test.sh installs it with apt-get (apt-get install -y chromium); "
                "without apt-get or root, install Chromium to run the browser check")


def _browse(browser: str, page, *args) -> subprocess.CompletedProcess:
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={page.parent / 'profile'}", *args, page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_every_image_loads_in_headless_chromium(run_dir, tmp_path):
    browser = _chromium()
    page = tmp_path / "checked.html"
    page.write_text(htmlreport.build(run_dir).replace("</body>", CHECK + "</body>"))
    dom = _browse(browser, page, "--virtual-time-budget=5000", "--dump-dom")
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body, dom.stderr[-2000:]
    assert 'data-images="12/12"' in body.group(1) and 'data-eval-tables="2"' in body.group(1)
    shot = tmp_path / "shot.png"
    _browse(browser, page, "--window-size=1200,2000", f"--screenshot={shot}")
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.shape == (2000, 1200)
    assert pixels.std() > 20 and (pixels < 100).mean() > 0.01  # text, tables and grids drawn, not a blank page


def test_unreadable_files_cost_their_section_or_one_clear_line(run_dir, tmp_path, cli_error):
    (run_dir / "eval.json").write_text('{"n": 10, "metr')  # torn
    (run_dir / "inverted" / "errors.json").write_text("[1, 2]")  # not what gantools invert writes
    with open(run_dir / "inverters" / "encoder.jsonl", "a") as handle:
        handle.write('{"step": 9, "ms')  # torn last line: left out
    (run_dir / "samples" / "latest.png").write_bytes(b"\x89PNG torn")
    page = htmlreport.build(run_dir)
    assert re.search(r"cannot show this part: \S*eval.json is not valid JSON", page)
    assert "encoder.jsonl: last 5 of 8 rows" not in page  # the inversion section is the one that failed
    assert "cannot show this part: a file in" in page and "<section id=\"config\">" in page
    assert page.count("cannot show this part") == 2 and 'alt="latest samples"' in page  # torn PNG: inlined as is
    (run_dir / "config.json").write_text("[]")
    assert "is not a gantools config.json" in cli_error(["report", str(run_dir)])
    (run_dir / "config.json").write_text('{"config": {"ar')
    assert "config.json is not valid JSON" in cli_error(["report", str(run_dir)])
    assert not (run_dir / "report.html").exists()


def test_an_unwritable_out_is_one_line(run_dir, tmp_path, cli_error):
    (tmp_path / "afile").write_text("x")
    err = cli_error(["report", str(run_dir), "--out", str(tmp_path / "afile" / "r.html")])
    assert f"{tmp_path / 'afile' / 'r.html'}: cannot write there ({tmp_path / 'afile'} is not a directory)" in err
