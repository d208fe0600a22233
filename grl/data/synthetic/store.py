"""The generated-dataset store: where datasets live, their manifest and version, and generation itself.

A dataset is generated into a temporary sibling folder that is renamed into place once
``manifest.json`` (written last) is there, so an interrupted run leaves no half-dataset behind.
The manifest records the request (generator, version, name, seed, sizes): a root whose manifest
matches is reused as is, and :func:`data_version` is a hash of the same request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from grl.data.synthetic.sizes import check_name, resolve_sizes
from grl.data.synthetic.writers import FORMATS, WRITERS
from grl.paths import data_dir
from grl.utils import atomic_write_json, fault_point

log = logging.getLogger(__name__)


def _request(name: str, seed: int, sizes: dict) -> dict:
    """What is asked of the generator: recorded in the manifest, and hashed by :func:`data_version`."""
    from grl.data.synthetic import version  # read now, not at import: a bumped version takes effect at once

    return {
        "generator": version.GENERATOR,
        "version": version.GENERATOR_VERSION,
        "name": name,
        "seed": int(seed),
        "sizes": sizes,
    }


def data_version(name: str, seed: int = 0, **sizes) -> str:
    """A short id of what ``generate(name, ..., seed, **sizes)`` writes with this generator version.

    Runs on synthetic data carry it in their configuration (``Config.data_version``), so a
    regenerated dataset never passes for the one an old result was measured on.
    """
    request = _request(name, seed, resolve_sizes(name, **sizes))
    digest = hashlib.sha1(json.dumps(request, sort_keys=True).encode()).hexdigest()[:10]
    return f"synthetic-v{request['version']}-{digest}"


def read_manifest(root: str | os.PathLike) -> dict | None:
    """The manifest of a generated dataset at ``root``, or None when there is none (or it is unreadable)."""
    try:
        return json.loads((Path(root) / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


def generate(
    name: str, root: str | os.PathLike, seed: int = 0, *, overwrite: bool = False, progress: bool | None = None, **sizes
) -> Path:
    """Generate synthetic dataset ``name`` into ``root`` (skipped when ``root`` already holds it).

    ``sizes`` override :data:`DEFAULT_SIZES` [name]. A non-empty ``root`` holding anything else
    raises ValueError, unless ``overwrite=True`` and ``root`` holds a (different) generated dataset,
    which is then replaced. Files are built in a temporary sibling folder and renamed into place.
    """
    sizes = resolve_sizes(name, **sizes)
    root = Path(root).expanduser()
    request = _request(name, seed, sizes)
    existing = read_manifest(root)
    if existing is not None and {k: existing.get(k) for k in request} == request:
        return root
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            what = (
                f"a different synthetic dataset ({existing.get('name')}, seed {existing.get('seed')}, "
                f"version {existing.get('version')})"
                if existing
                else "files that are not a generated dataset"
            )
            raise ValueError(
                f"{root} already holds {what}; asked for {name!r} seed {seed} with sizes {sizes}. "
                "Use another root, or overwrite=True to regenerate."
            )
        if existing is None or existing.get("generator") != request["generator"]:
            raise ValueError(
                f"refusing to overwrite {root}: it has no {request['generator']} manifest.json, "
                "so it may hold data this generator did not write; empty or remove it yourself."
            )
    root.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_partials(root)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.partial-{os.getpid()}-"))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700: the data should be readable like any folder
        t0 = time.perf_counter()
        fault_point("synthetic-writing")
        counts = WRITERS[name](tmp, int(seed), sizes, progress)
        atomic_write_json(tmp / "manifest.json", {**request, "counts": counts, "format": FORMATS[name]})
        log.debug("synthetic %s generated in %.1fs", name, time.perf_counter() - t0)
        if root.exists():
            if read_manifest(root) == read_manifest(tmp):  # a concurrent run finished the same thing first
                shutil.rmtree(tmp)
                return root
            if any(root.iterdir()):
                if not overwrite:  # someone else filled root meanwhile: never delete what we did not check
                    raise ValueError(
                        f"{root} was filled by another process while generating {name!r}; not replacing it"
                    )
                shutil.rmtree(root)  # overwrite=True on a generated dataset (checked above)
            else:
                root.rmdir()
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_dead_partials(root: Path) -> None:
    """Remove the half-written ``.<name>.partial-<pid>-*`` folders of processes that no longer exist
    (a generation killed part-way); those of a live process are another generation in progress."""
    from grl.utils import pid_alive

    for folder in root.parent.glob(f".{root.name}.partial-*"):
        pid = folder.name[len(f".{root.name}.partial-") :].split("-")[0]
        if folder.is_dir() and (not pid.isdigit() or not pid_alive(int(pid))):
            log.info("removing %s, left by a generation that was killed", folder)
            shutil.rmtree(folder, ignore_errors=True)


def default_root(name: str, preset: str = "full") -> Path:
    """Where the built-in dataset ``name`` of size ``preset`` lives (data/synthetic[-<preset>]/<name>)."""
    return data_dir() / ("synthetic" if preset == "full" else f"synthetic-{preset}") / check_name(name)


def ensure_synthetic(name: str, root: str | os.PathLike | None = None, seed: int = 0, **sizes) -> Path:
    """Return the root of synthetic dataset ``name``, generating it first if needed (idempotent).

    A dataset at ``root`` written by an *older version* of this generator for the same request
    is a stale cache and is regenerated; any other mismatch raises (see :func:`generate`).
    """
    root = default_root(name) if root is None else Path(root).expanduser()
    request = _request(name, seed, resolve_sizes(name, **sizes))
    existing = read_manifest(root)
    if existing is not None and {k: existing.get(k) for k in request} == request:
        return root
    # Written by an older version of this generator (its size parameters may differ too, as versions add
    # knobs), or another request in a built-in folder (data/synthetic*/<name>, which this package owns): a stale
    # cache, regenerated in place. Any other folder is never overwritten without being asked.
    from grl.data.synthetic.sizes import SIZE_PRESETS

    builtin = root.resolve() in {default_root(name, preset).resolve() for preset in SIZE_PRESETS}
    stale = (
        existing is not None
        and existing.get("generator") == request["generator"]
        and (existing.get("version") != request["version"] or builtin)
    )
    log.info(
        "generating synthetic %s dataset (seed %d) into %s%s",
        name,
        seed,
        root,
        " (replacing one from an older generator version)" if stale else "",
    )
    t0 = time.perf_counter()
    out = generate(name, root, seed, overwrite=stale, **sizes)
    log.info("synthetic %s ready in %.1fs: %s", name, time.perf_counter() - t0, out)
    return out
