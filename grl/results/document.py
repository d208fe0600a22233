"""The report as one document, its sections in the order a reader asks their questions (docs/report.md):

1. the answer (what was trained, on what, the headline verdicts);
2. GRL against the Baseline;
3. every comparison of Tables 2-6 at a glance (one figure, then the counts);
4. Tables 1-6 beside the paper's numbers;
5. Figure 4; 6. the learning curves; 7. ranked lists;
8. appendices: precision and variance components, calibration, Table 7, reproduction against a reference, every
   comparison, provenance, the runs.

Each :class:`Section` carries its Markdown (report.md) and, where the page shows more than Markdown can (coloured
verdicts, tables split to fit), its HTML; grl.results.page writes both files and prints the PDF.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from grl.experiments import PROFILES, Run
from grl.results.comparisons import comparisons, verdict_counts, verdict_summary
from grl.results.frame import DATASET_NAMES, METRIC_NAMES, calibration_check, results_frame
from grl.results.reference import reference_comparison
from grl.results.render import comparisons_html, comparisons_markdown, pretraining_section, runs_table, styled_table
from grl.results.runs import provenance
from grl.results.summary import (
    VerdictTable,
    ablation_table,
    convergence_figure,
    grl_vs_baseline_table,
    precision_section,
    reference_table,
    stopped_early_note,
)
from grl.results.tables import assemble_tables, table_markdown


@dataclass(frozen=True)
class Section:
    title: str
    markdown: str
    html: str | None = None  # None: the page renders the Markdown
    appendix: bool = False

    @property
    def anchor(self) -> str:
        return slug(self.title)


def slug(title: str) -> str:
    """The anchor GitHub gives a heading (lower case, punctuation dropped, spaces to hyphens): report.md's table
    of contents works on GitHub and in report.html alike."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


@dataclass(frozen=True)
class Figure:
    path: str  # relative to the report's folder
    caption: str

    def markdown(self) -> str:
        return f"![{self.caption}]({self.path})\n\n*{self.caption}*"

    def html(self) -> str:
        from html import escape

        return (
            f'<figure><img src="{escape(self.path)}" alt="{escape(self.caption)}">'
            f"<figcaption>{escape(self.caption)}</figcaption></figure>"
        )


def _figures_html(figures: list[Figure], text_html: str = "") -> str:
    return "\n".join(f.html() for f in figures) + text_html


def _seeds_and_splits(ours: pd.DataFrame) -> tuple[list[int], int]:
    if ours.empty:
        return [], 0
    small = ours[ours.dataset != "mars"]
    return sorted(int(s) for s in ours.seed.unique()), (int(small.split.nunique()) if len(small) else 0)


def report_answer(
    profile: str,
    runs: list[Run],
    ours: pd.DataFrame,
    agreement: pd.DataFrame,
    reproduced: str = "",
    stopped_early: str | None = None,
) -> str:
    """The report's first paragraph: what was trained, on what, and the headline verdicts. ``stopped_early``: the
    profile's :func:`stopped_early_note` when the caller has it (None: read here)."""
    done = sum(r.is_done() for r in runs)
    seeds, splits = _seeds_and_splits(ours)
    seeds_text = f"{len(seeds)} seed{'s' * (len(seeds) != 1)} ({', '.join(map(str, seeds))})" if seeds else "no seed"
    data = (
        "real data"
        if any(r.config.data_root for r in runs)
        else "the built-in synthetic MARS-, iLIDS-VID- and PRID2011-like sets"
    )
    text = [
        f"**What was trained.** {done} of {len(runs)} runs of the `{profile}` profile ({PROFILES[profile].description}) "
        f"on {data}: {seeds_text}"
        + (f", the small sets over {splits} split{'s' * (splits != 1)} each" if splits else "")
        + ". Every number is a mean with its 95 % interval over those seeds (and splits); every comparison is paired."
    ]
    gvb = grl_vs_baseline_table(ours, agreement).frame
    if len(gvb):
        parts = [
            f"{r['dataset']} {r['metric']} {r['GRL − Baseline [95 %]']} ({r['after Holm']})" for _, r in gvb.iterrows()
        ]
        text.append(f"**GRL against the Baseline** (GRL − Baseline [95 % interval]): {'; '.join(parts)}.")
    if len(agreement):
        held = verdict_counts(agreement, "verdict_holm")
        text.append(
            f"**The ablations of Tables 2-6**: of {len(agreement)} comparisons with the paper's direction, after "
            f"Holm's adjustment {held['agrees']} agree, {held['contradicts']} contradict and {held['inconclusive']} "
            "are inconclusive."
        )
    if stopped_early_note(profile) if stopped_early is None else stopped_early:
        text.append(
            "**Stopped early**: this profile's MARS-like runs stop before their learning curves flatten, so the "
            "verdicts measure how fast each arm learns (see [Learning curves](#learning-curves))."
        )
    if reproduced:
        text.append(reproduced)
    return "\n\n".join(text)


def _reproduced_sentence(reference: VerdictTable, compared: bool, label: str) -> str:
    """One sentence for the answer, read from the reference table's "met" column (its criteria live there)."""
    if not compared:
        return ""
    met = all(v == "yes" for v in reference.frame["met"] if v)  # the last row is for information only
    return (
        f"**Against the reference** ({label.replace('`', '')}): "
        + ("every criterion of a reproduction is met" if met else "not every criterion of a reproduction is met")
        + " (see [Reproduction against a reference](#reproduction-against-a-reference))."
    )


def calibration_markdown(ours: pd.DataFrame) -> str:
    """This study's Baseline against the calibration targets of the built-in data (docs/study.md)."""
    records = [
        {
            "dataset": DATASET_NAMES[c["dataset"]],
            "metric": METRIC_NAMES[c["metric"]],
            "Baseline (F^g)": c["interval"].text(1),
            "target": f"{c['low']}-{c['high']}",
            "in range": "yes" if c["in_range"] else "no",
        }
        for c in calibration_check(ours)
    ]
    head = (
        "The built-in data's difficulty is set on the Baseline alone, by the rule written before calibrating "
        "([docs/study.md](../../docs/study.md#calibrating-the-built-in-benchmark-the-rule-written-before-calibrating)): "
        "its mean in the ranges below. This study's Baseline:"
    )
    if not records:
        return head + "\n\n(no Baseline run in this selection)"
    return head + "\n\n" + pd.DataFrame(records).to_markdown(index=False, disable_numparse=True)


def _convergence_seeds(figure: Path) -> str:
    """How many seeds the convergence curves rest on (their curves.csv beside the figure), as a word for the
    caption."""
    curves = figure.with_name("curves.csv")
    if not curves.is_file():
        return "its"
    seeds = pd.read_csv(curves, usecols=["dataset", "seed"]).query("dataset == 'mars'").seed.nunique()
    return str(seeds)


def _same_checkout(path: Path, out: Path) -> bool:
    from grl.paths import project_root

    root = project_root()
    return bool(root) and path.resolve().is_relative_to(root) and out.resolve().is_relative_to(root)


def _relative(path: Path, out: Path) -> str:
    return Path(os.path.relpath(path, out)).as_posix()


def figure4_caption(runs: list[Run]) -> str:
    from grl.models.backbone import TOTAL_STRIDE

    run = next((r for r in runs if r.experiment == "grl" and r.dataset == "mars"), None)
    where = ""
    if run is not None:
        c = run.config
        where = (
            f" The maps are computed at the backbone's last feature map, {c.height // TOTAL_STRIDE}×"
            f"{c.width // TOTAL_STRIDE} for the {c.height}×{c.width} input (stride {TOTAL_STRIDE}), and "
            "upsampled onto the frames."
        )
    return (
        "Figure 4 (GRL on MARS-like, first seed; two queries of different identities): rows are the T test frames, "
        "the high-correlation maps R_t (eq. 2, min-max over the clip), and the channel activation of the forward "
        "and backward memories M^1_t and M^2_t (eq. 8)." + where
    )


def report_sections(
    profile: str,
    runs: list[Run],
    reference_path=None,
    out: str | Path | None = None,
    failed: dict[str, str] | None = None,
) -> list[Section]:
    """Every section of the report, in order. ``out``: the report's folder, where its figures are (only the
    figures that exist there are shown)."""
    ours = results_frame(runs)
    tables = assemble_tables(ours, failed=failed or {})
    agreement = comparisons(ours)
    seeds, splits = _seeds_and_splits(ours)
    rests_on = f"{len(seeds)} seed(s) on the MARS-like set" + (
        f", {len(seeds)} seed(s) × {splits} split(s) on the small sets" if splits else ""
    )
    out = Path(out) if out is not None else None

    def figure(name: str, caption: str) -> list[Figure]:
        if out is None:
            return []
        return [Figure(p.name, caption) for p in sorted(out.glob(name))]

    numbers, label, reference_text = reference_comparison(profile, ours, reference_path)
    ref = reference_table(numbers, label, reference_text)
    note = stopped_early_note(profile)
    reproduced = _reproduced_sentence(ref, bool(numbers), label)
    sections = [Section("The answer", report_answer(profile, runs, ours, agreement, reproduced, note))]

    gvb = grl_vs_baseline_table(ours, agreement)
    sections.append(Section("GRL against the Baseline", gvb.markdown(), gvb._repr_html_()))

    overview = figure(
        "comparisons_overview.png",
        f"Every comparison of Tables 2-6 against its table's reference row: our paired difference with its 95 % "
        f"interval (coloured by the verdict before Holm), the per-seed and per-split differences it rests on (grey; "
        f"n on each line) and the paper's difference (×), mAP left, Rank-1 right. Rests on {rests_on}.",
    )
    counts = ablation_table(agreement)
    summary_line = verdict_summary(agreement).split("\n")[-1] if len(agreement) else ""
    sections.append(
        Section(
            "Every comparison at a glance",
            "\n\n".join([*(f.markdown() for f in overview), counts.markdown(), summary_line]),
            _figures_html(overview, counts._repr_html_() + (f"<p>{summary_line}</p>" if summary_line else "")),
        )
    )

    sections.append(
        Section(
            "Tables 1-6 beside the paper",
            "\n".join(table_markdown(t, tables[t]) for t in sorted(tables) if t <= 6),
            "\n".join(styled_table(t, tables[t], agreement) for t in sorted(tables) if t <= 6),
        )
    )

    fig4 = figure("figure4_query*.png", figure4_caption(runs))
    sections.append(
        Section(
            "Figure 4",
            "\n\n".join(f.markdown() for f in fig4) or "(not generated: no finished GRL run on MARS)",
            _figures_html(fig4) or None,
        )
    )

    curves = figure(
        "training_curves.png",
        f"Training on MARS-like, Baseline, +GCE and GRL: one panel per loss term and per test number evaluated more "
        f"than once, the mean over {len(seeds)} seed(s) with a ±1 SD band against training steps.",
    )
    converged = convergence_figure()
    if note and converged is not None and out is not None and _same_checkout(converged, out):
        curves.append(
            Figure(
                _relative(converged, out),
                "The convergence investigation's learning curves on the MARS-like set, trained four times longer or "
                f"more: the mean and band over up to {_convergence_seeds(converged)} seeds per arm (docs/convergence.md).",
            )
        )
    curves_md = "\n\n".join([*(f.markdown() for f in curves), *([note] if note else [])])
    sections.append(Section("Learning curves", curves_md or "(no learning curve logged)"))

    ranked = figure(
        "ranked_lists.png",
        "Ranked lists, GRL beside the Baseline on the same four MARS-like queries (first seed): each model's five "
        "nearest gallery tracklets by its main feature; green the right identity, red another, grey ignored by the "
        "protocol.",
    )
    if ranked:
        sections.append(Section("Ranked lists", "\n\n".join(f.markdown() for f in ranked)))

    sections += [
        Section("Precision and variance components", precision_section(profile, runs, ours, agreement), appendix=True),
        Section("Calibration", calibration_markdown(ours), appendix=True),
        Section("The pretrained backbone (Table 7)", pretraining_section(runs, ours), appendix=True),
    ]
    sections.append(
        Section(
            "Reproduction against a reference",
            ref.markdown() + ("\n\n" + reference_text if numbers else ""),
            ref._repr_html_() + ("\n" + markdown_html(reference_text) if numbers else ""),
            appendix=True,
        )
    )
    sections.append(
        Section(
            "Every comparison",
            comparisons_markdown(agreement),
            comparisons_html(agreement, collapsed=False),
            appendix=True,
        )
    )
    sections.append(Section("Provenance", provenance(profile, runs), appendix=True))
    listed = runs_table(runs, failed=failed)
    sections.append(Section("The runs", listed.to_markdown(index=False, disable_numparse=True), appendix=True))
    return sections


def markdown_html(text: str) -> str:
    """Markdown (tables included) as HTML."""
    import mistune

    return mistune.create_markdown(escape=False, plugins=["table"])(text)
