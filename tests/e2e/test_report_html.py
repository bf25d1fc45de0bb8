"""`closedloop report --html` opened in headless Chromium: every chart drawn at a real size, no error
logged, nothing fetched, a screenshot taken, and the print layout on A4.

The figures come from the hand-computable store of tests/unit/report_store.py, through the CLI as a
user runs it.  Chromium is Debian's ``chromium`` (CI installs it); the test skips, saying so, only
where no Chromium binary exists.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from report_store import fill_store, write_config

CHROMIUM = next(
    (found for name in ("chromium", "chromium-browser", "google-chrome", "chrome", "headless_shell")
     if (found := shutil.which(name))),
    None,
)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary on PATH (apt-get install chromium)")
CHARTS = 6  # funnel, models, ROAS, trend, landing pages, coverage

# Runs before anything else on the page: records errors (scripts, failed resources, console.error),
# then after load writes each chart's drawn size and every resource the page asked for into <pre id=probe>.
PROBE = """<script>
window.__errors = [];
addEventListener('error', e => __errors.push(String(e.message || (e.target && e.target.outerHTML))), true);
const __log = console.error; console.error = (...a) => { __errors.push(a.join(' ')); __log(...a); };
addEventListener('load', () => {
  const charts = [...document.querySelectorAll('svg.chart')].map(s => {
    const r = s.getBoundingClientRect();
    return {label: s.getAttribute('aria-label'), width: r.width, height: r.height,
            marks: [...s.querySelectorAll('rect,polyline,circle')].filter(
              m => { const b = m.getBoundingClientRect(); return b.width > 0 && b.height > 0; }).length};
  });
  const pre = document.createElement('pre'); pre.id = 'probe';
  pre.textContent = JSON.stringify({charts, errors: __errors,
    resources: performance.getEntriesByType('resource').map(e => e.name)});
  document.body.appendChild(pre);
});
</script>"""


def chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--disable-extensions", "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
               f"--user-data-dir={cwd / 'profile'}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=cwd, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def probe(page: Path, folder: Path) -> dict[str, Any]:
    """The probe's findings on ``page`` (a copy with the probe injected first in <head>)."""
    probed = folder / f"probed-{page.name}"
    probed.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    done = chromium("--virtual-time-budget=5000", "--dump-dom", probed.as_uri(), cwd=folder)
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stdout[-2000:]
    result: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    result["console"] = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    return result


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("report")
    config = write_config(folder, fill_store(folder))
    out = folder / "report.html"
    env = {**os.environ, "REPORT_TEST_TOKEN": "not-used", "COLUMNS": "80"}
    done = subprocess.run(
        [sys.executable, "-m", "closedloop", "report", "-c", str(config), "--html", str(out), "--json"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )
    assert done.returncode == 0, done.stderr
    return out, json.loads(done.stdout)


def test_the_cli_writes_the_report_with_the_hand_computed_figures(report_file: tuple[Path, dict[str, Any]]) -> None:
    out, data = report_file
    assert data["won_revenue"] == 1500.0 and data["currency"] == "USD"
    assert data["roi_by_channel"]["paid_total"]["roas"] == 5.0
    page = out.read_text(encoding="utf-8")
    assert "1,500 USD" in page and page.count('<svg class="chart"') == CHARTS


@needs_chromium
def test_every_chart_renders_with_no_error_and_nothing_fetched(
    report_file: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, _ = report_file
    found = probe(out, tmp_path)
    assert found["errors"] == [] and found["resources"] == []
    assert not [line for line in found["console"] if "error" in line.lower()], found["console"]
    assert len(found["charts"]) == CHARTS
    for chart in found["charts"]:
        assert chart["width"] > 300 and chart["height"] > 20 and chart["marks"] > 0, chart


@needs_chromium
def test_the_probe_does_see_errors(report_file: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """The canary: a page with a broken image and a console error must be caught by the same probe."""
    out, _ = report_file
    broken = tmp_path / "broken.html"
    broken.write_text(out.read_text(encoding="utf-8").replace(
        "</body>", '<img src="missing.png"><script>console.error("canary")</script></body>'), encoding="utf-8")
    found = probe(broken, tmp_path)
    assert any("canary" in e for e in found["errors"]) and any("missing.png" in e for e in found["errors"])


@needs_chromium
def test_screenshot_and_a4_print(report_file: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    out, _ = report_file
    shot = tmp_path / "report.png"
    chromium("--window-size=1000,2600", f"--screenshot={shot}", out.as_uri(), cwd=tmp_path)
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (1000, 2600)
    assert shot.stat().st_size > 30_000  # a drawn page, not a blank one
    pdf = tmp_path / "report.pdf"
    chromium("--no-pdf-header-footer", f"--print-to-pdf={pdf}", out.as_uri(), cwd=tmp_path)
    raw = pdf.read_bytes()
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([0-9.]+) ([0-9.]+)\s*\]", raw)
    assert boxes and all(abs(float(w) - 595.9) < 2 and abs(float(h) - 842) < 2 for w, h in boxes), boxes[:3]
    assert 1 <= len(boxes) <= 6  # the tiny report prints on a few pages, not one per section


def test_the_terminal_report_fits_80_columns_when_piped(report_file: tuple[Path, dict[str, Any]]) -> None:
    out, _ = report_file
    config = out.parent / "closedloop.yaml"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")} | {"REPORT_TEST_TOKEN": "x"}
    done = subprocess.run([sys.executable, "-m", "closedloop", "report", "-c", str(config), "--model", "linear",
                           "--since", "2026-10-01", "--until", "2026-10-31"],
                          capture_output=True, text=True, timeout=120, env=env, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in done.stdout
    text = done.stdout
    assert "2026-10-01 to 2026-10-31" in text and "credited under linear" in text and "money in USD" in text
    assert "Paid total" in text and "credited, not counted" in text
    runs = subprocess.run([sys.executable, "-m", "closedloop", "runs", "-c", str(config), "--json"],
                          capture_output=True, text=True, timeout=120, env=env, check=False)
    assert runs.returncode == 0 and json.loads(runs.stdout) == []
