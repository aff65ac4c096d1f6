"""report.html: one self-contained page, loaded by a real browser (headless Chromium) without console errors,
rendering a screenshot; never overwritten."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from latlab import html_report
from latlab.errors import LatlabError

from .test_compact_report import run  # noqa: F401 (the module's run fixture)

CHROMIUM = shutil.which("chromium")


def test_the_page_is_self_contained_and_holds_every_part(run):  # noqa: F811
    path = html_report.write(run)
    page = path.read_text()
    for part in ("Headlines", "application cost p50 1.58", "host not ready: 2 of 3 checks", "<svg",
                 "stack matrix: latency against payload", "CDF: udp 64B busy-poll", "Host readiness", "Manifest"):
        assert part in page, part
    # nothing fetched: no external source, stylesheet or link (SVG's namespace URIs are names, not fetches)
    assert not re.search(r"""(src|href)=["']https?:""", page) and "<link" not in page and "<script" not in page
    with pytest.raises(LatlabError, match="never overwritten"):
        html_report.write(run)
    assert html_report.write_for_run(run) == f"page: {path}"  # an existing page is named, not rewritten


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed: `make test` installs it")
def test_headless_chromium_renders_the_page_without_console_errors(run, tmp_path):  # noqa: F811
    from matplotlib import image

    path = run / html_report.NAME
    if not path.exists():
        html_report.write(run)
    shot = tmp_path / "shot.png"
    out = subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                          "--v=0", "--window-size=1200,2400", f"--screenshot={shot}", f"file://{path}"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    console = [line for line in out.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
    pixels = image.imread(shot)
    assert pixels.shape[0] == 2400 and pixels.std() > 0.05  # a page was drawn, not a blank screen
