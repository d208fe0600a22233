"""Test helper (not a test): train one run from a JSON spec, alone or as one rank under torchrun.

``python tests/ddp_worker.py SPEC.json`` or ``python -m torch.distributed.run --nproc_per_node 2
tests/ddp_worker.py SPEC.json``. SPEC: {"config": Config fields, "dataset": a pickled dataset, "out": the
run folder, "record": a folder}. After every epoch each rank saves its loss per step so far and its
objective's state (the OIM lookup tables) as record/rank<r>-epoch<e>.pt.
"""

import json
import os
import pickle
import sys
from pathlib import Path

import torch

from grl.config import Config
from grl.engine import trainer

spec = json.loads(Path(sys.argv[1]).read_text())
config = Config.from_dict(spec["config"])
dataset = pickle.loads(Path(spec["dataset"]).read_bytes())
record = Path(spec["record"])
record.mkdir(parents=True, exist_ok=True)
rank = int(os.environ.get("RANK", "0"))
losses: list[float] = []
real_step, real_epoch = trainer.train_step, trainer.train_one_epoch


def train_step(*args, **kwargs):
    value, parts = real_step(*args, **kwargs)
    losses.append(value)
    return value, parts


def train_one_epoch(config, state, *args, **kwargs):
    out = real_epoch(config, state, *args, **kwargs)
    torch.save(
        {"losses": list(losses), "objective": state.objective.state_dict(), "model": state.model.state_dict()},
        record / f"rank{rank}-epoch{out['epoch']}.pt",
    )
    return out


trainer.train_step, trainer.train_one_epoch = train_step, train_one_epoch
trainer.train(config, spec["out"], progress=False, dataset=dataset)
