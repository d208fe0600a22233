"""The report's document and its page: sections in the reader's order, a table of contents whose links match the
headings, no notebook debris ("nan", carets, machine paths), numbers right-aligned, the PDF step without Chromium."""

from __future__ import annotations

import re

import pytest
from test_report import grl_wins, write_fake_results

from grl.experiments import runs_for
from grl.results import document, page

MAIN = [
    "The answer",
    "GRL against the Baseline",
    "Every comparison at a glance",
    "Tables 1-6 beside the paper",
    "Figure 4",
    "Learning curves",
]
APPENDICES = [
    "Precision and variance components",
    "Calibration",
    "The pretrained backbone (Table 7)",
    "Reproduction against a reference",
    "Every comparison",
    "Provenance",
    "The runs",
]


@pytest.fixture
def study(tmp_path):
    runs = runs_for("quick", root=tmp_path)
    write_fake_results(runs, grl_wins)
    return tmp_path, runs


def test_sections_come_in_the_readers_order_appendices_last(study):
    out, runs = study
    sections = document.report_sections("quick", runs, out=out)
    assert [s.title for s in sections] == MAIN + APPENDICES  # no ranked_lists.png: no such section
    assert [s.appendix for s in sections] == [False] * len(MAIN) + [True] * len(APPENDICES)
    answer = sections[0].markdown
    assert "40 of 40 runs of the `quick` profile" in answer and "2 seeds (0, 1)" in answer
    assert "MARS mAP +20.0 [+20.0, +20.0] (better)" in answer  # GRL − Baseline with the verdict after Holm
    assert re.search(r"of 48 comparisons with the paper's direction, after Holm's adjustment \d+ agree", answer)


def test_the_table_of_contents_links_to_every_heading(study):
    out, runs = study
    md = page.report_markdown("quick", runs, figures_dir=out)
    headings = re.findall(r"^## (.+)$", md, re.M)
    assert headings == MAIN + APPENDICES
    links = re.findall(r"^\d+\. \[(.+?)\]\(#(.+?)\)", md, re.M)
    assert [t for t, _ in links] == headings
    # GitHub's anchors: lower case, punctuation dropped, spaces to hyphens
    assert dict(links)["Tables 1-6 beside the paper"] == "tables-1-6-beside-the-paper"
    assert dict(links)["The pretrained backbone (Table 7)"] == "the-pretrained-backbone-table-7"
    html = page.report_html_text("t", document.report_sections("quick", runs, out=out))
    ids = re.findall(r'<section id="([^"]+)"', html)
    assert ids == [a for _, a in links] and re.findall(r'<a href="#([^"]+)"', html)[: len(ids)] == ids


def test_the_page_shows_symbols_dashes_and_aligned_numbers_never_nan_or_carets():
    sections = [
        document.Section(
            "A", "| feature | mAP | note |\n|---|---|---|\n| F^g | nan | R_t and M^1_t |\n| F^l+F^h | 62.3 | x |"
        ),
        document.Section("B", "text", "<table><tr><td>−2.2 [−7.3, +2.9]</td><td>no conclusion</td></tr></table>"),
    ]
    html = page.report_html_text("t", sections)
    assert "F<sup>g</sup>" in html and "F<sup>l</sup>+F<sup>h</sup>" in html and "^" not in html.split("<body>")[1]
    assert "R<sub>t</sub>" in html and "M<sup>1</sup><sub>t</sub>" in html
    assert ">nan<" not in html and "<td data-num>—</td>" in html and page.NO_NUMBER_NOTE in html
    assert "<td data-num>62.3</td>" in html and "<td data-num>−2.2 [−7.3, +2.9]</td>" in html
    assert "<td>no conclusion</td>" in html  # words stay left-aligned
    md = page.report_markdown_text("t", sections)
    assert "| nan |" not in md and page.NO_NUMBER_NOTE in md


def test_the_report_names_no_folder_of_the_building_machine(study, monkeypatch):
    from grl.paths import project_root

    out, runs = study
    monkeypatch.setattr(page, "print_pdf", lambda *a, **k: None)
    reference = project_root() / "reports" / "cpu" / "results.csv"
    written = page.write_report(out, "quick", runs, reference_path=reference)
    for name in ("html", "md"):
        text = written[name].read_text()
        assert str(project_root()) not in text and str(out) not in text, name
        assert "reports/cpu/results.csv" in text  # named relative to the repository


def test_without_chromium_everything_else_is_written_and_one_line_says_how(study, monkeypatch):
    out, runs = study
    monkeypatch.setattr(page, "chromium_executable", lambda: None)
    written = page.write_report(out, "quick", runs)
    assert written["html"].is_file() and written["md"].is_file() and not (out / "report.pdf").exists()
    assert "\n" not in written["pdf_missing"] and "chromium" in written["pdf_missing"].lower()


def test_figure4_says_at_what_resolution_its_maps_are_computed(study):
    _, runs = study
    caption = document.figure4_caption(runs)  # the quick profile: 32x16 frames
    assert "R_t" in caption and "M^1_t" in caption and "M^2_t" in caption
    assert "2×1 for the 32×16 input (stride 16)" in caption
