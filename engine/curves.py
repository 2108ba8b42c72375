"""One class against the rest: its ROC curve and its reliability (calibration) curve.

Both equal scikit-learn's (``sklearn.metrics.roc_curve`` with ``drop_intermediate=True``,
``sklearn.calibration.calibration_curve`` with ``strategy="uniform"``) and cost one sort
of the scores, O(m log m): no loop over rows, so a million rows take a fraction of a second.

JSON has no infinity and no NaN, so two values change form on the way out (``to_json``):
the first threshold, scikit-learn's ``inf``, is ``None``; a rate whose denominator is
zero (no positive rows, or no negative rows), all NaN in scikit-learn, is ``None`` whole.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RocCurve:
    """The ROC curve of scores against a positive/negative split, as counts.

    Point i counts the rows scoring at least ``thresholds[i]``; point 0 is above every
    score (threshold inf: no row called positive), the last point is the lowest score
    (every row called positive). Points collinear with their neighbours are dropped, as
    scikit-learn's ``drop_intermediate=True`` drops them.
    """

    fps: np.ndarray  # (n,) int64: negative rows scoring >= the threshold, rising from 0
    tps: np.ndarray  # (n,) int64: positive rows scoring >= the threshold, rising from 0
    thresholds: np.ndarray  # (n,) float64: inf, then distinct scores, descending

    @classmethod
    def of(cls, positive: np.ndarray, score: np.ndarray) -> "RocCurve":
        """The curve of score (m,) float64 for rows whose positive (m,) bool is True."""
        ascending = np.sort(score)  # (m,)
        first_of_value = np.flatnonzero(np.r_[True, ascending[1:] != ascending[:-1]])
        values = ascending[first_of_value]  # (d,) the distinct scores, ascending
        # Rows scoring >= a value: all rows after its first occurrence in the sorted scores.
        at_least = score.size - first_of_value  # (d,)
        positive_scores = np.sort(score[positive])
        tps = positive_scores.size - np.searchsorted(positive_scores, values, side="left")
        fps = at_least - tps
        fps, tps, thresholds = fps[::-1], tps[::-1], values[::-1]  # descending thresholds
        if fps.size > 2:
            # A point is kept where the curve bends: a nonzero second difference.
            bends = (np.diff(fps, 2) != 0) | (np.diff(tps, 2) != 0)  # (d - 2,)
            keep = np.r_[True, bends, True]
            fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
        return cls(
            fps=np.r_[0, fps].astype(np.int64),
            tps=np.r_[0, tps].astype(np.int64),
            thresholds=np.r_[np.inf, thresholds],
        )

    @property
    def fpr(self) -> np.ndarray | None:
        """False-positive rates (n,); None when no row is negative."""
        return None if self.fps[-1] == 0 else self.fps / self.fps[-1]

    @property
    def tpr(self) -> np.ndarray | None:
        """True-positive rates (n,); None when no row is positive."""
        return None if self.tps[-1] == 0 else self.tps / self.tps[-1]

    def auc(self) -> float | None:
        """The area under the whole curve (trapezoids, as sklearn's ``auc``); None when
        only one side (positive or negative) has rows."""
        fpr, tpr = self.fpr, self.tpr
        if fpr is None or tpr is None:
            return None
        return float(np.trapezoid(tpr, fpr))

    def thinned(self, max_points: int) -> "RocCurve":
        """max_points (>= 2) of the curve's points when it has more, in order: the first,
        the last, and those nearest to points evenly spaced along the curve's length (arc
        length in the unit square). Spacing by length, not by index, keeps long straight
        runs and tight corners alike: indices crowd where many thresholds sit close
        together. Where two targets would take the same point (around a long segment), the
        later takes the next point along, so the whole budget is used."""
        n = self.fps.size
        if n <= max_points:
            return self
        # Counts over max(total, 1): a side with no rows stays at 0 and adds no length.
        x = self.fps / max(int(self.fps[-1]), 1)
        y = self.tps / max(int(self.tps[-1]), 1)
        along = np.r_[0.0, np.cumsum(np.hypot(np.diff(x), np.diff(y)))]  # (n,) rising
        targets = np.linspace(0.0, along[-1], max_points)  # (max_points,)
        after = np.clip(np.searchsorted(along, targets), 1, n - 1)  # first point at or past
        nearest = after - (targets - along[after - 1] < along[after] - targets)  # (max_points,)
        # Distinct indices: index_j = max(nearest_j, index_{j-1} + 1) is a running maximum
        # of nearest_j - j; capping it at n - max_points leaves room for the points after.
        steps = np.arange(max_points)
        # The first target (0) takes point 0 and the last (the whole length) point n - 1.
        kept = np.minimum(np.maximum.accumulate(nearest - steps), n - max_points) + steps
        return RocCurve(self.fps[kept], self.tps[kept], self.thresholds[kept])

    def to_json(self, max_points: int) -> dict[str, Any]:
        """``{"fpr", "tpr", "thresholds"}`` of at most max_points points, JSON-ready:
        the first threshold (inf) is None; an undefined rate is None."""
        curve = self.thinned(max_points)
        fpr, tpr = curve.fpr, curve.tpr
        return {
            "fpr": None if fpr is None else fpr.tolist(),
            "tpr": None if tpr is None else tpr.tolist(),
            "thresholds": [None, *curve.thresholds[1:].tolist()],
        }


def reliability_bins(positive: np.ndarray, score: np.ndarray, n_bins: int) -> list[dict]:
    """The non-empty bins of n_bins uniform bins of score (m,) in [0, 1]:
    ``[{"mean_predicted", "fraction_positive", "count"}]`` in ascending order.

    The bins and their arithmetic are scikit-learn's: edges ``np.linspace(0, 1, n + 1)``
    (so 0.3 is 0.30000000000000004); a score on an inner edge falls in the bin below it,
    0.0 in the first bin and 1.0 in the last. positive (m,) bool marks the positive rows.
    """
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bin_of_row = np.searchsorted(edges[1:-1], score)  # (m,) 0..n_bins-1
    score_sums = np.bincount(bin_of_row, weights=score, minlength=n_bins)
    positive_counts = np.bincount(bin_of_row, weights=positive, minlength=n_bins)
    counts = np.bincount(bin_of_row, minlength=n_bins)
    filled = counts > 0
    return [
        {"mean_predicted": mean, "fraction_positive": fraction, "count": count}
        for mean, fraction, count in zip(
            (score_sums[filled] / counts[filled]).tolist(),
            (positive_counts[filled] / counts[filled]).tolist(),
            counts[filled].tolist(),
            strict=True,
        )
    ]
