"""A trained model on its own: ``python -m grl evaluate`` and ``python -m grl extract``, and the evaluations a
finished run lacks (:func:`complete_evaluation`).

The model comes from a finished run folder (its ``model.pt``), a ``model.pt`` file, or a training ``checkpoint.pt``;
the test set is the model's own dataset or another one (``dataset``, ``data_root``, ``split``), read at the
model's clip length and frame size. Nothing here trains.

A features file (``extract``) is a NumPy ``.npz`` holding, per test tracklet row (the queries first, then the
gallery; on MARS a query tracklet is also a gallery row, as the protocol has it):

=====================  ============================================================================
``feat_<name>``        (N, D) L2-normalised features of each test feature of the model: ``g`` (Baseline),
                       ``l``, ``h``, ``h+l`` (GRL; ``l+h+mean`` with the release's feature)
``pid``, ``camid``     (N,) identity and camera (0-based) of each row
``role``               (N,) ``"query"`` or ``"gallery"``
``frame_paths``        (F,) every row's frame files, in order; row i's are
                       ``frame_paths[frame_offsets[i]:frame_offsets[i + 1]]``
``frame_offsets``      (N + 1,)
``meta``               a JSON string: the model's config and key, the dataset, split, data root, protocol
=====================  ============================================================================

It loads with ``numpy.load(path)`` (no pickle); :func:`evaluate_features_file` ranks it again and gives the
metrics ``evaluate`` gives.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from grl import run_folder
from grl.config import Config, ConfigError
from grl.engine import distributed
from grl.engine.features import encode_test_set, evaluate_model, load_run
from grl.utils import atomic_write_bytes, atomic_write_json, torch_threads

FEATURE_PREFIX = "feat_"


def test_config(
    config: Config,
    dataset: str | None = None,
    data_root: str | None = None,
    split: int | None = None,
    rerank=None,
    overrides: dict | None = None,
) -> Config:
    """The model's config pointed at another test set: ``dataset`` (default its own), ``data_root`` (default its own
    when the dataset is its own, else the built-in synthetic one), ``split``, ``rerank``; ``overrides`` (--set) change
    how it is tested (``test_sampling=dense``, ``batch_size``, ``threads``, ...), never the loaded weights."""
    changes: dict = dict(overrides or {})
    if dataset is not None and dataset != config.dataset:
        changes.update(dataset=dataset, data_root=data_root or "")
    elif data_root is not None:
        changes["data_root"] = data_root
    if split is not None:
        changes["split"] = split
    if rerank is not None:
        changes["rerank"] = bool(rerank)
    if not changes:
        return config
    target = config.replace(**changes)
    if target.data_root == "":  # the built-in set of the model's size preset: today's generator version
        from grl.data.synthetic import data_version, preset_sizes

        target = target.replace(
            data_version=data_version(target.dataset, **preset_sizes(target.data_size, target.dataset))
        )
    else:
        target = target.replace(data_version="")
    return target


def evaluate(source, *, dataset=None, data_root=None, split=None, rerank=None, device="cpu", overrides=None) -> dict:
    """Test the model of ``source`` (run folder, model.pt, checkpoint.pt or an ``extract`` features file): a dict
    with ``metrics`` ({feature: CMC + mAP}), ``config`` key, dataset, split, data root, protocol and source."""
    from grl.data import load_config_dataset
    from grl.engine.features import evaluate_model

    if Path(source).suffix == ".npz":
        if any(v is not None for v in (dataset, data_root, split)) or overrides:
            raise ConfigError(
                f"{source}: a features file holds its test set; --dataset, --data-root, --split, --set do not apply"
            )
        return evaluate_features_file(source, rerank=bool(rerank))
    config, model = load_run(source, device)
    target = test_config(config, dataset, data_root, split, rerank, overrides)
    data = load_config_dataset(target)
    metrics = evaluate_model(model, data, target)
    return {**_describe(source, config, target, data), "metrics": metrics}


def extract(source, out, *, dataset=None, data_root=None, split=None, device="cpu", overrides=None) -> Path:
    """Write every test tracklet's features of ``source``'s model to ``out`` (.npz, see the module docstring)."""
    from grl.data import load_config_dataset

    out = Path(out)
    if out.suffix != ".npz":
        raise ConfigError(f"--out {out}: a features file ends in .npz")
    config, model = load_run(source, device)
    target = test_config(config, dataset, data_root, split, overrides=overrides)
    data = load_config_dataset(target)
    test = encode_test_set(model, data, target)
    rows = list(data.query) + list(data.gallery)
    frames = [str(f) for t in rows for f in t.frames]
    offsets = np.cumsum([0] + [len(t.frames) for t in rows]).astype(np.int64)
    arrays = {
        f"{FEATURE_PREFIX}{name}": torch.cat([test.query[name], test.gallery[name]]).cpu().numpy()
        for name in test.query
    }
    arrays.update(
        pid=np.asarray([t.pid for t in rows], dtype=np.int64),
        camid=np.asarray([t.camid for t in rows], dtype=np.int64),
        role=np.asarray(["query"] * len(data.query) + ["gallery"] * len(data.gallery)),
        frame_paths=np.asarray(frames),
        frame_offsets=offsets,
        meta=np.asarray(json.dumps(_describe(source, config, target, data), sort_keys=True)),
    )
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, buffer.getvalue())
    return out


def read_features(path) -> dict:
    """A features file as a dict of arrays, ``meta`` parsed; checked for the arrays it must hold."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError) as exc:
        raise ConfigError(f"{path} is not a readable features file ({type(exc).__name__}: {exc})") from None
    missing = [k for k in ("pid", "camid", "role", "frame_paths", "frame_offsets", "meta") if k not in arrays]
    if missing or not any(k.startswith(FEATURE_PREFIX) for k in arrays):
        raise ConfigError(f"{path} is not a features file of `python -m grl extract`: it lacks {missing or 'features'}")
    arrays["meta"] = json.loads(str(arrays["meta"]))
    return arrays


def evaluate_features_file(path, rerank: bool = False) -> dict:
    """The metrics of a features file, ranked as ``evaluate`` ranks (cosine distance, the same junk and
    same-camera rules); with ``rerank`` also k-reciprocal re-ranking of the model's main feature."""
    from grl.evaluation import evaluate_ranking, pairwise_distance

    arrays = read_features(path)
    query, gallery = arrays["role"] == "query", arrays["role"] == "gallery"
    ids = [torch.from_numpy(arrays[k][mask]) for k, mask in (("pid", query), ("pid", gallery))]
    ids += [torch.from_numpy(arrays[k][mask]) for k, mask in (("camid", query), ("camid", gallery))]
    metrics = {}
    model_config = Config.from_dict(arrays["meta"]["config"])
    main = model_config.main_feature
    for key in sorted(k for k in arrays if k.startswith(FEATURE_PREFIX)):
        name = key[len(FEATURE_PREFIX) :]
        q, g = torch.from_numpy(arrays[key][query]), torch.from_numpy(arrays[key][gallery])
        dist = pairwise_distance(q, g, metric="cosine")
        metrics[name] = evaluate_ranking(dist, *ids)
        if rerank and name == main:
            from grl.reranking import re_ranking

            with torch_threads(model_config.threads):
                final = re_ranking(dist, pairwise_distance(q, q), pairwise_distance(g, g))
            metrics[f"{name}+rerank"] = evaluate_ranking(final, *ids)
    return {**arrays["meta"], "source": str(path), "metrics": metrics}


def _describe(source, config: Config, target: Config, data) -> dict:
    return {
        "source": str(source),
        "key": config.key(),
        "config": config.to_dict(),
        "dataset": target.dataset,
        "split": target.split,
        "data_root": target.data_root or "(built-in synthetic)",
        "data_version": target.data_version,
        "protocol": dict(getattr(data, "protocol", {}) or {}),
        "test_sampling": target.test_sampling,
    }


# ---- ranked lists ---------------------------------------------------------------------------------------------
# What each gallery item of a ranked list is, for the query (the evaluation protocol's rules, grl.evaluation).
MATCH, WRONG, IGNORED = "match", "wrong", "ignored"


def ranked_lists(
    sources: list[tuple[str, str | Path]],
    queries: list[int] | None = None,
    *,
    random_queries: int = 4,
    seed: int = 0,
    k: int = 5,
    dataset=None,
    data_root=None,
    split=None,
    device: str = "cpu",
) -> list[dict]:
    """For each model of ``sources`` ((label, run folder or model file)) and each query (``queries``: indices into
    the test set's queries, else ``random_queries`` drawn with ``seed``, the same for every model), the top ``k``
    gallery tracklets by the model's main feature, nearest first.

    Items with the query's identity *and* camera, and junk (pid -1), are left in the list but marked ``ignored``:
    the protocol does not count them, and a reader should see them for what they are. Returns one dict per
    (model, query): label, query index, query tracklet, and ``items`` [{tracklet, distance, kind, rank}], rank
    being the item's rank under the protocol (None for ignored items)."""
    from grl.data import load_config_dataset

    loaded = [(label, *load_run(source, device)) for label, source in sources]
    targets = [test_config(config, dataset, data_root, split) for _, config, _ in loaded]
    first = targets[0]
    if any((t.dataset, t.data_root, t.split) != (first.dataset, first.data_root, first.split) for t in targets):
        raise ConfigError("visrank: the models are tested on different sets; give --dataset (and --data-root)")
    data = load_config_dataset(first)
    if queries is None:
        rng = np.random.default_rng(seed)
        queries = sorted(rng.choice(len(data.query), size=min(random_queries, len(data.query)), replace=False).tolist())
    bad = [q for q in queries if not 0 <= q < len(data.query)]
    if bad:
        raise ConfigError(f"--queries {bad}: the {first.dataset} test set has queries 0..{len(data.query) - 1}")
    out = []
    for (label, config, model), target in zip(loaded, targets):
        test = encode_test_set(model, data, target)
        dist = test.distance(target.main_feature)
        for q in queries:
            query = data.query[q]
            order = torch.argsort(dist[q].float(), stable=True).tolist()
            items, rank = [], 0
            for g in order:
                item = data.gallery[g]
                if item.pid == -1 or (item.pid == query.pid and item.camid == query.camid):
                    kind, shown_rank = IGNORED, None
                else:
                    rank += 1
                    kind, shown_rank = (MATCH if item.pid == query.pid else WRONG), rank
                items.append({"tracklet": item, "distance": float(dist[q, g]), "kind": kind, "rank": shown_rank})
                if rank >= k:
                    break
            out.append(
                {"label": label, "query_index": q, "query": query, "items": items, "feature": target.main_feature}
            )
    return out


def clip_thumbnails(tracklet, frames: int = 3, height: int = 64, width: int = 32) -> list[np.ndarray]:
    """``frames`` frames of a tracklet, evenly spaced, as (height, width, 3) uint8 images."""
    from grl.data.datasets import read_frame

    paths = list(tracklet.frames)
    picks = np.linspace(0, len(paths) - 1, num=min(frames, len(paths))).round().astype(int)
    return [np.asarray(read_frame(paths[i]).resize((width, height))) for i in picks]


def complete_evaluation(config: Config, out_dir, dataset=None) -> dict | None:
    """The finished run's result, with the evaluations ``config`` asks for that it lacks added.

    Re-ranking (``config.rerank``) is evaluation only, so it is not part of a run's key: a run
    finished before it was asked for gets it here, from its saved model, without retraining.
    None when the run is not finished.
    """
    from grl.experiments import load_result

    out_dir = Path(out_dir)
    result = load_result(out_dir, config.key())
    wanted = f"{config.main_feature}+rerank"
    if result is None or not config.rerank or wanted in result["metrics"]:
        return result
    if dataset is None:
        from grl.data import load_config_dataset

        dataset = load_config_dataset(config)
    with distributed.main_first():  # evaluation once, by rank 0; the others then read its result
        if not distributed.is_main():
            return load_result(out_dir, config.key())
        try:
            _, model = load_run(out_dir)
        except (FileNotFoundError, ValueError) as exc:  # a result without its model: nothing to evaluate
            print(f"warning: cannot add {wanted} to {run_folder.result(out_dir)}: {exc}", file=sys.stderr)
            return result
        with torch_threads(config.threads):
            result["metrics"][wanted] = evaluate_model(model, dataset, config)[wanted]
        atomic_write_json(run_folder.result(out_dir), result)
    return result


def study_ranked_lists(runs, dataset: str = "mars", queries: int = 4, k: int = 5, seed: int = 0) -> list | None:
    """:func:`ranked_lists` of a study's GRL and Baseline runs (the first seed's, split 0) on the same ``queries``
    random queries of ``dataset``; None when either run is not done or lacks its model."""
    first = min((r.seed for r in runs), default=0)
    pair = {
        r.experiment: r
        for r in runs
        if r.dataset == dataset
        and r.split == 0
        and r.seed == first
        and r.experiment in ("grl", "baseline")
        and r.is_done()
        and run_folder.has_model(r.run_dir)  # results copied without their models have no features to rank
    }
    if len(pair) < 2:
        return None
    sources = [("GRL", pair["grl"].run_dir), ("Baseline", pair["baseline"].run_dir)]
    return ranked_lists(sources, random_queries=queries, k=k, seed=seed)
