"""grl.viz on hand-made inputs: the maps point where the activation is, overlays change the
right pixels, Figure 4 has the paper's layout, denormalize inverts ImageNet normalisation."""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from grl import viz  # noqa: E402
from grl.data.transforms import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_activation_map_peaks_where_the_activation_is():
    m = torch.zeros(4, 6, 3)
    m[2, 4, 1] = -5.0  # negative activations count too (squared)
    m[0, 1, 2] = 1.0
    a = viz.activation_map(m)
    assert a.shape == (6, 3)
    assert np.unravel_index(a.argmax(), a.shape) == (4, 1)
    assert a.max() == pytest.approx(1.0) and a.min() == pytest.approx(0.0)
    assert a[1, 2] == pytest.approx(1.0 / 25.0)  # mean of squares, min-max normalised
    assert np.array_equal(viz.activation_map(np.ones((2, 3, 3))), np.zeros((3, 3)))  # constant map
    with pytest.raises(ValueError, match=r"\(C, h, w\)"):
        viz.activation_map(np.ones((3, 3)))


def test_overlay_shape_dtype_and_changed_pixels():
    frame = np.full((8, 8, 3), 128, dtype=np.uint8)
    cold = viz.overlay(frame, np.zeros((2, 2)))
    heat = np.zeros((2, 2))
    heat[0, 0] = 1.0
    hot = viz.overlay(frame, heat)
    assert hot.shape == (8, 8, 3) and hot.dtype == np.uint8
    # bilinear upsampling (align_corners=False): the bottom-right 2x2 only sees heat[1, 1]
    assert np.array_equal(hot[6:, 6:], cold[6:, 6:])
    assert not np.array_equal(hot[:2, :2], cold[:2, :2])
    # jet: 1 is red, 0 is blue
    assert hot[0, 0, 0] > hot[0, 0, 2] and cold[0, 0, 2] > cold[0, 0, 0]
    # alpha=0 keeps the frame; (3, H, W) float frames are accepted
    chw = torch.full((3, 8, 4), 0.5)
    assert np.array_equal(viz.overlay(chw, heat, alpha=0.0), np.full((8, 4, 3), 128, dtype=np.uint8))


def test_denormalize_inverts_imagenet_normalisation():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 3, 5, 4, generator=g)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    torch.testing.assert_close(viz.denormalize((x - mean) / std), x, rtol=0, atol=1e-6)
    # per channel: a normalised zero is the channel mean
    assert viz.denormalize(torch.zeros(3, 1, 1)).flatten().tolist() == pytest.approx(list(IMAGENET_MEAN))
    with pytest.raises(ValueError):
        viz.denormalize(torch.zeros(4, 2, 2))


def test_figure4_layout():
    T, C, h, w = 8, 5, 4, 2
    g = torch.Generator().manual_seed(0)
    fig = viz.figure4(
        torch.rand(T, 3, 16, 8, generator=g),
        torch.rand(T, h, w, generator=g),
        torch.randn(T, C, h, w, generator=g),
        torch.randn(T, C, h, w, generator=g),
        title="tracklet 0",
    )
    axes = np.array(fig.axes[: 4 * T]).reshape(4, T)
    colorbar = fig.axes[4 * T]  # one colour bar for the heat-map rows, labelled, 0 to 1
    assert colorbar.get_ylabel().startswith("0 = low") and colorbar.get_ylim() == pytest.approx((0, 1))
    caption = " ".join(t.get_text() for t in fig.texts)
    assert "min-max over the clip" in caption and "min-max per frame" in caption  # the scaling is stated
    assert [ax.get_title() for ax in axes[0]] == [f"t={t}" for t in range(1, T + 1)]
    assert [ax.get_ylabel() for ax in axes[:, 0]] == list(viz.FIGURE4_ROWS)
    assert fig._suptitle.get_text() == "tracklet 0"
    # row 1 shows the frame itself, the other rows an overlay of the frame's size
    first = axes[0, 0].images[0].get_array()
    assert first.shape == (16, 8, 3)
    assert axes[2, 3].images[0].get_array().shape == (16, 8, 3)
    with pytest.raises(ValueError, match="memory_forward"):
        viz.figure4(torch.rand(T, 3, 16, 8), torch.rand(T, h, w), torch.rand(T, h, w), torch.rand(T, C, h, w))


def test_figure4_memory_row_follows_the_activation():
    # one bright cell in the forward memory at frame 2 -> its overlay is reddest there
    T, h, w = 3, 4, 2
    frames = np.full((T, 16, 8, 3), 128, dtype=np.uint8)
    mf = np.zeros((T, 2, h, w))
    mf[2, 1, 3, 0] = 2.0
    fig = viz.figure4(frames, np.zeros((T, h, w)), mf, np.zeros((T, 2, h, w)))
    img = np.asarray(np.array(fig.axes[: 4 * T]).reshape(4, T)[2, 2].images[0].get_array()).astype(int)
    redness = img[..., 0] - img[..., 2]
    y, x = np.unravel_index(redness.argmax(), redness.shape)
    assert y >= 12 and x < 4  # bottom-left cell of the 4x2 map


def test_maps_summary_is_rounded_and_shaped():
    r = torch.full((8, 4, 2), 0.123456)
    s = viz.maps_summary(r, torch.ones(8, 3, 4, 2), torch.zeros(8, 3, 4, 2))
    assert s["R_t_mean"] == [0.123] * 8
    assert s["memory_shape"] == [8, 3, 4, 2]
    assert s["M1_t_energy"] == [1.0] * 8 and s["M2_t_energy"] == [0.0] * 8
    big = viz.maps_summary(r, torch.full((8, 3, 4, 2), 12345.678), torch.zeros(8, 3, 4, 2))
    assert big["M1_t_energy"][0] == 1.524e8  # 4 significant digits: 12345.678**2 = 152415765.3


def test_show_clip_and_ranked_list():
    clip = torch.zeros(4, 3, 16, 8)  # normalised zeros = ImageNet mean colour
    fig = viz.show_clip(clip)
    assert len(fig.axes) == 4
    px = fig.axes[0].images[0].get_array()[0, 0]
    assert list(px) == [round(m * 255) for m in IMAGENET_MEAN]
    gallery = [torch.rand(3, 16, 8) for _ in range(12)]
    match = [True, False] * 6
    fig = viz.ranked_list(torch.rand(4, 3, 16, 8), gallery, match, k=5, distances=np.linspace(0, 1, 12))
    assert len(fig.axes) == 6
    assert fig.axes[0].get_title() == "query"
    colours = [ax.spines["top"].get_edgecolor() for ax in fig.axes[1:]]
    green, red = matplotlib.colors.to_rgba("#2ca02c"), matplotlib.colors.to_rgba("#d62728")
    assert colours == [green, red, green, red, green]


def test_plot_training_curves_from_jsonl(tmp_path):
    # the trainer's record: losses, lr, timings, counters and nested evaluation numbers
    for run, offset in (("a", 0.0), ("b", 1.0)):
        d = tmp_path / run
        d.mkdir()
        lines = [
            {
                "epoch": e,
                "steps": 4,
                "loss": 3.0 - e + offset,
                "loss_video_oim": 1.0 / e,
                "loss_frame_oim": 2.0 / e,
                "lr": 0.05,
                "train_time_s": 0.5,
                "clips_per_s": 9.0,
                "eval": {"h+l": {"mAP": 10.0 * e, "rank1": 20.0 + e, "rank5": 30.0}},
            }
            for e in (1, 2, 3)
        ]
        (d / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    fig = viz.plot_training_curves([tmp_path / "a" / "metrics.jsonl", tmp_path / "b"])
    axes = [ax for ax in fig.axes if ax.get_visible()]
    # one panel per term; the constant learning rate gets none
    assert [ax.get_title() for ax in axes] == [
        "loss",
        "loss_video_oim",
        "loss_frame_oim",
        "eval.h+l.mAP",
        "eval.h+l.rank1",
    ]
    assert [ax.get_ylabel() for ax in axes] == ["loss", "loss", "loss", "%", "%"]
    assert all(ax.get_xlabel() == "epoch" for ax in axes)
    assert len(axes[0].lines) == 2
    assert list(axes[0].lines[1].get_ydata()) == [3.0, 2.0, 1.0]
    # no headline columns: every numeric column that is not a timing / counter
    fig = viz.plot_training_curves(pd.DataFrame({"step": [1, 2], "acc": [0.1, 0.2], "time_s": [1.0, 2.0]}))
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["acc"]


def test_curves_leave_out_duplicates_constants_and_single_points():
    # the Baseline: its total loss is its one term; an evaluation logged once is a point, not a curve
    df = pd.DataFrame(
        {
            "epoch": [1, 2, 3],
            "loss": [3.0, 2.0, 1.5],
            "loss_video_oim": [3.0, 2.0, 1.5],
            "lr": [0.1, 0.1, 0.1],
            "eval.g.mAP": [None, None, 12.0],
        }
    )
    assert viz.curve_keys(df, exclude={"epoch"}) == ["loss_video_oim"]
    with pytest.raises(ValueError, match="no curve"):
        viz.plot_training_curves(df.drop(columns=["loss", "loss_video_oim"]))


def test_ablation_differences_show_ours_beside_the_papers_on_one_axis():
    df = pd.DataFrame(
        {
            "table": [3, 4],
            "row": ["- Memory Block", "GRL (T=4)"],
            "vs": ["GRL", "GRL"],
            "dataset": ["mars", "mars"],
            "metric": ["mAP", "mAP"],
            "paper_delta": [-0.6, -1.8],
            "ours_delta": [1.5, -3.0],
            "low": [-0.5, -4.0],
            "high": [3.5, -2.0],
            "n": [3, 3],
            "verdict": ["inconclusive", "agrees"],
            "differences": [(0.0, 1.5, 3.0), (-3.5, -3.0, -2.5)],
        }
    )
    fig = viz.plot_ablation_differences(df)
    ax = fig.axes[0]
    ticks = dict(zip([t.get_text() for t in ax.get_yticklabels()], ax.get_yticks()))
    top = {label: ax.transData.transform((0, y))[1] for label, y in ticks.items()}  # display height
    assert top["T3 MARS: - Memory Block  vs  GRL  (n=3)"] > top["T4 MARS: GRL (T=4)  vs  GRL  (n=3)"]  # table order
    from matplotlib.collections import PathCollection

    strips = [c.get_offsets() for c in ax.collections[:-1] if isinstance(c, PathCollection)]
    seeds = sorted(x for offsets in strips for x in offsets[:, 0].tolist())
    assert seeds == pytest.approx([-3.5, -3.0, -2.5, 0.0, 1.5, 3.0])  # every per-seed difference, beside its mean
    crosses = ax.collections[-1].get_offsets()
    assert sorted(crosses[:, 0].tolist()) == pytest.approx([-1.8, -0.6])  # the paper's differences
    dots = sorted(line.get_xdata()[0] for line in ax.lines if line.get_marker() == "o")
    assert dots == pytest.approx([-3.0, 1.5])  # ours
    assert ax.get_legend() is not None and ax.get_legend().get_bbox_to_anchor().x0 >= ax.get_window_extent().x1
    with pytest.raises(ValueError, match="missing column"):
        viz.plot_ablation_differences(df.drop(columns="paper_delta"))


def test_the_overview_puts_each_comparison_on_one_line_across_the_metric_panels():
    df = pd.DataFrame(
        {
            "table": [2, 2, 3],
            "row": ["+TRL (F^l+F^h)", "+TRL (F^l+F^h)", "- Memory Block"],
            "vs": ["Baseline (F^g)", "Baseline (F^g)", "GRL"],
            "dataset": ["mars", "ilidsvid", "mars"],
            "metric": ["rank1", "rank1", "mAP"],
            "paper_delta": [2.5, 3.3, -0.6],
            "ours_delta": [1.0, 8.0, -2.0],
            "low": [0.0, 6.0, -3.0],
            "high": [2.0, 10.0, -1.0],
            "n": [3, 30, 3],
            "verdict": ["agrees", "agrees", "agrees"],
            "differences": [(0.5, 1.0, 1.5), (7.0, 8.0, 9.0), (-2.5, -2.0, -1.5)],
        }
    )
    fig = viz.plot_comparisons_overview(df)
    left, right = fig.axes[:2]
    assert (left.get_title(), right.get_title()) == ("mAP", "Rank-1")
    labels = [t.get_text() for t in left.get_yticklabels()]
    assert labels == [
        "T2 MARS: +TRL (F$^{l}$+F$^{h}$)  vs  Baseline (F$^{g}$)  (n=3)",  # superscripts, never a caret
        "T2 iLIDS-VID: +TRL (F$^{l}$+F$^{h}$)  vs  Baseline (F$^{g}$)  (n=30)",
        "T3 MARS: - Memory Block  vs  GRL  (n=3)",
    ]

    def dots(ax):  # (x, line) of our means
        found = sorted((line.get_xdata()[0], line.get_ydata()[0]) for line in ax.lines if line.get_marker() == "o")
        return [v for point in found for v in point]

    assert dots(left) == pytest.approx([-2.0, 2.0])  # the one mAP comparison, on its own line (the third)
    assert dots(right) == pytest.approx([1.0, 0.0, 8.0, 1.0])  # the Rank-1 ones on lines one and two
    crosses = sorted(map(tuple, right.collections[-1].get_offsets().tolist()))
    assert [v for point in crosses for v in point] == pytest.approx([2.5, 0.0, 3.3, 1.0])  # the paper's, same lines
    with pytest.raises(ValueError, match="no comparison"):
        viz.plot_comparisons_overview(df.iloc[:0])


def _metrics_run(folder, losses, evals, steps=5):
    folder.mkdir(parents=True)
    lines = []
    for epoch, (loss, ev) in enumerate(zip(losses, evals), start=1):
        record = {"epoch": epoch, "steps": steps, "loss": loss, "loss_video_oim": loss / 2, "lr": 0.1}
        if ev is not None:
            record["eval"] = {"h+l": {"mAP": ev, "rank1": ev + 1}, "l": {"mAP": 0.0, "rank1": 0.0}}
        lines.append(json.dumps(record))
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_learning_curves_frame_reads_every_loss_term_and_the_main_feature_by_step(tmp_path):
    a = _metrics_run(tmp_path / "a", [4.0, 3.0, 2.0], [None, 50.0, 60.0])
    long = viz.learning_curves_frame([("GRL", 0, a, "h+l")])
    loss = long[long.quantity == "loss"]
    assert list(loss.step) == [5, 10, 15] and list(loss.value) == [4.0, 3.0, 2.0]  # step = epoch x steps per epoch
    assert list(long[long.quantity == "loss_video_oim"].value) == [2.0, 1.5, 1.0]
    assert list(long[long.quantity == "mAP"].value) == [50.0, 60.0]  # the main feature only, where evaluated
    assert set(long.quantity) == {"loss", "loss_video_oim", "mAP", "rank1"}  # not lr, not the other feature


def test_learning_curves_have_a_facet_per_quantity_with_two_steps_and_a_band_over_seeds(tmp_path):
    runs = [("GRL", s, _metrics_run(tmp_path / f"g{s}", [4.0 + s, 3.0, 2.0 - s / 2], [None, None, 60.0]), "h+l")
            for s in range(3)]  # fmt: skip
    runs.append(("Baseline", 0, _metrics_run(tmp_path / "b0", [5.0, 4.0, 3.0], [None, None, 55.0]), "g"))
    fig = viz.plot_learning_curves(viz.learning_curves_frame(runs), title="t")
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    # the evaluations happened once (the last epoch): a lone point is no curve, so no mAP / Rank-1 facet
    assert titles == [viz.QUANTITY_NAMES["loss"], viz.QUANTITY_NAMES["loss_video_oim"]]
    total = fig.axes[0]
    grl_line = next(line for line in total.get_lines() if len(line.get_xdata()) == 3 and line.get_ydata()[0] == 5.0)
    assert list(grl_line.get_xdata()) == [5, 10, 15] and list(grl_line.get_ydata()) == [5.0, 3.0, 1.5]  # seed mean
    assert total.collections, "a band of ±1 SD over the seeds"
    with pytest.raises(ValueError, match="two or more evaluated steps"):
        viz.plot_learning_curves(viz.learning_curves_frame([("GRL", 0, tmp_path / "g0", "h+l")]).head(1))
    plt.close("all")
