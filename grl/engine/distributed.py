"""One run on several processes (``torchrun``): process group, rank helpers, pair-ordered gathers, sync BN.

Everything here is a no-op in a single process, so a run started without torchrun's environment
variables (RANK, WORLD_SIZE, LOCAL_RANK) computes exactly what it always did.

How a distributed run stays equal to a single process with the same global batch:

* every rank takes its own whole pairs of the global paired batch (:func:`check_world_size`,
  :func:`grl.data.sampling.shard_pairs`), with the same per-clip random keys as a single process;
* the model's outputs are gathered into the global batch order (:func:`gather_pairs`, autograd
  flows back to each rank's own clips) and every rank evaluates the whole objective on them, so the
  verification loss sees every probe × gallery pair and the OIM lookup tables get the same update
  in the same order on every rank;
* optionally (``Config.sync_bn``) the model's BatchNorm statistics are those of the global batch
  (:class:`SyncBatchNorm`).
"""

from __future__ import annotations

import contextlib
import datetime
import os

import torch
import torch.distributed as dist
from torch import Tensor, nn

from grl.data.sampling import check_world_size  # noqa: F401  (the batch and the trainer call it from here)


def requested() -> bool:
    """Whether torchrun (or a launcher like it) asked for more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0")) if is_distributed() else 0


def is_main() -> bool:
    """Rank 0 (or the single process): the one that writes files and evaluates."""
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


@contextlib.contextmanager
def session(device: str = "auto"):
    """Join the process group torchrun describes (nccl for CUDA, gloo otherwise) for the block, then leave it.

    Re-entrant: inside an open session (or without torchrun's variables) it does nothing, so both the
    command line and :func:`grl.engine.train` can wrap themselves in it. The timeout is long
    (GRL_DIST_TIMEOUT_MIN, default 120 minutes) because the other ranks wait at a barrier while rank 0
    evaluates, which on MARS with ResNet-50 and re-ranking takes many minutes.
    """
    if not requested() or (dist.is_available() and dist.is_initialized()):
        yield
        return
    from grl.utils import resolve_device

    cuda = resolve_device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    timeout = datetime.timedelta(minutes=float(os.environ.get("GRL_DIST_TIMEOUT_MIN", "120")))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timeout)
    try:
        yield
    finally:
        dist.destroy_process_group()


@contextlib.contextmanager
def main_first():
    """Rank 0 runs the block alone first (it may generate data, set bad files aside), then the others.

    Rank 0 reaches the barrier even when the block raises, so the others do not hang: they run the
    block themselves and usually meet the same error."""
    if not is_distributed():
        yield
        return
    if not is_main():
        dist.barrier()
    try:
        yield
    finally:
        if is_main():
            dist.barrier()


class _AllGather(torch.autograd.Function):
    """all_gather whose backward hands each rank the sum over ranks of the gradient of its own part."""

    @staticmethod
    def forward(ctx, tensor: Tensor) -> Tensor:
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        return torch.stack(parts)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # gloo has no reduce_scatter; the tensors here are small (features, BN statistics)
        return grad[dist.get_rank()]


def any_rank(name: str | None) -> str | None:
    """``name`` if this or any other rank has one (a preemption signal seen by some ranks only), else None: every
    rank calls it at the same step, so they all stop there together."""
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    flag = torch.tensor([1 if name else 0], dtype=torch.int32, device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return (name or "SIGTERM") if int(flag) else None


def all_gather(tensor: Tensor) -> Tensor:
    """(world, *tensor.shape): every rank's ``tensor``, differentiable. Equal shapes on every rank."""
    if not is_distributed():
        return tensor.unsqueeze(0)
    if tensor.requires_grad:
        return _AllGather.apply(tensor)
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.stack(parts)


def gather_pairs(tensor: Tensor) -> Tensor:
    """Every rank's local paired batch (probes, then partners) joined in the single-process order.

    The result is ``[probes of rank 0, probes of rank 1, …, partners of rank 0, …]`` — the global batch
    the sampler drew — so what follows (OIM's sample-by-sample table update, the probe × gallery
    pairs) sees exactly a single process's batch. Gradients flow back to the local part. Works for any
    tensor whose first dimension is the local batch (or a multiple of it, e.g. B·T frame rows)."""
    if not is_distributed():
        return tensor
    world = dist.get_world_size()
    n = tensor.shape[0]
    stacked = all_gather(tensor)  # (world, n, ...)
    halves = stacked.view(world, 2, n // 2, *tensor.shape[1:]).transpose(0, 1)  # (2, world, n/2, ...)
    return halves.reshape(world * n, *tensor.shape[1:])


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the batch on every rank together.

    Unlike torch.nn.SyncBatchNorm it also runs on CPU (gloo), which is where it is tested. Each rank
    contributes its count, mean and biased variance (gathered with autograd, so the gradient through
    the statistics is exact); the combination is Chan's parallel variance, stable in fp32. Outside
    training, or in a single process, it is the ordinary BatchNorm.
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: Tensor) -> Tensor:
        if not (self.training and is_distributed()):
            return super().forward(input)
        dims = [0] + list(range(2, input.dim()))
        x = input.to(torch.promote_types(input.dtype, torch.float32))  # statistics at least in fp32 (autocast)
        count = torch.full((1,), x.numel() // x.shape[1], dtype=x.dtype, device=x.device)
        var, mean = torch.var_mean(x, dim=dims, correction=0)
        stats = all_gather(torch.cat([count, mean, var]))  # (world, 1 + 2C)
        counts, means, variances = stats[:, :1], stats[:, 1 : 1 + x.shape[1]], stats[:, 1 + x.shape[1] :]
        total = counts.sum()
        g_mean = (counts * means).sum(0) / total
        g_var = (counts * (variances + (means - g_mean) ** 2)).sum(0) / total
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = g_var * total / (total - 1).clamp(min=1)
                self.running_mean.mul_(1 - m).add_(m * g_mean.to(self.running_mean.dtype))
                self.running_var.mul_(1 - m).add_(m * unbiased.to(self.running_var.dtype))
        shape = [1, -1] + [1] * (input.dim() - 2)
        y = (x - g_mean.view(shape)) * torch.rsqrt(g_var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(input.dtype)


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with every BatchNorm1d/2d/3d replaced by a :class:`SyncBatchNorm` holding the same
    parameters and buffers (state-dict keys unchanged, so checkpoints stay interchangeable)."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, SyncBatchNorm):
        out = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        out.running_mean, out.running_var = module.running_mean, module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
        return out
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child))
    return module


class GatheredObjective(nn.Module):
    """Model and objective as one module for DistributedDataParallel: forward(clips, pids) → (loss, parts).

    The local outputs are gathered into the global batch (:func:`gather_pairs`) and every rank
    computes the single-process objective on them, so every rank holds the same loss value and applies
    the same OIM table updates. The gradient of rank r's clips then arrives summed over the ranks'
    identical losses (world × its share) and DDP's averaging divides it back: the step is a single
    process's step on the global batch.
    """

    FIELDS = ("global_feature", "frame_high", "video_high", "video_low")  # what GRLObjective reads

    def __init__(self, model: nn.Module, objective: nn.Module) -> None:
        super().__init__()
        self.model, self.objective = model, objective

    def forward(self, clips: Tensor, pids: Tensor):
        import dataclasses

        output = self.model(clips)
        gathered = {f.name: None for f in dataclasses.fields(output)}
        for name in self.FIELDS:
            value = getattr(output, name, None)
            gathered[name] = gather_pairs(value) if value is not None else None
        return self.objective(type(output)(**gathered), gather_pairs(pids))


def joint_module(config, model, objective, device) -> tuple[nn.Module, nn.Module]:
    """(model, its DistributedDataParallel module with the objective) of a run on several processes; the model is
    the one given, with SyncBatchNorm layers where ``config.sync_bn`` asks for them."""
    if config.sync_bn:
        model = convert_sync_batchnorm(model)
    # Not broadcast_buffers: the OIM tables are identical by construction (and the tests check it);
    # without sync_bn each rank keeps its own BatchNorm running statistics, and rank 0's are saved.
    # Without the video-level OIM (Table 6's F-OIM) F^l's integration layers are in no loss: DDP must then look
    # for unused parameters (an extra graph traversal per step, not needed by any other ablation).
    return model, torch.nn.parallel.DistributedDataParallel(
        GatheredObjective(model, objective),
        device_ids=[device.index] if device.type == "cuda" else None,
        broadcast_buffers=False,
        find_unused_parameters="v" not in config.oim,
    )
