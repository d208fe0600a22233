"""What a reader sees, checked in a real browser: Debian's Chromium driven by Playwright.

1. A report written by the batch's own code (grl.results.write_report) from a generated study: its sections in
   the reader's order, every table-of-contents link landing on its section, no notebook debris (prompts, text
   <pre> blocks, "nan", carets, the building machine's paths), nothing wider than a 1280-px page, every image
   loaded; its PDF rendered page by page (pypdfium2), every page A4 and nothing cut at a page edge.
2. The committed report (reports/cpu/report.html) at 1280 px: the paper's tables are HTML tables, every
   image loads, no table is wider than the page, and it prints to a PDF.
3. JupyterLab on a free loopback port: tour.ipynb opened, "Run All Cells" through the UI, the notebook
   saved through the UI; the saved file has every code cell executed and no error output.

Screenshots (and the PDF) are kept in ``build/test-artifacts/browser/`` (``GRL_TEST_ARTIFACTS`` moves
it). Without Chromium or Playwright the tests FAIL with the command that installs them
(``make browser``); they never skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from test_report_page import APPENDICES, MAIN

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "reports" / "cpu" / "report.html"
# Without the background-networking flags Chromium keeps dialling Google's hosts, which this closed network
# refuses many at a time; --no-sandbox because CI runs as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.slow


def chromium_path() -> str:
    for name in (os.environ.get("GRL_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    pytest.fail(
        "Chromium is not installed: the browser checks need it. Run `make browser` (Debian's chromium "
        "package: apt-get install chromium) or set GRL_CHROMIUM to a Chromium/Chrome executable.",
        pytrace=False,
    )


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "Playwright for Python is not installed in this environment: run `make browser` "
            "(pip install playwright; the browser is Debian's chromium, no download).",
            pytrace=False,
        )
    executable = chromium_path()
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    folder = Path(os.environ.get("GRL_TEST_ARTIFACTS", ROOT / "build" / "test-artifacts")) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ---- a report written by the batch's code ----------------------------------------------------------
# docs/report.md: the order a reader asks their questions in; the ranked lists only where both models exist.
SECTIONS = [*MAIN, "Ranked lists", *APPENDICES]  # tests/test_report_page.py's order; ranked lists exist here
A4_WIDTH_PT, A4_HEIGHT_PT = 595.3, 841.9


@pytest.fixture(scope="module")
def written_report(tmp_path_factory):
    """A quick-profile study of fake results (tests/test_report.py), its figures, and report.html, .md, .pdf written
    by grl.results.write_report -- what the batch calls. Figure 4 and the ranked lists need trained models: stand-in
    PNGs of the same names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    sys.path.insert(0, str(ROOT / "tests"))
    from test_report import write_fake_results

    from grl import results
    from grl.experiments import runs_for

    out = tmp_path_factory.mktemp("report")
    runs = runs_for("quick", root=out)
    rng = np.random.default_rng(0)
    write_fake_results(runs, lambda e, d, f, s: (60.0 if e == "grl" else 45.0) + float(rng.normal(0, 3)))
    results.save_figures(out, runs)
    for name in ("figure4_query0.png", "ranked_lists.png"):
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.imshow(rng.random((8, 16)))
        fig.savefig(out / name)
        plt.close(fig)
    chromium_path()  # the PDF needs it: fail with the install command, never skip
    written = results.write_report(out, "quick", runs)
    assert "pdf" in written, written.get("pdf_missing")
    return out


def test_written_report_reads_in_order_without_notebook_debris(browser, written_report, artifacts):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto((written_report / "report.html").as_uri())
    page.wait_for_load_state("load")
    page.screenshot(path=str(artifacts / "written-report.png"), full_page=True)
    titles = page.eval_on_selector_all("section > h2", "hs => hs.map(h => h.textContent.trim())")
    assert titles == SECTIONS, f"sections in the DOM: {titles}"
    # Every table-of-contents entry links to a section that exists, with that section's title.
    links = page.eval_on_selector_all(
        "nav.toc a",
        "as => as.map(a => { const id = a.getAttribute('href').slice(1); const t = document.getElementById(id);"
        " return [a.textContent.trim(), id, t ? t.querySelector('h2').textContent.trim() : null]; })",
    )
    assert [text for text, _, _ in links] == SECTIONS
    assert all(target == text for text, _, target in links), f"links that land elsewhere: {links}"
    for _, anchor, _ in links:  # following the link scrolls its section to the top of the window
        page.goto((written_report / "report.html").as_uri() + f"#{anchor}")
        top = page.evaluate(f"document.getElementById('{anchor}').getBoundingClientRect().top")
        at_end = page.evaluate("window.scrollY + window.innerHeight >= document.body.scrollHeight - 2")
        assert abs(top) < 2 or at_end, f"#{anchor} is {top} px from the top"
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")  # the appendices too
    text = page.inner_text("body")
    for debris in ("In [", "Out[", "F^", "^g", "Traceback", str(written_report), str(ROOT)):
        assert debris not in text, f"{debris!r} shown to the reader"
    assert not re.search(r"\bnan\b", text, re.I), "a 'nan' shown to the reader"
    assert page.eval_on_selector_all(".jp-InputPrompt, .jp-OutputPrompt, .prompt", "es => es.length") == 0
    text_pre = page.eval_on_selector_all("pre", "ps => ps.filter(p => !p.querySelector('code')).length")
    assert text_pre == 0, "a <pre> block of printed text"
    assert page.eval_on_selector_all("sup", "ss => ss.length") > 0  # F<sup>g</sup>, not F^g
    width = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways: {width}"
    wide = page.eval_on_selector_all(
        "body *", "es => es.filter(e => e.getBoundingClientRect().right > 1281).map(e => e.tagName).slice(0, 5)"
    )
    assert not wide, f"wider than the 1280-px window: {wide}"
    images = page.eval_on_selector_all(
        "img", "is => is.map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])"
    )
    assert len(images) >= 3 and all(ok for _, ok in images), f"images: {images}"
    captions = page.eval_on_selector_all("figure", "fs => fs.filter(f => !f.querySelector('figcaption')).length")
    assert captions == 0, "a figure without a caption"
    # Numbers right-aligned: the GRL-vs-Baseline table's difference column.
    align = page.eval_on_selector_all(
        "#grl-against-the-baseline td[data-num]", "ts => ts.map(t => getComputedStyle(t).textAlign)"
    )
    assert align and set(align) == {"right"}, align
    page.close()


def test_written_report_pdf_is_a4_rendered_and_uncut(browser, written_report, artifacts):
    try:
        import pypdfium2
    except ImportError:
        pytest.fail("pypdfium2 is not installed: it is in the test group (make env)", pytrace=False)
    pdf = pypdfium2.PdfDocument(str(written_report / "report.pdf"))
    assert len(pdf) >= 3, f"{len(pdf)} page(s)"
    for i, page in enumerate(pdf):
        width, height = page.get_size()
        assert width <= A4_WIDTH_PT + 0.5 and height <= A4_HEIGHT_PT + 0.5, f"page {i + 1}: {width} x {height} pt"
        image = page.render(scale=0.5).to_pil().convert("L")
        if i < 3:
            image.save(artifacts / f"written-report-page{i + 1}.png")
        assert image.getextrema()[0] < 128, f"page {i + 1} rendered blank"
    # The appendices are printed open: the last section's run list is in the PDF's text.
    last = pdf[len(pdf) - 1].get_textpage().get_text_range()
    assert "done" in last or any("The runs" in pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
    # Laid out as for print on A4 (about 718 CSS px between the margins): nothing cut at the right edge.
    page = browser.new_page(viewport={"width": 718, "height": 1000})
    page.goto((written_report / "report.html").as_uri() + "?print")
    page.emulate_media(media="print")
    cut = page.eval_on_selector_all(
        "table, img, figure, pre",
        "es => es.filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1"
        " || e.scrollWidth > e.clientWidth + 1).map(e => e.tagName + ': ' + (e.innerText || e.src || '').slice(0, 60))",
    )
    page.close()
    assert not cut, f"cut off at the right edge of an A4 page: {cut}"


# ---- the committed report ------------------------------------------------------------------------
def test_report_renders_tables_and_images_and_prints(browser, artifacts):
    assert REPORT.is_file(), f"{REPORT} is missing: it is committed (make study writes it)"
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(REPORT.as_uri())
    page.wait_for_load_state("load")
    page.screenshot(path=str(artifacts / "report.png"), full_page=True)
    tables = page.eval_on_selector_all("table", "ts => ts.map(t => t.rows.length)")
    assert len(tables) >= 6 and all(rows >= 2 for rows in tables), f"HTML tables and their rows: {tables}"
    text = page.inner_text("body")
    for table in range(1, 7):
        assert f"Table {table}" in text
    assert "|---" not in text and "**Table" not in text  # no Markdown printed as text
    # No text node -- in a <pre> block or anywhere else -- holds Markdown markers: the summaries are HTML.
    marked = page.evaluate("""() => {
        const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {acceptNode: n =>
            n.parentElement.closest('script, style, code') ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT});
        const found = [];
        for (let n = walker.nextNode(); n; n = walker.nextNode()) {
            const t = n.textContent;
            if (t.includes('**') || t.includes('|---') || /^\\s*#{1,6} /m.test(t)) found.push(t.trim().slice(0, 80));
        }
        return found;
    }""")
    assert not marked, f"Markdown printed as text: {marked}"
    images = page.eval_on_selector_all(
        "img", "is => is.map(i => [i.getAttribute('src').slice(0, 60), i.complete && i.naturalWidth > 0])"
    )
    assert images and all(ok for _, ok in images), f"images that did not load: {[s for s, ok in images if not ok]}"
    page_width = page.evaluate("document.documentElement.clientWidth")
    too_wide = page.eval_on_selector_all(
        "table", f"ts => ts.filter(t => t.getBoundingClientRect().right > {page_width} + 1).length"
    )
    assert too_wide == 0, f"{too_wide} tables wider than the {page_width}-px page"
    pdf = artifacts / "report.pdf"
    page.pdf(path=str(pdf), format="A4", print_background=True)
    assert pdf.stat().st_size > 50_000 and pdf.read_bytes().startswith(b"%PDF")
    # Printed on A4 (about 718 CSS px between the default margins): nothing may be cut at the right edge.
    page.emulate_media(media="print")
    page.set_viewport_size({"width": 718, "height": 1000})
    cut = page.eval_on_selector_all(
        "table, pre, img",
        "es => es.filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth"
        " + 1 || e.scrollWidth > e.clientWidth + 1).map(e => e.tagName + ': ' + "
        "(e.innerText || e.src || '').slice(0, 60))",
    )
    assert not cut, f"cut off at the right edge of an A4 page: {cut}"
    page.close()


# ---- JupyterLab --------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """A JupyterLab server on a free loopback port serving a copy of notebooks/ (the committed ones stay
    untouched); stopped at the end."""
    folder = tmp_path_factory.mktemp("lab")
    notebook = json.loads((ROOT / "notebooks" / "tour.ipynb").read_text())
    for cell in notebook["cells"]:  # cleared: what the test then reads back was computed in this browser
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    (folder / "tour.ipynb").write_text(json.dumps(notebook))
    port, token = _free_port(), "grl-browser-test"
    log = open(folder / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--ServerApp.token={token}",
            f"--ServerApp.root_dir={folder}",
            "--allow-root",
            "--LabApp.news_url=",
            "--LabServerApp.announcements_url=",
            "--ServerApp.open_browser=False",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=folder,
        env={**os.environ, "JUPYTER_NO_CONFIG": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.time() > deadline:
                server.kill()
                pytest.fail(f"JupyterLab did not start on {url}:\n{(folder / 'jupyterlab.log').read_text()[-3000:]}")
            time.sleep(0.5)
    yield url, token, folder
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


def test_tour_runs_every_cell_in_jupyterlab(browser, jupyterlab, artifacts):
    url, token, folder = jupyterlab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/lab/tree/tour.ipynb?token={token}&reset")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    try:  # JupyterLab may ask which kernel to start: the notebook's own (the dialog's default)
        page.click(".jp-Dialog .jp-mod-accept", timeout=10_000)
    except Exception:  # playwright's TimeoutError: no dialog, the kernel starts by itself
        pass
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    page.screenshot(path=str(artifacts / "tour-opened.png"))
    status = page.inner_text("#jp-main-statusbar")
    assert "Python 3" in status, f"no kernel started; status bar: {status!r}"
    page.click("text=Run", timeout=30_000)  # the menu bar, as a user would
    page.click("li[data-command='runmenu:run-all']")
    # Every code cell numbered and the kernel idle again: the whole notebook ran.
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent);
            const idle = document.querySelector(".jp-Notebook-ExecutionIndicator[data-status='idle']");
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p)) && idle !== null;
        }""",
        timeout=300_000,
    )
    errors = page.eval_on_selector_all(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
        "os => os.map(o => o.textContent).filter(t => t.includes('Traceback'))",
    )
    page.screenshot(path=str(artifacts / "tour-run.png"), full_page=True)
    page.keyboard.press("Control+s")
    saved = folder / "tour.ipynb"
    deadline = time.time() + 30
    while time.time() < deadline:
        notebook = json.loads(saved.read_text())
        cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
        if all(c.get("execution_count") for c in cells):
            break
        time.sleep(0.5)
    page.close()
    assert not errors, f"tracebacks shown in JupyterLab:\n{errors[0][-2000:]}"
    assert all(c.get("execution_count") for c in cells), "the saved notebook has cells that did not run"
    failed = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not failed, f"error outputs: {[(o['ename'], o['evalue']) for o in failed]}"
    images = sum("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", []))
    assert images >= 5, f"the tour's figures: {images} PNG outputs"
