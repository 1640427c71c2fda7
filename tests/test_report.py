"""``tokengraft report``: the page's content from a run folder's records, and (slow) that it
renders in headless Chromium."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from arch_fixtures import FAMILIES, transplant_family
from test_heal_helpers import one_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    _, _, out = transplant_family(FAMILIES["llama"], tmp_path_factory.mktemp("report"))
    record = json.loads((out / "transplant.json").read_text())
    record["eval"] = [{"corpus": "libreoffice:fr:heldout", "before": {"bpb": 1.1729, "tokens_per_byte": 0.3336},
                       "after": {"bpb": 1.6593, "tokens_per_byte": 0.2354}}]
    (out / "transplant.json").write_text(json.dumps(record))
    (out / "heal.json").write_text(json.dumps({
        "options": {"mode": "alm", "corpus": ["libreoffice:fr:train"]}, "steps": 20, "tokens_seen": 20480,
        "seconds": 9.5,
        "loss_curve": [{"step": s, "tokens": 1024 * s, "loss": 3.0 - 0.05 * s} for s in range(1, 21)],
        "eval_curve": [{"tokens": t, "bpb": {"libreoffice:fr:heldout": b}, "tokens_per_byte": {}}
                       for t, b in [(0, 1.6593), (10240, 1.552), (20480, 1.570)]]}))
    return out


def test_page_is_self_contained_with_every_section(run_folder, tmp_path):
    from tokengraft.cli.main import main

    assert main(["report", str(run_folder), "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    for section in ("Bits per byte before and after", "Where the new rows came from",
                    "Tokens with the worst diagnostics", "Heal curve"):
        assert f"<h2>{section}</h2>" in page
    assert "| " not in page and "<script" not in page
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing outside the page
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', page)) == 4  # bpb, sources, pieces, heal
    assert "<td>libreoffice:fr:heldout</td><td>transplant</td><td class=\"num\">1.1729</td>" in page
    assert "<td class=\"num\">1.415</td>" in page  # 1.6593 / 1.1729
    lines = [json.loads(x) for x in (run_folder / "transplant_tokens.jsonl").read_text().splitlines()]
    copied = sum(1 for x in lines if x["src"] == "copied")
    assert f"<td>copied</td><td class=\"num\">{copied:,}</td>" in page


def test_default_path_several_folders_and_errors(run_folder, tmp_path, capsys):
    from tokengraft.cli.main import main

    second = tmp_path / "second"
    shutil.copytree(run_folder, second)
    (second / "report.html").unlink(missing_ok=True)
    assert main(["report", str(run_folder), str(second)]) == 0
    assert (run_folder / "report.html").is_file() and (second / "report.html").is_file()
    assert main(["report", str(run_folder), str(second), "--out", str(tmp_path / "x.html")]) == 2
    assert "--out names one page" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", str(empty)]) == 2
    assert "nothing to report" in capsys.readouterr().err


@pytest.mark.slow
def test_report_renders_in_headless_chromium(run_folder, tmp_path):
    """Debian's chromium (scripts/setup.sh installs it) screenshots the page; the image is not blank."""
    from PIL import Image

    from tokengraft.report import write_report

    page = write_report(run_folder, tmp_path / "report.html")
    shot = tmp_path / "report.png"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is missing: apt-get install chromium (scripts/setup.sh does)"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1200,2400", f"--screenshot={shot}", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    image = Image.open(shot).convert("L")
    assert image.size == (1200, 2400)
    histogram = image.histogram()
    dark = sum(histogram[:128]) / (1200 * 2400)
    assert 0.005 < dark < 0.5  # text and plots drawn on a white page
