"""``python -m grl.bench [evaluation|data|model|run|gpu|variance|realsize|dense|paper_time ...] [--quick]``: print
every benchmark table.

``variance`` (the study's variance components, minutes of training), ``realsize`` (a 50,000-frame MARS-layout
tree), ``dense`` (one tracklet of up to 3,000 frames) and ``paper_time`` run only when named.

Benchmarks print tables; they never pass or fail. Timings on a shared machine are noisy:
compare the ratios printed in one run (e.g. vectorised vs per-query evaluation).
"""

from __future__ import annotations

import argparse
import importlib

SECTIONS = ("evaluation", "data", "model", "run", "gpu", "variance", "realsize", "dense", "paper_time")
DEFAULT_SECTIONS = SECTIONS[:5]  # the others take minutes (trainings, tens of thousands of frames): when asked for


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grl.bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "sections",
        nargs="*",
        metavar="SECTION",
        help=f"which benchmarks: {', '.join(SECTIONS)} (default: all but variance)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="skip the slow parts (per-query reference; ResNet-50 step; repetitions)"
    )
    args = parser.parse_args(argv)
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    for section in args.sections or DEFAULT_SECTIONS:
        print(f"\n=== grl.bench.{section} ===", flush=True)
        module = importlib.import_module(f"grl.bench.{section}")
        extra = {
            "evaluation": ["--no-reference", "--no-rerank"],
            "model": ["--quick"],
            "data": ["--batches", "3"],
            "run": ["--quick"],
            "gpu": ["--tiny"],
            "variance": ["--seeds", "0-1", "--splits", "0-1"],
            "realsize": ["--frames", "2000", "--decode-files", "200", "--batches", "3"],
            "dense": ["--lengths", "40", "--resnet-frames", "0"],
            "paper_time": [],
        }[section]
        module.main(extra if args.quick else [])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
