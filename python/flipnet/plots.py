"""Training curves as PNG pictures (matplotlib, the optional extra ``flipnet[plot]``).

    flipnet.plots.plot(history, "curve.png")        # a History of Model.fit / DeviceModel.fit
    flipnet.plots.plot(flipnet.load("m.flip"), "curve.png")   # the history a model file keeps

Two panels over training samples: above, the running training accuracy (of each window of
:mod:`flipnet.curve`, or of each epoch) and the validation / test accuracy where it was
measured; below, the weights changed per layer in each window (a log scale above 1). A model file
holds one curve per training session (host fits and device runs, ``training_log``); they are
drawn one after the other, a dotted line where a session begins.

CLI: ``--plot PATH.png`` on ``flipnet train``, ``flipnet device train`` and ``flipnet demo``;
``flipnet plot MODEL [-o PATH.png]``.
"""

import os

from .errors import ArgumentError, FlipnetError

__all__ = ["plot", "series", "pyplot", "PlotError"]


class PlotError(FlipnetError):
    """Plotting is not possible: matplotlib missing, or nothing to draw."""


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend; :class:`PlotError` saying how to install
    it when it is missing."""
    try:
        import matplotlib
    except ImportError:
        raise PlotError("plots need matplotlib: pip install \"flipnet[plot]\" (or pip install "
                        "matplotlib)") from None
    matplotlib.use("Agg", force=True)  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def _points_of_epochs(epochs, start=0):
    """Curve-like points from per-epoch records (train_acc, val_acc, changes, samples)."""
    pts, seen = [], start
    for e in epochs:
        seen += int(e.get("samples") or 0)
        pts.append({"samples": seen, "train_accuracy": e.get("train_acc"),
                    "val_accuracy": e.get("val_acc"), "changes": e.get("changes") or []})
    return pts


def series(source):
    """The points to draw and where sessions begin: ``(points, starts, title)``; each point
    ``{"samples" (cumulative), "train_accuracy", "val_accuracy", "changes"}``. ``source``: a
    :class:`flipnet.History`, a :class:`flipnet.Model` (its training log), or a list of
    curve points."""
    from .training import History

    if isinstance(source, History):
        pts = list(source.curve) or _points_of_epochs(source.epochs)
        return [dict(p) for p in pts], [], "training"
    if isinstance(source, (list, tuple)):
        return [dict(p) for p in source], [], "training"
    log = getattr(source, "training_log", None)
    if log is None:
        raise ArgumentError("plot() takes a History, a Model or a list of curve points, not %s"
                            % type(source).__name__)
    pts, starts, offset = [], [], 0
    for sess in log:
        curve = sess.get("curve") or []
        if not curve:
            continue
        starts.append(offset)
        for p in curve:
            q = dict(p)
            q["samples"] = offset + int(p.get("samples") or 0)
            pts.append(q)
        # a device run measures the pulled model at its end (test_acc)
        final = sess.get("test_acc")
        if final is not None and pts and pts[-1].get("val_accuracy") is None:
            pts[-1]["val_accuracy"] = final
        offset = pts[-1]["samples"]
    if not pts:  # a file from before curves: its epochs
        pts = _points_of_epochs(getattr(source, "epoch_log", []) or [])
    title = "%s, %d steps" % (getattr(source, "arch", "model"), getattr(source, "steps", 0))
    return pts, starts[1:], title


def plot(source, path, title=None):
    """Draw the training curve of ``source`` (a History, a Model, or curve points; module
    docstring) into the PNG file ``path``; returns ``path``."""
    pts, starts, auto_title = series(source)
    pts = [p for p in pts if p.get("samples") is not None]
    if not pts:
        raise PlotError("nothing to plot: no training recorded (train first, or the model "
                        "file holds no history)")
    plt = pyplot()
    xs = [p["samples"] for p in pts]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 2]})
    try:
        tr = [(x, p["train_accuracy"]) for x, p in zip(xs, pts)
              if p.get("train_accuracy") is not None]
        if tr:
            ax1.plot(*zip(*tr), "-", color="tab:blue", lw=1.5, marker="." if len(tr) < 40
                     else None, label="training (running)")
        va = [(x, p["val_accuracy"]) for x, p in zip(xs, pts)
              if p.get("val_accuracy") is not None]
        if va:
            ax1.plot(*zip(*va), "o-", color="tab:orange", lw=1.5, label="validation / test")
        ax1.set_ylabel("accuracy")
        ax1.set_ylim(0, 1)
        ax1.grid(alpha=0.3)
        ax1.legend(loc="lower right")
        layers = max((len(p.get("changes") or []) for p in pts), default=0)
        for l in range(layers):
            ch = [(x, p["changes"][l]) for x, p in zip(xs, pts)
                  if len(p.get("changes") or []) > l]
            if ch:
                ax2.plot(*zip(*ch), "-", lw=1.2, label="layer %d" % (l + 1))
        if layers:
            ax2.set_yscale("symlog", linthresh=1)  # logarithmic above 1, 0 drawn as 0
            ax2.legend(loc="upper right", fontsize="small")
        ax2.set_ylabel("weights changed")
        ax2.set_xlabel("training samples")
        ax2.grid(alpha=0.3)
        for s in starts:
            for ax in (ax1, ax2):
                ax.axvline(s, color="gray", ls=":", lw=1)
        fig.suptitle(title or auto_title)
        fig.tight_layout()
        d = os.path.dirname(os.path.abspath(os.fspath(path)))
        os.makedirs(d, exist_ok=True)
        fig.savefig(os.fspath(path), format="png", dpi=100)
    finally:
        plt.close(fig)
    return path
