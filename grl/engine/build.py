"""What a training is built from: the model and its objective, the optimizer, the learning-rate schedule.

Public: the benchmarks and tests build exactly what a run trains (grl.bench.model times it)."""

from __future__ import annotations

from typing import Any

import torch

from grl.config import Config
from grl.utils import seed_layers_by_name


def build_training(config: Config, dataset, device: torch.device) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(model, objective) of a run, on ``device`` in ``config.dtype``; ``dataset`` sizes the OIM tables (its
    ``num_train_ids``)."""
    from grl.losses import GRLObjective
    from grl.models import build_model

    model = build_model(config)  # the tiny backbone's pretrained weights are made (once) there
    if config.backbone_from:
        load_backbone(model, config.backbone_from)
    if config.freeze_backbone:
        model.backbone.requires_grad_(False)
    objective = GRLObjective(config, dataset.num_train_ids, feature_dims(model))
    if config.crn:
        # The backbone is built first from the seed, so it starts alike in every arm already; the new layers
        # are reseeded by name, so a layer two arms share starts alike however many others either builds.
        seed_layers_by_name(model, config.seed, skip=("backbone",))
        seed_layers_by_name(objective, config.seed, prefix="objective.")
    model.to(device=device, dtype=config.torch_dtype)
    objective.to(device=device, dtype=config.torch_dtype)
    if device.type == "cuda" and config.channels_last:
        model.to(memory_format=torch.channels_last)
    return model, objective


def build_optimizer(config: Config, model: torch.nn.Module, objective: torch.nn.Module) -> torch.optim.Optimizer:
    """SGD, Nesterov momentum (or Adam when config.optimizer == "adam"); group 0 = backbone (lr), group 1 = every new layer (lr × new_layer_lr_mult).

    New layers: everything of the model outside ``model.backbone`` plus the objective's own
    parameters (e.g. the verification head; OIM lookup tables are buffers, not parameters).
    """
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, torch.nn.Module):
        raise TypeError(f"build_optimizer: the model ({type(model).__name__}) has no 'backbone' sub-module")
    backbone_ids = {id(p) for p in backbone.parameters()}
    if config.gce_lr_as_backbone and isinstance(getattr(model, "correlation", None), torch.nn.Module):
        backbone_ids |= {id(p) for p in model.correlation.parameters()}  # the release's grouping: GCE with the backbone
    old = [p for p in model.parameters() if id(p) in backbone_ids and p.requires_grad]
    new = [p for p in model.parameters() if id(p) not in backbone_ids and p.requires_grad]
    new += [p for p in objective.parameters() if p.requires_grad]
    groups = [{"params": old, "lr": config.lr, "name": "backbone"}] if old else []  # none: a frozen backbone
    if new:
        groups.append({"params": new, "lr": config.lr * config.new_layer_lr_mult, "name": "new"})
    if config.optimizer == "adam":
        # Only for the CPU profiles (a tiny backbone from scratch, 400 steps). Measured on the synthetic
        # MARS-like set: the paper's SGD (lr 1e-3) gives GRL 17.8 mAP but the Baseline only 4.5; with
        # Adam 17.1 and 11.5. Adam keeps the Baseline from being handicapped by the short schedule.
        return torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, nesterov=config.momentum > 0
    )


def build_scheduler(config: Config, optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per epoch. ``step``: lr × lr_gamma every lr_step epochs (lr_step <= 0: constant lr).
    ``cosine``: epoch e of E trains at lr · (1 + cos(π e / E)) / 2, from the full lr to near 0 in the last epoch
    (docs/convergence.md, H7)."""
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs, eta_min=0.0)
    if config.lr_step <= 0:
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=1.0)
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step, gamma=config.lr_gamma)


def load_backbone(model, source) -> None:
    """Copy the backbone weights of a finished run (its folder or model file) into ``model.backbone``: the
    backbone question of docs/convergence.md (GRL's heads on the Baseline's trained backbone)."""
    from grl.engine.features import load_run

    _, trained = load_run(source)
    model.backbone.load_state_dict(trained.backbone.state_dict())


def feature_dims(model) -> Any:
    """What GRLObjective needs to size its heads: the model's declared feature dimensions."""
    for attr in ("dims", "feature_dims"):
        if hasattr(model, attr):
            return getattr(model, attr)
    raise AttributeError(f"the model ({type(model).__name__}) declares no 'dims' for GRLObjective")
