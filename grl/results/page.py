"""The report's files: report.md, report.html (one self-standing page with a table of contents, the appendices
collapsed) and report.pdf (A4, printed from that page by headless Chromium when it is installed).

What a reader must never see is removed here, once for every section: a printed caret (F^g is F<sup>g</sup>),
"nan" (an em dash and a note saying why), a number left-aligned, a path of the machine that built the report.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from grl.results.document import Section, markdown_html

PDF_HOWTO = (
    "report.pdf not written: no Chromium found (install Debian's `chromium` package, `make browser`, or set "
    "GRL_CHROMIUM to a Chromium/Chrome executable; then rerun the same command, which reuses every finished run)"
)
NO_NUMBER_NOTE = "— : no number (fewer than two samples, or the run behind it did not finish)."

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 0 auto;
       max-width: 1180px; padding: 0 24px 48px; }
h1 { font-size: 1.7em; margin: 1em 0 0.4em; } h2 { font-size: 1.3em; margin-top: 1.8em;
       border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
nav.toc { background: #f6f8fa; padding: 8px 16px; border-radius: 4px; }
nav.toc ol { margin: 0.3em 0; columns: 2; } nav.toc li { margin: 0.1em 0; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em; max-width: 100%; }
th, td { padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
td[data-num] { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
caption { caption-side: top; text-align: left; font-weight: bold; padding: 4px 0; }
figure { margin: 1em 0 1.5em; } figure img { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 0.9em; color: #444; margin-top: 0.3em; }
img { max-width: 100%; height: auto; }
details > summary { cursor: pointer; color: #0645ad; margin: 0.3em 0; }
.note { font-size: 0.9em; color: #555; }
code { font-size: 0.92em; background: #f3f3f3; padding: 0 3px; border-radius: 3px; overflow-wrap: anywhere; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { font-size: 10pt; max-width: none; padding: 0; }
  nav.toc ol { columns: 1; }
  table { font-size: 7.5pt !important; }  /* !important: over the styled tables' own rules */
  td, th { padding: 1px 4px !important; white-space: normal !important; word-break: keep-all; overflow-wrap: normal; }
  figure, tr, caption { break-inside: avoid; }
  h2 { break-after: avoid; }
  details > summary { display: none; }
}
"""

# The page opens every appendix before it is printed: from the browser's print dialog, and when headless
# Chromium prints the page with "?print" in its address (print_pdf).
SCRIPT = """
function openAll() { document.querySelectorAll('details').forEach(d => { d.open = true; }); }
window.addEventListener('beforeprint', openAll);
if (location.search.includes('print')) openAll();
"""

_NUMBER = re.compile(r"^\s*(?:[+\-−]?\d[\d.,]*(?:\s*%)?(?:\s*(?:±|\[|/|\(|-|–).*)?|—(?:\s*/.*)?)\s*$")
_CELL = re.compile(r"<td([^>]*)>(.*?)</td>", re.S)


def _tidy_html(body: str) -> tuple[str, bool]:
    """(body, whether a "nan" was replaced): symbols as super- and subscripts, numeric cells marked for right
    alignment, "nan" cells as an em dash."""
    replaced = False

    def cell(m: re.Match) -> str:
        nonlocal replaced
        attrs, text = m.group(1), m.group(2)
        if text.strip().lower() == "nan":
            text, replaced = "—", True
        if _NUMBER.match(html.unescape(re.sub(r"<[^>]+>", "", text))) and "data-num" not in attrs:
            attrs += " data-num"
        return f"<td{attrs}>{text}</td>"

    body = _CELL.sub(cell, body)
    return re.sub(r">([^<]+)<", lambda m: ">" + _symbols(m.group(1)) + "<", body), replaced  # text nodes only


def _symbols(text: str) -> str:
    text = re.sub(r"\b([FMR])\^(\w)(?:_(\w))?", lambda m: _symbol(m.group(1), m.group(2), m.group(3)), text)
    return re.sub(r"\b([RM])_t\b", r"\1<sub>t</sub>", text)


def _symbol(letter: str, sup: str, sub: str | None) -> str:
    return f"{letter}<sup>{sup}</sup>" + (f"<sub>{sub}</sub>" if sub else "")


def _tidy_markdown(text: str) -> str:
    return re.sub(r"(?<=\|)\s*nan\s*(?=\|)", " — ", text)


def report_markdown_text(title: str, sections: list[Section]) -> str:
    toc = "\n".join(
        f"{i}. [{s.title}](#{s.anchor})" + (" (appendix)" if s.appendix else "") for i, s in enumerate(sections, 1)
    )
    body = [f"# {title}", "**Contents**\n\n" + toc]
    for s in sections:
        text = _tidy_markdown(s.markdown)
        body.append(f"## {s.title}\n\n{text}" + (f"\n\n{NO_NUMBER_NOTE}" if text != s.markdown else ""))
    return "\n\n".join(body) + "\n"


def report_html_text(title: str, sections: list[Section]) -> str:
    toc = "".join(
        f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a>'
        + (" <small>(appendix)</small>" if s.appendix else "")
        + "</li>"
        for s in sections
    )
    parts = []
    for s in sections:
        body, replaced = _tidy_html(s.html if s.html is not None else markdown_html(s.markdown))
        if replaced:
            body += f'<p class="note">{html.escape(NO_NUMBER_NOTE)}</p>'
        if s.appendix:
            body = f"<details><summary>Show this appendix</summary>\n{body}\n</details>"
        parts.append(f'<section id="{s.anchor}" class="{"appendix" if s.appendix else "main"}">'
                     f"<h2>{html.escape(s.title)}</h2>\n{body}\n</section>")  # fmt: skip
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n"
        f'<nav class="toc" id="contents"><strong>Contents</strong><ol>{toc}</ol></nav>\n'
        + "\n".join(parts)
        + f"\n<script>{SCRIPT}</script>\n</body></html>\n"
    )


def chromium_executable() -> str | None:
    for name in (os.environ.get("GRL_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def print_pdf(html_path: str | Path, pdf_path: str | Path, timeout: float = 180) -> Path | None:
    """Print ``html_path`` to an A4 PDF with headless Chromium (the page's own print style, every appendix
    open); written atomically. None, with nothing written, when no Chromium is installed."""
    executable = chromium_executable()
    if executable is None:
        return None
    html_path, pdf_path = Path(html_path).resolve(), Path(pdf_path)
    with tempfile.TemporaryDirectory(prefix="grl-pdf-") as profile:
        partial = Path(profile) / "report.pdf"
        command = [
            executable,
            "--headless",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-pdf-header-footer",
            f"--user-data-dir={profile}",
            f"--print-to-pdf={partial}",
            html_path.as_uri() + "?print",
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0 or not partial.is_file() or partial.stat().st_size == 0:
            raise RuntimeError(
                f"Chromium ({executable}) could not print {html_path} to a PDF (exit {done.returncode}): "
                f"{done.stderr.strip()[-500:]}"
            )
        from grl.utils import atomic_write_bytes

        atomic_write_bytes(pdf_path, partial.read_bytes())
    return pdf_path


def report_markdown(profile: str, runs, reference_path=None, figures_dir: str | Path | None = None) -> str:
    """The whole report as Markdown (report.md), its figures those found in ``figures_dir``."""
    from grl.results.document import report_sections

    return report_markdown_text(_title(profile), report_sections(profile, runs, reference_path, out=figures_dir))


def _title(profile: str) -> str:
    return f"GRL reproduction report: profile {profile}"


def write_report(
    out: str | Path,
    profile: str,
    runs,
    reference_path=None,
    failed: dict[str, str] | None = None,
    pdf: bool = True,
) -> dict[str, Path | str]:
    """report.md and report.html into ``out`` (one right after the other), then report.pdf from that HTML. The
    figures must already be in ``out`` (grl.results.save_figures, figure4.ipynb). Returns the paths written and,
    under "pdf_missing", the one line that says how to get the PDF when no Chromium is installed."""
    from grl.results.document import report_sections
    from grl.utils import atomic_write_bytes

    out = Path(out)
    sections = report_sections(profile, runs, reference_path, out=out, failed=failed)
    title = _title(profile)
    written: dict[str, Path | str] = {}
    html_text = _relative_paths(report_html_text(title, sections), out)
    atomic_write_bytes(out / "report.html", html_text.encode())
    atomic_write_bytes(out / "report.md", _relative_paths(report_markdown_text(title, sections), out).encode())
    written.update(html=out / "report.html", md=out / "report.md")
    if pdf:
        made = print_pdf(out / "report.html", out / "report.pdf")
        if made is None:
            written["pdf_missing"] = PDF_HOWTO
        else:
            written["pdf"] = made
    return written


def _relative_paths(text: str, out: Path) -> str:
    """A shared report names paths relative to the repository (or to its own folder), never the building
    machine's folders."""
    from grl.paths import project_root

    root = project_root()
    for folder in sorted({str(out.resolve()), str(root) if root else ""} - {""}, key=len, reverse=True):
        text = text.replace(folder + "/", "")
    return text
