"""report.html in a run folder: one self-contained page (inline CSS and SVG, nothing fetched from a network) with
the warnings and headlines, the compact report, every figure (latlab/figures.py), the hostprep table and the
manifest. Written once, atomically, like every file of a run: an existing report.html is never overwritten."""

from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import Any

from latlab import compact, figures, trials
from latlab.figures import plt
from latlab.report import load_summary
from latlab.runrecord import write_new

NAME = "report.html"
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 12px; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ddd; }
.warn { color: #8a4b00; } .bad { color: #a00; } figure { margin: 1em 0; } figcaption { font-weight: 600; }
svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 13px; } td, th { border: 1px solid #ddd; padding: 2px 8px; }
"""


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    # text as <text>, not as a path per glyph: a third of the page's size; the browser has a sans-serif
    with plt.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.index("<svg"):]  # inline: without the XML prolog and doctype


def _hostprep(manifest: dict[str, Any]) -> str:
    checks = (manifest.get("hostprep") or {}).get("checks") or []
    if not checks:
        return "<p>no hostprep report in the manifest</p>"
    rows = "".join(
        f"<tr class=\"{'bad' if c.get('status') == 'not ready' else ''}\"><td>{html.escape(str(c.get('name')))}"
        f"</td><td>{html.escape(str(c.get('status')))}</td><td>{html.escape(str(c.get('value', '')))}</td>"
        f"<td>{html.escape(str(c.get('target', '')))}</td></tr>" for c in checks)
    return f"<table><tr><th>check</th><th>status</th><th>now</th><th>wanted</th></tr>{rows}</table>"


def build(run_dir: Path, summary: dict[str, Any] | None = None, warnings: list[str] | None = None) -> str:
    """The page of a run, as text."""
    summary = trials.merged(summary if summary is not None else load_summary(run_dir))
    try:
        manifest = json.loads((run_dir / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        manifest = {"error": f"manifest.json unreadable: {exc}"}
    if warnings is None:
        warnings = compact.all_warnings(summary, run_dir)
    report = compact.render(summary, run_dir, columns=110, warnings=warnings)
    parts = [f"<h1>latlab run {html.escape(str(summary.get('run_id')))}</h1>",
             f"<p class=\"{'' if summary.get('complete') else 'bad'}\">"
             f"{'complete' if summary.get('complete') else 'INCOMPLETE: ' + html.escape(str(summary.get('incomplete_reason') or 'a case failed or is incomplete'))}"  # noqa: E501
             "</p>"]
    if warnings:
        parts.append("<ul>" + "".join(f"<li class=\"warn\">{html.escape(w)}</li>" for w in warnings) + "</ul>")
    heads = compact.headlines(summary)
    if heads:
        parts.append("<h2>Headlines</h2><ul>" + "".join(
            f"<li><b>{html.escape(bench)}</b>: {html.escape(text)}</li>" for bench, text in heads) + "</ul>")
    parts.append(f"<details><summary><b>The report</b> (as `latlab report` prints it)</summary>"
                 f"<pre>{html.escape(report)}</pre></details>")
    parts.append("<h2>Figures</h2>")
    for title, fig in figures.all_figures(run_dir, summary):
        parts.append(f"<figure><figcaption>{html.escape(title)}</figcaption>{_svg(fig)}</figure>")
    parts.append(f"<h2>Host readiness (hostprep)</h2>{_hostprep(manifest)}")
    parts.append(f"<h2>Manifest</h2><pre>{html.escape(json.dumps(manifest, indent=2, default=str))}</pre>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>latlab {html.escape(str(summary.get('run_id')))}</title><style>{STYLE}</style></head>"
            f"<body>{''.join(parts)}</body></html>\n")


def write(run_dir: Path, summary: dict[str, Any] | None = None, warnings: list[str] | None = None) -> Path:
    """Write report.html into the run folder (refused if one is there: runs are never overwritten)."""
    path = run_dir / NAME
    write_new(path, build(run_dir, summary, warnings))
    return path


def write_for_run(run_dir: Path, summary: dict[str, Any] | None = None, warnings: list[str] | None = None) -> str:
    """Write the page at the end of a run; a line saying where, or why not (a page must never fail a run)."""
    if (run_dir / NAME).exists():
        return f"page: {run_dir / NAME}"
    try:
        return f"page: {write(run_dir, summary, warnings)}"
    except Exception as exc:  # the figures are recorded already; the page is only a view of them
        return f"page: not written: {type(exc).__name__}: {exc}"
