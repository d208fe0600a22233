"""What nbval checks must be identical on any x86-64 CPU and thread count, and still catch a wrong equation.

The quick profile trains in float64 on one thread (grl.experiments.PROFILES["quick"]). These tests
train its GRL run -- exactly what notebooks/experiment.ipynb runs and prints -- under environments
that make oneDNN, MKL and ATen pick other kernels, and compare the checked text and the raw numbers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from grl.batch.shared import check_data
from grl.engine import train
from grl.experiments import make_run
from grl.models import grl as grl_model
from grl.results import metrics_table

pytestmark = pytest.mark.slow

# The environments of issue "results that reproduce on another machine", plus ATen limited to AVX2,
# which is how an AVX2-only CPU (AMD EPYC) runs torch's own kernels.
VARIANTS = {
    "default": {},
    "1 thread": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    "AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "SSE41": {"ONEDNN_MAX_CPU_ISA": "SSE41"},
    "ATen AVX2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}

SCRIPT = """
import json, sys, tempfile
from grl.engine import train
from grl.experiments import make_run
from grl.results import metrics_table
run = make_run("grl", "mars", "quick")
with tempfile.TemporaryDirectory() as out:
    result = train(run.config, out, progress=False)
print(json.dumps({"checked": metrics_table(result).to_markdown(),
                  "raw": {f: {k: m[k] for k in ("mAP", "rank1", "rank5", "rank10", "rank20")}
                          for f, m in result["metrics"].items()}}))
"""


def _quick_grl_in(env_changes: dict) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY", "OMP_NUM_THREADS")
    }
    env.update(env_changes)
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_checked_outputs_are_identical_across_instruction_sets_and_threads():
    check_data([make_run("grl", "mars", "quick")])  # generate the data once, outside the timed variants
    outputs = {name: _quick_grl_in(env) for name, env in VARIANTS.items()}
    reference = outputs["default"]
    for name, output in outputs.items():
        assert output["checked"] == reference["checked"], f"checked output differs under {name}"
        # Not only the rounded text: the float64 metrics agree to the last bit.
        assert output["raw"] == reference["raw"], f"raw metrics differ under {name}"


def _checked(tmp_path, name: str) -> str:
    run = make_run("grl", "mars", "quick")
    check_data([run])
    return metrics_table(train(run.config, tmp_path / name, progress=False)).to_markdown()


def test_a_wrong_equation_changes_the_checked_output(tmp_path, monkeypatch):
    correct = _checked(tmp_path, "correct")
    assert _checked(tmp_path, "again") == correct  # repeatable, so any change below is the equation's

    # Eq. 2 without its sigmoid: R_t = W_r(...) itself (logit undoes the sigmoid of the real forward).
    forward = grl_model.GlobalCorrelation.forward
    monkeypatch.setattr(grl_model.GlobalCorrelation, "forward", lambda self, *a: torch.logit(forward(self, *a)))
    assert _checked(tmp_path, "no-sigmoid") != correct
    monkeypatch.undo()

    # Eq. 8 with a memory that is never updated: M_t = M_{t-1} = M_0.
    monkeypatch.setattr(grl_model.EnhancementMemoryUnit, "accumulate", lambda self, memory, low: memory)
    assert _checked(tmp_path, "frozen-memory") != correct
