"""The results side: finished runs -> the results frame, the paper's tables beside ours, the comparisons and their
verdicts, this study against a reference, the report rendered to HTML and Markdown, its figures.

One module per job, imported in one direction (tests/test_architecture.py keeps it so):

- :mod:`~grl.results.frame` — the results frame and its CSV, the paper's numbers, per-cell samples and intervals;
- :mod:`~grl.results.runs` — the runs behind a report: their list, failures, machines (the provenance section);
- :mod:`~grl.results.tables` — Tables 1-6: paper, ours with its interval, the difference;
- :mod:`~grl.results.comparisons` — the paired comparisons of Tables 2-6, Holm, detectable effects, verdicts;
- :mod:`~grl.results.reference` — this study against a reference study;
- :mod:`~grl.results.render` — tables as styled HTML and Markdown;
- :mod:`~grl.results.figures` — the report's PNG figures (drawn by grl.viz);
- :mod:`~grl.results.precision` — the half-widths reached against the targets, the frontier over seeds;
- :mod:`~grl.results.summary` — the verdict tables, the precision section, the stopped-early note;
- :mod:`~grl.results.document` — the report's sections in the reader's order, with their figures' captions;
- :mod:`~grl.results.page` — report.md, report.html and report.pdf written from those sections.

The names below are the public API (``from grl import results; results.comparisons(ours)``); notebooks/report.ipynb
only calls them and displays what they return.
"""

from grl.results.comparisons import (
    COMPARISON_COLUMNS,
    EQUIVALENCE_MARGIN,
    comparisons,
    grl_vs_baseline,
    reference_row,
    verdict_counts,
    verdict_summary,
)
from grl.results.document import Section, report_answer, report_sections
from grl.results.figures import learning_curves_figure, ranked_lists_figure, save_figures
from grl.results.frame import (
    CELL,
    DATASET_NAMES,
    METRIC_NAMES,
    METRICS,
    RESULT_COLUMNS,
    cell_statistics,
    metrics_table,
    paper_results,
    read_results_csv,
    results_frame,
    write_results_csv,
)
from grl.results.page import print_pdf, report_markdown, write_report
from grl.results.reference import committed_reference, compare_with_reference, reference_comparison
from grl.results.render import (
    comparisons_html,
    comparisons_markdown,
    pretraining_section,
    runs_table,
    runs_table_html,
    styled_table,
)
from grl.results.runs import failed_runs, provenance, runs_frame
from grl.results.summary import (
    ablation_table,
    convergence_figure,
    grl_vs_baseline_table,
    precision_section,
    reference_table,
    stopped_early_note,
)
from grl.results.tables import assemble_tables, pretraining_table, table_markdown, tables_markdown, wide_table

__all__ = [
    "Section",
    "print_pdf",
    "report_answer",
    "report_sections",
    "write_report",
    "ablation_table",
    "convergence_figure",
    "grl_vs_baseline_table",
    "precision_section",
    "reference_table",
    "report_markdown",
    "stopped_early_note",
    "CELL",
    "COMPARISON_COLUMNS",
    "DATASET_NAMES",
    "EQUIVALENCE_MARGIN",
    "METRICS",
    "METRIC_NAMES",
    "RESULT_COLUMNS",
    "assemble_tables",
    "cell_statistics",
    "committed_reference",
    "compare_with_reference",
    "comparisons",
    "comparisons_html",
    "comparisons_markdown",
    "failed_runs",
    "grl_vs_baseline",
    "learning_curves_figure",
    "metrics_table",
    "paper_results",
    "pretraining_section",
    "pretraining_table",
    "provenance",
    "ranked_lists_figure",
    "read_results_csv",
    "reference_comparison",
    "reference_row",
    "results_frame",
    "runs_frame",
    "runs_table",
    "runs_table_html",
    "save_figures",
    "styled_table",
    "table_markdown",
    "tables_markdown",
    "verdict_counts",
    "verdict_summary",
    "wide_table",
    "write_results_csv",
]
