"""Data sets: an IDX reader and MNIST / Fashion-MNIST loaders.

``load_mnist(path=None)`` and ``load_fashion_mnist(path=None)`` return
``((x_train, y_train), (x_test, y_test))``: images uint8 (N, 28, 28), labels uint8 (N,).
The four standard files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each gzipped ``.gz`` or raw) are
looked for, in this order:

1. ``path`` (a directory holding the files, or a ``mnist/`` / ``fashion_mnist/`` folder);
   when given, only there;
2. ``$FLIPNET_DATA`` (a directory holding ``mnist/`` / ``fashion_mnist/``, or the files);
3. ``shared/data/<name>`` in the current directory or any parent of it, then the same from
   the package's own location (a checkout's ``../shared/data``);
4. the user cache, ``$XDG_CACHE_HOME/flipnet/<name>`` or ``~/.cache/flipnet/<name>``;
5. a download into that cache (when ``download=True``, the default) from ``url`` or
   ``$FLIPNET_MNIST_URL`` / ``$FLIPNET_FASHION_MNIST_URL`` (a base URL the file names are
   appended to). Every downloaded file is checked with SHA-256, either of the ``.gz`` as
   stored in ``shared/data`` or of its decompressed content (the canonical IDX bytes), so a
   mirror that re-compressed the files is accepted; on a mismatch the partial file is deleted
   and :class:`flipnet.DownloadError` is raised.

Nothing found and no download possible: :class:`flipnet.DatasetNotFoundError` lists every
place looked at and what to do.
"""

import gzip
import hashlib
import os
import shutil
import struct
import sys
import urllib.error
import urllib.request

import numpy as np

from .errors import DatasetNotFoundError, DownloadError, IDXFormatError
from .files import atomic_path

__all__ = ["read_idx", "load_mnist", "load_fashion_mnist", "load_idx_dataset", "find_dataset",
           "cache_dir", "search_paths", "DATASETS"]

_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# SHA-256 of each file: "gz" of the .gz as kept in ../shared/data/<name>/SHA256SUMS, "raw" of
# the decompressed IDX content (identical to the canonical files).
DATASETS = {
    "mnist": {
        "env": "FLIPNET_MNIST_URL",
        "url": "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "sha256": {
            "train-images-idx3-ubyte": {
                "gz": "db8f937d487057fb14a9f0fbe97f0bc8d311ab41b750d41e1ff37c43b9e55e19",
                "raw": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"},
            "train-labels-idx1-ubyte": {
                "gz": "51fc562b6747b666fbf6e84ce29d43c3cb5f9c388c664d43b33f02095313405a",
                "raw": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"},
            "t10k-images-idx3-ubyte": {
                "gz": "cfeddb84311ecf044fc6a5b0f6ee8a24d265d4e83e388400186eb114082f4209",
                "raw": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"},
            "t10k-labels-idx1-ubyte": {
                "gz": "e41c74e484045d39b462a7790a4af51301bd9b0b24f0154798d713ec68c45920",
                "raw": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
        },
    },
    "fashion_mnist": {
        "env": "FLIPNET_FASHION_MNIST_URL",
        "url": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "sha256": {
            "train-images-idx3-ubyte": {
                "gz": "586471b0ca00aba1d6456bfeaf56ffbcaae7d1762d0cefcee1dccdabeb35142e",
                "raw": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"},
            "train-labels-idx1-ubyte": {
                "gz": "78cc45a86af8a62044c5931d2f17d26375a10dd63f875c366d156d8db0aad7d1",
                "raw": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"},
            "t10k-images-idx3-ubyte": {
                "gz": "dfcc4d9f3ce09d150bb362ddfe362162b4e383dad3d5ffe49d66d74a351b9237",
                "raw": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"},
            "t10k-labels-idx1-ubyte": {
                "gz": "b42bcca6edaae83551c5913a1e52bb5ff59794a6e7bc7deb17cee585b7e13090",
                "raw": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
        },
    },
}

_ALIASES = {"mnist": "mnist", "fashion_mnist": "fashion_mnist", "fashion-mnist": "fashion_mnist",
            "fashion": "fashion_mnist", "fmnist": "fashion_mnist"}


def _canonical(name):
    try:
        return _ALIASES[name.lower()]
    except KeyError:
        raise ValueError("unknown data set %r; known: %s" % (name, ", ".join(DATASETS))) from None


# ---- IDX -------------------------------------------------------------------------------------
def _open_maybe_gz(path):
    with open(path, "rb") as f:
        head = f.read(2)
    if head == b"\x1f\x8b":
        return gzip.open(path, "rb")
    return open(path, "rb")


def parse_idx(data, source="IDX data"):
    """Parse IDX bytes into an array (native byte order); checks magic, dims and size."""
    if len(data) < 4:
        raise IDXFormatError("%s: too short for an IDX header (%d bytes)" % (source, len(data)))
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise IDXFormatError("%s: not an IDX file (magic %s, expected 00 00 <type> <ndim>)"
                             % (source, data[:4].hex()))
    if code not in _IDX_TYPES:
        raise IDXFormatError("%s: unknown IDX element type 0x%02x" % (source, code))
    if ndim == 0:
        raise IDXFormatError("%s: IDX header declares 0 dimensions" % source)
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXFormatError("%s: truncated IDX header (%d dimensions need %d bytes, have %d)"
                             % (source, ndim, header, len(data)))
    dims = struct.unpack(">%dI" % ndim, data[4:header])
    dtype = _IDX_TYPES[code]
    expect = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    have = len(data) - header
    if have != expect:
        raise IDXFormatError(
            "%s: IDX dimensions %s of %s need %d data bytes but the file has %d (%s)"
            % (source, "x".join(map(str, dims)), dtype, expect, have,
               "truncated" if have < expect else "trailing bytes"))
    arr = np.frombuffer(data, dtype=dtype, offset=header, count=expect // dtype.itemsize)
    return arr.reshape(dims).astype(dtype.newbyteorder("="), copy=True)


def read_idx(path):
    """Read an IDX file (gzip-compressed or raw) into a NumPy array."""
    path = os.fspath(path)
    try:
        with _open_maybe_gz(path) as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise IDXFormatError("%s: cannot read (%s)" % (path, exc)) from exc
    return parse_idx(data, path)


# ---- where to look -----------------------------------------------------------------------------
def cache_dir():
    """The user cache: ``$XDG_CACHE_HOME/flipnet`` or ``~/.cache/flipnet``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "flipnet")


def _file_in(directory, stem):
    for cand in (stem + ".gz", stem):
        p = os.path.join(directory, cand)
        if os.path.isfile(p):
            return p
    return None


def _complete(directory):
    """The 4 file paths if all are present in directory, else None."""
    paths = [_file_in(directory, f) for f in FILES]
    return paths if all(paths) else None


def _walk_up(start):
    start = os.path.abspath(start)
    seen = []
    while True:
        seen.append(start)
        parent = os.path.dirname(start)
        if parent == start:
            return seen
        start = parent


def _search_starts():
    """Where the walk up for ``shared/data`` starts: the working directory, then this package."""
    return [os.getcwd(), os.path.dirname(os.path.abspath(__file__))]


def search_paths(name="mnist", path=None):
    """Directories looked at for data set ``name``, in order (see the module docstring)."""
    name = _canonical(name)
    if path is not None:
        path = os.path.abspath(os.path.expanduser(os.fspath(path)))
        return [path, os.path.join(path, name)]
    dirs = []
    env = os.environ.get("FLIPNET_DATA")
    if env:
        env = os.path.abspath(os.path.expanduser(env))
        dirs += [os.path.join(env, name), env]
    for start in _search_starts():
        for d in _walk_up(start):
            cand = os.path.join(d, "shared", "data", name)
            if cand not in dirs:
                dirs.append(cand)
    dirs.append(os.path.join(cache_dir(), name))
    return dirs


def find_dataset(name="mnist", path=None):
    """The directory holding the 4 files of ``name`` (no download), or None."""
    for d in search_paths(name, path):
        if os.path.isdir(d) and _complete(d):
            return d
    return None


# ---- download --------------------------------------------------------------------------------
def _sha256_file(path, decompress=False):
    h = hashlib.sha256()
    opener = gzip.open if decompress else open
    with opener(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download_one(url, dest, sums, timeout):
    print("flipnet: downloading %s" % url, file=sys.stderr)
    with atomic_path(dest) as part:  # kept only when complete and checked
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(part, "wb") as out:
            shutil.copyfileobj(resp, out, 1 << 20)
        ok = _sha256_file(part) == sums["gz"]
        if not ok:
            try:
                ok = _sha256_file(part, decompress=True) == sums["raw"]
            except (OSError, EOFError, gzip.BadGzipFile):
                ok = False
        if not ok:
            raise DownloadError(
                "%s: SHA-256 mismatch (neither the .gz nor its content matches the known "
                "checksum); the partial file was deleted. Check the mirror URL or download the "
                "files by hand." % url)


def download(name="mnist", url=None, directory=None, timeout=60):
    """Download the 4 files of ``name`` into ``directory`` (default: the user cache).

    Returns the directory. Files already present are kept (they were verified when fetched).
    """
    name = _canonical(name)
    info = DATASETS[name]
    base = url or os.environ.get(info["env"]) or info["url"]
    if not base.endswith("/"):
        base += "/"
    directory = directory or os.path.join(cache_dir(), name)
    os.makedirs(directory, exist_ok=True)
    for stem in FILES:
        dest = os.path.join(directory, stem + ".gz")
        if os.path.isfile(dest):
            continue
        _download_one(base + stem + ".gz", dest, info["sha256"][stem], timeout)
    return directory


# ---- loaders ---------------------------------------------------------------------------------
def load_idx_dataset(directory, n_classes=10):
    """((x_train, y_train), (x_test, y_test)) from a directory of the 4 standard files."""
    paths = _complete(directory)
    if paths is None:
        missing = [f for f in FILES if _file_in(directory, f) is None]
        raise DatasetNotFoundError("%s: missing %s" % (directory, ", ".join(missing)))
    xtr, ytr, xte, yte = (read_idx(p) for p in paths)
    for x, y, what in ((xtr, ytr, "train"), (xte, yte, "test")):
        if x.ndim != 3 or x.dtype != np.uint8:
            raise IDXFormatError("%s: %s images must be uint8 (N, rows, cols), got %s %s"
                                 % (directory, what, x.dtype, x.shape))
        if y.ndim != 1 or y.dtype != np.uint8:
            raise IDXFormatError("%s: %s labels must be uint8 (N,), got %s %s"
                                 % (directory, what, y.dtype, y.shape))
        if len(x) != len(y):
            raise IDXFormatError("%s: %d %s images but %d labels"
                                 % (directory, len(x), what, len(y)))
        if len(y) and int(y.max()) >= n_classes:
            raise IDXFormatError("%s: %s label %d >= %d classes"
                                 % (directory, what, int(y.max()), n_classes))
    return (xtr, ytr), (xte, yte)


def _load(name, path, download_ok, url):
    name = _canonical(name)
    d = find_dataset(name, path)
    if d is not None:
        return load_idx_dataset(d)
    looked = search_paths(name, path)
    why = None
    if path is None and download_ok:
        try:
            d = download(name, url=url)
            return load_idx_dataset(d)
        except DownloadError:
            raise
        except (OSError, urllib.error.URLError, ValueError) as exc:
            why = "download from %s failed: %s" % (
                url or os.environ.get(DATASETS[name]["env"]) or DATASETS[name]["url"], exc)
    lines = ["%s not found. Looked for its 4 IDX files (%s[.gz], ...) in:" % (name, FILES[0])]
    lines += ["  - %s" % d for d in looked]
    if why:
        lines.append(why)
    lines.append("Put the 4 IDX files (gz or raw) in one of these directories, set FLIPNET_DATA to "
                 "a directory holding %s/, pass path=... (CLI: --data-dir), or go online so "
                 "they can be downloaded into %s." % (name, os.path.join(cache_dir(), name)))
    raise DatasetNotFoundError("\n".join(lines))


def load_mnist(path=None, download=True, url=None):
    """MNIST: ((x_train, y_train), (x_test, y_test)), uint8 (N, 28, 28) and uint8 (N,)."""
    return _load("mnist", path, download, url)


def load_fashion_mnist(path=None, download=True, url=None):
    """Fashion-MNIST, same layout as :func:`load_mnist`."""
    return _load("fashion_mnist", path, download, url)


def load(name, path=None, download=True, url=None):
    """Load a data set by name (``mnist`` or ``fashion_mnist``)."""
    return _load(name, path, download, url)
