"""Labelled samples from files: ``.npz``, ``.csv`` and directories of IDX files.

    x, y = flipnet.data.load("motions.csv")                   # label: the last column
    x, y = flipnet.data.load("motions.csv", label="activity")  # or the column named so
    (x, y), (xt, yt) = flipnet.data.load_split("my.npz")       # x, y and x_test, y_test

:func:`load` returns a :class:`Labelled` (it unpacks as ``x, y``; ``classes`` names the
labels of a CSV whose labels are words). What each format holds:

``.npz``  arrays ``x`` (N, ...) and ``y`` (N,) integer labels; optionally ``x_test``,
          ``y_test`` (the test split, ``split="test"``). ``x``: uint8 pixels, int8 values in
          [-127, 127] or floats (features, quantized by the model's input scale).
``.csv``  one sample a line, comma-separated (``;`` and tab are recognized too): the feature
          values and one label column, by default the last, else the one named by ``label``
          (its header name, or its index counted from 0; negative from the end). A first line
          with a field that is not a number (besides the label's) is a header; ``header=True``
          / ``False`` says so instead. Features are read as float64 (so they go through the
          model's input scale); labels are integers ``0..C-1``, or words (then sorted and
          numbered: ``classes``). Empty lines and lines starting with ``#`` are skipped.
a directory of IDX files
          ``<prefix>-images-idx3-ubyte`` / ``<prefix>-labels-idx1-ubyte`` pairs (``.gz`` or
          raw), MNIST's layout: prefix ``train`` for the training split, ``t10k`` or ``test``
          for the test split.

Bad files raise :class:`flipnet.errors.DataFileError` (a ``ValueError``) saying which file,
which line or array, what was wrong and what to do.

How float features become the int8 inputs a model trains on is the model's input scale
(:class:`flipnet.inputs.FeatureScale`, ``Model(..., input_scale="std")``, ``--input-scale``):
fitted on the training data by the first fit, stored in the model file, applied again by
predict, evaluate and on-device training.
"""

import csv
import os

import numpy as np

from .errors import DataFileError

__all__ = ["Labelled", "load", "load_split", "holdout", "FORMATS"]

#: what :func:`load` reads, by suffix (a directory: IDX files)
FORMATS = (".npz", ".csv")
IDX_TRAIN = ("train",)
IDX_TEST = ("t10k", "test")


class Labelled(tuple):
    """``(x, y)`` of a file, with ``classes`` (label names of a CSV whose labels are words,
    else None) and ``source`` (the file and split)."""

    def __new__(cls, x, y, classes=None, source=None):
        self = super().__new__(cls, (x, y))
        self.classes = None if classes is None else list(classes)
        self.source = source
        return self

    x = property(lambda self: self[0])
    y = property(lambda self: self[1])

    def __repr__(self):
        return "Labelled(%d samples of shape %s, %d classes, from %s)" % (
            len(self[0]), self[0].shape[1:], int(self[1].max()) + 1 if len(self[1]) else 0,
            self.source)


def load(path, label=None, header=None, split="train", classes=None):
    """The labelled samples in ``path`` (module docstring) as a :class:`Labelled` ``(x, y)``.

    ``split``: ``"train"`` or ``"test"`` (an ``.npz``'s ``x_test`` / ``y_test``, an IDX
    directory's ``t10k`` files; a CSV file is one split, read whatever ``split`` says).
    ``label``, ``header``: for CSV files (module docstring). ``classes``: the label words of
    the training file, so that a test CSV numbers its words the same way."""
    if split not in ("train", "test"):
        raise DataFileError("split must be 'train' or 'test', got %r" % (split,))
    path = os.fspath(path)
    if os.path.isdir(path):
        return _check(_load_idx_dir(path, split), path)
    if not os.path.exists(path):
        raise DataFileError("%s: no such file or directory (give a .npz or .csv file, or a "
                            "directory of IDX files)" % path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        out = _load_npz(path, split)
    elif ext == ".csv" or ext in (".tsv", ".txt"):
        out = _load_csv(path, label, header, classes)
    else:
        raise DataFileError("%s: unknown data file type %r; flipnet reads .npz (arrays x, y), "
                            ".csv (features and a label column) and directories of IDX files"
                            % (path, ext or "(none)"))
    return _check(out, path)


def has_split(path, split="test"):
    """Whether ``path`` holds a ``split`` of its own (an .npz with x_test, an IDX directory
    with test files); a CSV file never does."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return _idx_pair(path, IDX_TEST if split == "test" else IDX_TRAIN) is not None
    if path.lower().endswith(".npz") and os.path.isfile(path):
        try:
            with np.load(path, allow_pickle=False) as z:
                return ("x_test" in z.files and "y_test" in z.files) if split == "test" else True
        except (OSError, ValueError):
            return False
    return split == "train"


def load_split(path, test=None, label=None, header=None, holdout_fraction=0.2, seed=0):
    """``((x, y), (x_test, y_test))`` for training and testing: the training samples of
    ``path``; the test samples of ``test`` (another file) if given, else ``path``'s own test
    split (an .npz's ``x_test``, an IDX directory's ``t10k``), else the last
    ``holdout_fraction`` of ``path``'s samples after a shuffle seeded with ``seed``
    (:func:`holdout`; the training part is the rest). Both are :class:`Labelled`."""
    train = load(path, label, header, "train")
    if test is not None:
        tst = load(test, label, header, "train" if not has_split(test, "test") else "test",
                   classes=train.classes)
        return train, tst
    if has_split(path, "test"):
        return train, load(path, label, header, "test", classes=train.classes)
    return holdout(train, holdout_fraction, seed)


def holdout(data, fraction=0.2, seed=0):
    """``(train, test)``: ``data`` (a :class:`Labelled`) shuffled with ``seed``, the last
    ``fraction`` of it (at least one sample) the test part."""
    x, y = data
    n = len(x)
    if not 0.0 < fraction < 1.0:
        raise DataFileError("the held-out fraction must be in (0, 1), got %r" % (fraction,))
    n_test = max(1, int(round(n * fraction)))
    if n - n_test < 1:
        raise DataFileError("%s has %d samples: too few to hold %d out for testing; give test "
                            "data (--test-data)" % (getattr(data, "source", "the data"), n,
                                                    n_test))
    order = np.random.default_rng(seed).permutation(n)
    tr, te = np.sort(order[:n - n_test]), np.sort(order[n - n_test:])
    src = getattr(data, "source", None)
    cls = getattr(data, "classes", None)
    return (Labelled(x[tr], y[tr], cls, "%s (%d held in)" % (src, len(tr))),
            Labelled(x[te], y[te], cls, "%s (%d held out)" % (src, len(te))))


# ---- formats ---------------------------------------------------------------------------------
def _load_npz(path, split):
    kx, ky = ("x", "y") if split == "train" else ("x_test", "y_test")
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataFileError("%s: not a readable .npz file (%s); write one with "
                            "numpy.savez(path, x=..., y=...)" % (path, exc)) from None
    with z:
        missing = [k for k in (kx, ky) if k not in z.files]
        if missing:
            raise DataFileError("%s: no array %s (it holds %s); an .npz for flipnet holds x "
                                "(samples) and y (labels)%s"
                                % (path, " or ".join(repr(k) for k in missing),
                                   ", ".join(repr(k) for k in z.files) or "nothing",
                                   ", and x_test, y_test for a test split"
                                   if split == "test" else ""))
        try:
            x, y = z[kx], z[ky]
        except ValueError as exc:  # object arrays (pickles) are refused
            raise DataFileError("%s: %s cannot be read without pickle (%s); save plain "
                                "numeric arrays" % (path, kx, exc)) from None
    return Labelled(x, _labels(y, "%s: array %r" % (path, ky)), None, "%s (%s)" % (path, split))


def _sniff(first_line):
    for d in (",", ";", "\t"):
        if d in first_line:
            return d
    return ","


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _load_csv(path, label, header, classes):
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            lines = [(i + 1, ln) for i, ln in enumerate(f.read().splitlines())
                     if ln.strip() and not ln.lstrip().startswith("#")]
    except UnicodeDecodeError as exc:
        raise DataFileError("%s: not a text file (%s); a CSV file holds one sample a line, "
                            "numbers separated by commas" % (path, exc)) from None
    if not lines:
        raise DataFileError("%s: empty (no samples); a CSV file holds one sample a line: the "
                            "features, then the label" % path)
    delim = _sniff(lines[0][1])
    rows = [(no, [c.strip() for c in r]) for (no, _), r in
            zip(lines, csv.reader([ln for _, ln in lines], delimiter=delim))]
    width = len(rows[0][1])
    if width < 2:
        raise DataFileError("%s: line %d has %d column; a CSV file needs feature columns and "
                            "a label column (separated by %r)" % (path, rows[0][0], width, delim))
    names = None
    first = rows[0][1]
    col = _label_column(label, width, first, path)
    if header is None:  # a header: a field that is not a number, outside the label column
        header = any(not _is_number(c) for j, c in enumerate(first) if j != col) or (
            isinstance(label, str) and not _is_number(label) and label in first)
    if header:
        names = first
        rows = rows[1:]
        if not rows:
            raise DataFileError("%s: only a header line, no samples" % path)
    col = _label_column(label, width, names, path)
    x = np.empty((len(rows), width - 1), dtype=np.float64)
    words = []
    for i, (no, r) in enumerate(rows):
        if len(r) != width:
            raise DataFileError("%s: line %d has %d columns, the %s %d; every line needs the "
                                "same columns" % (path, no, len(r), "header has" if names
                                                  else "first line has", width))
        feats = r[:col] + r[col + 1:]
        try:
            x[i] = [float(v) for v in feats]
        except ValueError:
            bad = next(j for j, v in enumerate(feats) if not _is_number(v))
            j = bad if bad < col else bad + 1
            raise DataFileError("%s: line %d, column %d%s: %r is not a number; features must "
                                "be numbers (is the label column %s the right one? name it "
                                "with label=/--label)"
                                % (path, no, j + 1, " (%s)" % names[j] if names else "",
                                   r[j], "%d" % (col + 1))) from None
        words.append(r[col])
    if not np.all(np.isfinite(x)):
        i, j = np.argwhere(~np.isfinite(x))[0]
        raise DataFileError("%s: line %d has a value that is not a finite number (%r): fill or "
                            "drop missing values first" % (path, rows[i][0], x[i, j]))
    y, cls = _label_words(words, classes, path)
    return Labelled(x, y, cls, path)


def _label_column(label, width, names, path):
    if label is None:
        return width - 1
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
        j = int(label) + (width if label < 0 else 0)
        if not 0 <= j < width:
            raise DataFileError("%s: label column %d, but lines have %d columns (0..%d)"
                                % (path, label, width, width - 1))
        return j
    text = str(label)
    if names is not None and text in names:
        return list(names).index(text)
    try:
        return _label_column(int(text), width, names, path)
    except ValueError:
        pass
    if names is None:  # asked before the header is known: decided on the header line
        return width - 1
    raise DataFileError("%s: no column named %r (columns: %s); name the label column or give "
                        "its index" % (path, text, ", ".join(names)))


def _label_words(words, classes, path):
    """Labels as int64 class indices, and the class names when the labels are words."""
    if classes is None and all(w.lstrip("-").isdigit() for w in words):
        return _labels(np.array([int(w) for w in words]), "%s: the labels" % path), None
    if classes is None:
        if all(_is_number(w) for w in words):
            bad = next(w for w in words if not w.lstrip("-").isdigit())
            raise DataFileError("%s: label %r is a number but not a class index; labels are "
                                "integers 0..C-1 or words (is the label column the right "
                                "one? name it with label=/--label)" % (path, bad))
        classes = sorted(set(words))
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(w for w in words if w not in index))
    if unknown:
        raise DataFileError("%s: label(s) %s are not among the training data's classes (%s)"
                            % (path, ", ".join(map(repr, unknown[:5])), ", ".join(classes)))
    return np.array([index[w] for w in words], dtype=np.int64), list(classes)


def _labels(y, what):
    y = np.asarray(y)
    if y.ndim != 1:
        y = y.reshape(-1) if y.ndim == 2 and 1 in y.shape else y
    if y.ndim != 1:
        raise DataFileError("%s has shape %s; labels are one class index per sample, shape "
                            "(N,)" % (what, y.shape))
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise DataFileError("%s holds non-integer values; labels are class indices "
                                "0..C-1" % what)
        y = y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.integer):
        raise DataFileError("%s has dtype %s; labels are integer class indices 0..C-1"
                            % (what, y.dtype))
    if y.size and int(y.min()) < 0:
        raise DataFileError("%s holds %d; labels are class indices 0..C-1" % (what, int(y.min())))
    return y.astype(np.int64)


def _idx_file(directory, prefix, what):
    for stem in ("%s-%s-idx%d-ubyte" % (prefix, what, 3 if what == "images" else 1),):
        for cand in (stem + ".gz", stem):
            p = os.path.join(directory, cand)
            if os.path.isfile(p):
                return p
    return None


def _idx_pair(directory, prefixes):
    for prefix in prefixes:
        xi, yi = _idx_file(directory, prefix, "images"), _idx_file(directory, prefix, "labels")
        if xi and yi:
            return xi, yi
    return None


def _load_idx_dir(directory, split):
    from .datasets import read_idx

    prefixes = IDX_TRAIN if split == "train" else IDX_TEST
    pair = _idx_pair(directory, prefixes)
    if pair is None:
        present = sorted(os.listdir(directory))
        raise DataFileError("%s: no %s split: expected %s-images-idx3-ubyte[.gz] and "
                            "%s-labels-idx1-ubyte[.gz] (found: %s)"
                            % (directory, split, prefixes[0], prefixes[0],
                               ", ".join(present[:10]) or "nothing"))
    x, y = read_idx(pair[0]), read_idx(pair[1])
    return Labelled(x, _labels(y, pair[1]), None, "%s (%s)" % (directory, split))


def _check(data, path):
    x, y = data
    if x.ndim < 2:
        raise DataFileError("%s: the samples have shape %s; they need a leading sample axis, "
                            "shape (N, features) or (N, rows, cols)" % (path, x.shape))
    if len(x) != len(y):
        raise DataFileError("%s: %d samples but %d labels" % (path, len(x), len(y)))
    if len(x) == 0:
        raise DataFileError("%s: no samples" % path)
    if not (x.dtype in (np.uint8, np.int8) or np.issubdtype(x.dtype, np.floating)
            or np.issubdtype(x.dtype, np.integer)):
        raise DataFileError("%s: samples of dtype %s; flipnet takes uint8 pixels, int8 values "
                            "or float features" % (path, x.dtype))
    if np.issubdtype(x.dtype, np.integer) and x.dtype not in (np.uint8, np.int8):
        # wider integers (e.g. CSV-like int64 arrays): features, through the input scale
        x = x.astype(np.float64)
        data = Labelled(x, y, getattr(data, "classes", None), getattr(data, "source", path))
    return data
