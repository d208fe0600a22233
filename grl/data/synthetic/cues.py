"""How often the synthetic sets hold what GRL exploits: intermittent fine cues, occlusion, misalignment, look-alikes.

Everything is re-derived from the generator's own random streams (:mod:`grl.data.synthetic.tracklets` lists the
writers' tracklets with the loader's roles; :func:`plan_tracklet` draws what each frame shows), so no image is
written. A fine cue is intermittent when it is shown in some but not all frames; a look-alike is another identity of
the same pool (train, or test) with the same outfit, told apart in a frame when a cue shown there differs.
``python -m grl.data.synthetic.cues [--dataset mars] [--size full] [--figure PATH]`` prints the table.
"""

from __future__ import annotations

import argparse
import io

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from grl.data.synthetic.appearance import Identity
from grl.data.synthetic.render import TrackletPlan, draw_frame, draw_occluder, plan_tracklet, render_tracklet
from grl.data.synthetic.sizes import DATASETS
from grl.data.synthetic.tracklets import ROLES, tracks

FINE = ("bag", "hat", "shoes")


def outfit(p: Identity) -> tuple:
    """The conspicuous cues: everything but bag, shoes and hat (a plain top's pattern colour is never drawn)."""
    pattern_colour = None if p.pattern == "plain" else p.pattern_colour
    return (p.top, p.bottom, p.pattern, pattern_colour, p.height, p.width, p.skin, p.hair)


def covered(person: Identity, plan: TrackletPlan, i: int) -> float:
    """Fraction of the person's pixels in frame ``i`` under the occluder (0 without one)."""
    if plan.occluder is None or not plan.visible["occluder"][i]:
        return 0.0
    h, w = plan.size
    # A pixel is the person's if drawing over black and over white gives the same colour there.
    black, white = (draw_frame(person, plan, i, np.full((h, w, 3), v, np.uint8)) for v in (0, 255))
    body = (black == white).all(-1)
    mask = Image.new("L", (w, h), 0)
    draw_occluder(ImageDraw.Draw(mask), plan, i, 255, 255)
    return float((body & (np.asarray(mask) > 0)).sum() / max(body.sum(), 1))


def separates(person: Identity, shown: dict[str, bool], other: Identity) -> bool:
    """Whether a frame showing ``person``'s fine cues ``shown`` rules out look-alike ``other`` (a hidden cue rules out no one)."""
    return (
        (shown["bag"] and (other.bag, other.bag_side) != (person.bag, person.bag_side))
        or (shown["hat"] and other.hat != person.hat)
        or (shown["shoes"] and other.shoes != person.shoes)
    )


def facts(name: str, preset: str = "full", seed: int = 0) -> pd.DataFrame:
    """One row per (tracklet, role): its frames, fine-cue / occluder frames, cover, misalignment, look-alikes."""
    ts = tracks(name, preset, seed)
    pools = {"train": [t for t in ts if t.role == "train"], "test": [t for t in ts if t.role != "train"]}
    twins = {}  # look-alikes: other identities of the same pool with the same outfit
    for pool in pools.values():
        people = {t.ident: t.person for t in pool}
        for k, p in people.items():
            twins[k] = [q for j, q in people.items() if j != k and outfit(q) == outfit(p)]
    plans, rows = {}, []
    for t in ts:
        if id(t.rng) not in plans:  # a MARS query shares its gallery twin's stream: draw it once
            plans[id(t.rng)] = plan_tracklet(t.person, t.style, t.length, t.rng, t.style.scale.shape[:2])
        p, T = plans[id(t.rng)], t.length
        owned = {c: c == "shoes" or getattr(t.person, c) is not None for c in FINE}
        shown = [{c: bool(p.visible[c][i]) for c in FINE} for i in range(T)]
        mates = twins[t.ident]
        sep = [all(separates(t.person, s, m) for m in mates) for s in shown]
        pooled = all(any(separates(t.person, s, m) for s in shown) for m in mates)
        cover = [covered(t.person, p, i) for i in range(T)]
        rows.append(
            dict(
                dataset=name, role=t.role, pid=t.pid, cam=t.cam, ident=t.ident, frames=T,
                **{f"{c}_frames": np.flatnonzero(p.visible[c]).tolist() if owned[c] else None for c in FINE},
                occluder_frames=np.flatnonzero(p.visible["occluder"]).tolist(), cover=cover,
                cx_range=float(100 * np.ptp(p.cx) / p.size[1]), feet_range=float(np.ptp(p.feet)), scale_change=float(p.tall.max() / p.tall.min() - 1),
                shared_outfit=bool(mates), separating_frames=int(sum(sep)), separable_pooled=pooled,
            )
        )  # fmt: skip
    return pd.DataFrame(rows)


def intermittent(frames: list[int] | None, length: int) -> bool:
    """A cue visible in some but not all of ``length`` frames (None: the person has no such cue)."""
    return frames is not None and 0 < len(frames) < length


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, role): the percentages and means the question asks for (see the column names)."""

    def one(g: pd.DataFrame) -> pd.Series:
        inter = g.apply(lambda r: any(intermittent(r[f"{c}_frames"], r.frames) for c in FINE), axis=1)
        inter_bh = g.apply(lambda r: any(intermittent(r[f"{c}_frames"], r.frames) for c in ("bag", "hat")), axis=1)
        shown = [
            len(r[f"{c}_frames"]) / r.frames
            for _, r in g.iterrows()
            for c in ("bag", "hat")
            if r[f"{c}_frames"] is not None
        ]
        occ = g.cover.map(lambda c: np.mean(np.array(c) > 0))
        occ_max = g.cover.map(max)
        ids = g.drop_duplicates("ident")
        some = (g.separating_frames > 0) & (g.separating_frames < g.frames)
        return pd.Series({
            "tracklets": len(g), "ids": len(ids), "mean frames": g.frames.mean(),
            "% intermittent fine cue": 100 * inter.mean(), "% intermittent bag/hat": 100 * inter_bh.mean(),
            "mean % frames a carried bag/hat is shown": 100 * np.mean(shown),
            "% occluded (occluder over person)": 100 * (occ > 0).mean(),
            "mean % frames occluded | occl.": 100 * occ[occ > 0].mean(), "mean max cover | occl. (%)": 100 * occ_max[occ > 0].mean(),
            "centre shift range (% W)": g.cx_range.mean(), "feet shift range (px)": g.feet_range.mean(),
            "scale change (%)": 100 * g.scale_change.mean(), "% ids sharing outfit": 100 * ids.shared_outfit.mean(),
            "% look-alike told apart in some frames only": 100 * some[g.shared_outfit].mean(),
            "% look-alike told apart only by pooling": 100 * ((g.separating_frames == 0) & g.separable_pooled)[g.shared_outfit].mean(),
            "% look-alike never told apart": 100 * (~g.separable_pooled)[g.shared_outfit].mean(),
        })  # fmt: skip

    order = df.assign(d=df.dataset.map(DATASETS.index), r=df.role.map(ROLES.index)).sort_values(
        ["d", "r"], kind="stable"
    )
    return order.groupby(["dataset", "role"], sort=False).apply(one, include_groups=False).round(1)


def figure(name: str, path: str, preset: str = "full", rows: int = 4, frames: int = 10, seed: int = 0) -> None:
    """Save a few training tracklets' first frames, exact as written, marking per frame the cues shown and the cover."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ts = [t for t in tracks(name, preset, seed) if t.role == "train" and t.length >= frames]
    chosen = []  # the first ones with a bag or hat and an occluder over the person in the frames shown
    for t in (t for t in ts if t.person.bag or t.person.hat):
        state = t.rng.bit_generator.state
        plan = plan_tracklet(t.person, t.style, t.length, t.rng, t.style.scale.shape[:2])
        t.rng.bit_generator.state = state  # rewound: render_tracklet below draws the same plan again
        cover = [covered(t.person, plan, i) for i in range(frames)]
        if any(cover) and len(chosen) < rows and t.pid not in {c.pid for c, _ in chosen}:
            chosen.append((t, cover))
    fig, axes = plt.subplots(len(chosen), frames, figsize=(frames * 0.9, len(chosen) * 2.1), squeeze=False)
    for row, (t, cover) in enumerate(chosen):
        img, visible = render_tracklet(t.person, t.style, t.length, t.rng, t.style.scale.shape[:2])
        for i, ax in enumerate(axes[row]):
            ax.imshow(img[i]), ax.set_xticks([]), ax.set_yticks([])
            marks = " ".join(c[0].upper() if visible[c][i] else "·" for c in FINE)
            ax.set_title(marks, fontsize=8, family="monospace")
            ax.set_xlabel(f"occl {max(1, round(100 * cover[i]))}%" if cover[i] else "", fontsize=7, color="red")
            for spine in ax.spines.values():
                spine.set(color="red" if cover[i] else "0.7", linewidth=2 if cover[i] else 0.5)
        axes[row][0].set_ylabel(f"id {t.pid} cam{t.cam + 1}", fontsize=8)
    fig.suptitle(
        f"{name} ({preset}): B/H/S = bag / hat / shoes shown in the frame, red = occluder over the person", fontsize=8
    )
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=72)
    plt.close(fig)
    Image.open(buffer).convert("RGB").quantize(128).save(path, optimize=True)  # a palette keeps the PNG small


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m grl.data.synthetic.cues", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=DATASETS, action="append", help="repeatable; default: all three")
    parser.add_argument("--size", default="full", help="size preset (full, small)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figure", help="also save example tracklets of the first dataset to this PNG")
    args = parser.parse_args(argv)
    names = args.dataset or list(DATASETS)
    for name in names:
        table = summary(facts(name, args.size, args.seed)).T
        table.columns = [role for _, role in table.columns]
        print(f"\n### {name} ({args.size} preset, seed {args.seed})\n\n{table.to_markdown()}")
    if args.figure:
        figure(names[0], args.figure, args.size, seed=args.seed)


if __name__ == "__main__":
    main()
