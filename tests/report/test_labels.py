"""Point labels of the WER-vs-latency plot: readable where the Pareto front crowds."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from asr_compress.report.plots import _pad, _place_labels  # noqa: E402


def test_crowded_labels_overlap_neither_each_other_nor_the_points_and_stay_inside():
    # the front of results/methods (2026-11-29): five runs within 15 ms and 5 WER points
    xs = np.array([201.0, 209, 212, 214, 215, 229, 235, 250, 409])
    ys = np.array([28.8, 24.6, 25.2, 24.9, 24.3, 23.4, 25.0, 25.2, 25.1])
    labels = ["LM:layer_drop", "", "baseline", "CTC:lowrank", "enc:int8_dynamic", "dec:prune_structured",
              "", "", ""]
    fig, ax = plt.subplots(figsize=(7.5, 5.0))
    ax.scatter(xs, ys)
    _pad(ax, xs, np.r_[ys, 20, 60])
    _place_labels(ax, xs, ys, labels)
    renderer = fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(a, renderer) for a in ax.texts]
    assert sorted(a.get_text() for a in ax.texts) == sorted(lb for lb in labels if lb)
    frame = ax.get_window_extent(renderer)
    for i, box in enumerate(boxes):
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
        assert not any(box.overlaps(other) for other in boxes[i + 1:])
        assert not any(box.contains(u, v) for u, v in ax.transData.transform(np.column_stack([xs, ys])))
    far = [a for a in ax.texts if a.arrow_patch is not None]  # labels moved away carry a leader line
    assert all(np.hypot(*a.xyann) > 12 for a in far)
    plt.close(fig)
