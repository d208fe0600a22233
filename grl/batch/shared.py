"""What the runs of a batch share, made once before the first run: the built-in data, the pretrained backbone and
the frame caches (in parallel one-thread processes), and the check that every run's data can be read.
"""

from __future__ import annotations

import time

from grl.config import ConfigError
from grl.experiments import Run, get_profile


# ---------------------------------------------------------------------------------------
# data and in-process training
def check_data(runs: list[Run]) -> None:
    """Make sure every run has data: generate the built-in synthetic sets, check given roots up front.

    A "real"-data profile refuses to fall back to synthetic data; a root that does not
    hold its dataset fails here with the loader's DatasetNotFoundError (what is expected where).
    """
    from grl.data import load_config_dataset
    from grl.data.extra_datasets import load_dataset

    checked: set[tuple[str, str]] = set()
    for run in runs:
        ds, root = run.dataset, run.config.data_root
        if (ds, root) in checked:
            continue
        checked.add((ds, root))
        profile = get_profile(run.profile)
        if not root and profile.data == "real":
            raise ConfigError(
                f"profile {run.profile!r} trains on the real {ds} dataset: give its root with "
                f"--data-root {ds}=/path/to/{ds} (or use --profile cpu for the built-in data)"
            )
        if not root:
            started = time.perf_counter()
            load_config_dataset(run.config.replace(frame_cache=False))  # generates the built-in set when missing
            if time.perf_counter() - started > 2:
                print(
                    f"built-in {ds} data ({run.config.data_size}): generated in {time.perf_counter() - started:.0f} s"
                )
        else:
            load_dataset(ds, root, split=run.split)


def prepare_shared(runs: list[Run], jobs: int = 1) -> None:
    """Make once, before any run starts, what several runs share: the built-in data sets, the pretrained tiny
    backbone and the decoded-frame caches. With ``jobs`` > 1 these independent pieces are made in ``jobs``
    one-thread processes at once (data generation is single-threaded numpy; the pretraining a small network).
    Prints what each cost: it counts in the study's time."""
    from concurrent.futures import ProcessPoolExecutor

    from grl.models.pretrain import PretrainSpec

    tasks: dict = {}
    for run in runs:
        c = run.config
        if not c.data_root and c.data_version:
            tasks.setdefault(("data", c.dataset, c.data_size), c)
        if c.pretrained and c.backbone == "tiny":
            tasks.setdefault(("pretrain", PretrainSpec.from_config(c)), c)
    # The pretraining first: it is the longest piece.
    order = sorted(tasks, key=lambda t: t[0] != "pretrain")
    if jobs > 1 and len(order) > 1:
        with ProcessPoolExecutor(max_workers=jobs, initializer=_one_thread_worker) as pool:
            futures = {t: pool.submit(_prepare_one, t[0], tasks[t].to_dict()) for t in order}
            for t, future in futures.items():
                _report_prepared(t, future.result())
    else:
        for t in order:
            _report_prepared(t, _prepare_one(t[0], tasks[t].to_dict()))
    from grl.data import load_config_dataset

    made: set = set()
    for run in runs:
        c = run.config
        if c.frame_cache and c.data_version and (c.dataset, c.data_version, c.height, c.width) not in made:
            made.add((c.dataset, c.data_version, c.height, c.width))
            started = time.perf_counter()
            load_config_dataset(c)  # builds the frame cache when it is missing
            if time.perf_counter() - started > 1:
                print(f"frame cache {c.dataset} {c.height}x{c.width}: made in {time.perf_counter() - started:.0f} s")


def _one_thread_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _prepare_one(kind: str, values: dict) -> float:
    """One piece of :func:`prepare_shared` (in a worker process): seconds it took, 0 when it was there."""
    from grl.config import Config

    config = Config.from_dict(values)
    started = time.perf_counter()
    if kind == "pretrain":
        from grl.models.pretrain import PretrainSpec, ensure_pretrained, read_pretrained

        spec = PretrainSpec.from_config(config)
        if read_pretrained(spec.path(), spec) is not None:
            return 0.0
        ensure_pretrained(config, progress=False)
    else:
        from grl.data import synthetic
        from grl.data.synthetic import version
        from grl.data.synthetic.store import read_manifest

        sizes = synthetic.preset_sizes(config.data_size, config.dataset)
        root = synthetic.default_root(config.dataset, config.data_size)
        manifest = read_manifest(root)
        if (
            manifest
            and manifest.get("version") == version.GENERATOR_VERSION
            and manifest.get("sizes") == synthetic.resolve_sizes(config.dataset, **sizes)
        ):
            return 0.0
        synthetic.ensure_synthetic(config.dataset, root=root, **sizes)
    return time.perf_counter() - started


def _report_prepared(task: tuple, seconds: float) -> None:
    if seconds > 0:
        what = (
            f"pretrained backbone {task[1].path().name}"
            if task[0] == "pretrain"
            else f"built-in {task[1]} data ({task[2]})"
        )
        print(f"{what}: made in {seconds:.0f} s", flush=True)
