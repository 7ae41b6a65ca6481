"""flipnet.datasets: IDX reader, search order, download with SHA-256 checks."""

import contextlib
import functools
import gzip
import http.server
import os
import shutil
import struct
import threading

import numpy as np
import pytest

from flipnet import datasets
from flipnet.errors import (DatasetNotFoundError, DownloadError, FlipnetError, IDXFormatError)


# ---- IDX ------------------------------------------------------------------------------------
def idx_bytes(arr, code=0x08):
    arr = np.asarray(arr)
    dt = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    head = struct.pack(">HBB", 0, code, arr.ndim) + struct.pack(">%dI" % arr.ndim, *arr.shape)
    return head + arr.astype(dt).tobytes()


def test_parse_idx_types():
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(datasets.parse_idx(idx_bytes(a)), a)
    b = np.array([-5, 70000, 2], dtype=np.int32)
    got = datasets.parse_idx(idx_bytes(b, 0x0C))
    assert got.dtype == np.int32 and np.array_equal(got, b)
    f = np.array([[1.5, -2.25]], dtype=np.float32)
    assert np.array_equal(datasets.parse_idx(idx_bytes(f, 0x0D)), f)


@pytest.mark.parametrize("data,words", [
    (b"\x00\x00", "too short"),
    (b"\x12\x34\x08\x01\x00\x00\x00\x01\x00", "not an IDX file"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "unknown IDX element type"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated IDX header"),
    (idx_bytes(np.zeros((4, 5), np.uint8))[:-1], "truncated"),
    (idx_bytes(np.zeros((4, 5), np.uint8)) + b"\x00", "trailing bytes"),
])
def test_parse_idx_errors(data, words):
    with pytest.raises(IDXFormatError) as info:
        datasets.parse_idx(data, "f.idx")
    assert words in str(info.value) and "f.idx" in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, FlipnetError)


def test_read_idx_gz_and_raw(tmp_path):
    a = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    (tmp_path / "raw").write_bytes(idx_bytes(a))
    with gzip.open(tmp_path / "comp.gz", "wb") as f:
        f.write(idx_bytes(a))
    assert np.array_equal(datasets.read_idx(tmp_path / "raw"), a)
    assert np.array_equal(datasets.read_idx(tmp_path / "comp.gz"), a)
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b" + b"garbage")
    with pytest.raises(IDXFormatError):
        datasets.read_idx(tmp_path / "bad.gz")
    with pytest.raises(FileNotFoundError):
        datasets.read_idx(tmp_path / "nope")


# ---- fake data sets for the search order ----------------------------------------------------
def make_fake(directory, n_train=6, n_test=4, tag=0, gz=True):
    """A tiny data set in MNIST layout; image [0, 0, 0] = tag identifies the directory."""
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(tag)
    parts = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    parts["train-images-idx3-ubyte"][0, 0, 0] = tag
    for stem, arr in parts.items():
        data = idx_bytes(arr)
        if gz:
            with gzip.open(os.path.join(directory, stem + ".gz"), "wb") as f:
                f.write(data)
        else:
            with open(os.path.join(directory, stem), "wb") as f:
                f.write(data)
    return directory


def tag_of(result):
    (x, _), _ = result
    return int(x[0, 0, 0])


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No FLIPNET_DATA, cwd in an empty tree, walk-up starts there, cache inside tmp_path."""
    work = tmp_path / "tree" / "repo"
    work.mkdir(parents=True)
    monkeypatch.delenv("FLIPNET_DATA", raising=False)
    monkeypatch.delenv("FLIPNET_MNIST_URL", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(work)
    monkeypatch.setattr(datasets, "_search_starts", lambda: [os.getcwd()])
    return tmp_path


def test_search_order(isolated, monkeypatch):
    t = isolated
    cache = make_fake(t / "cache" / "flipnet" / "mnist", tag=4)
    assert tag_of(datasets.load_mnist(download=False)) == 4
    make_fake(t / "tree" / "shared" / "data" / "mnist", tag=3, gz=False)  # ../shared/data
    assert tag_of(datasets.load_mnist(download=False)) == 3
    make_fake(t / "env" / "mnist", tag=2)
    monkeypatch.setenv("FLIPNET_DATA", str(t / "env"))
    assert tag_of(datasets.load_mnist(download=False)) == 2
    make_fake(t / "arg", tag=1)
    assert tag_of(datasets.load_mnist(t / "arg", download=False)) == 1
    # path given and holding mnist/ also works; a path without the files is an error
    assert tag_of(datasets.load_mnist(t / "env")) == 2
    with pytest.raises(DatasetNotFoundError):
        datasets.load_mnist(t / "cache")  # holds flipnet/mnist, not mnist/: not searched deeper
    assert os.path.isdir(cache)


def test_flipnet_data_may_hold_the_files_directly(isolated, monkeypatch):
    make_fake(isolated / "flat", tag=7)
    monkeypatch.setenv("FLIPNET_DATA", str(isolated / "flat"))
    assert tag_of(datasets.load_mnist(download=False)) == 7
    # Fashion-MNIST looks for fashion_mnist/ the same way (and finds the flat files too)
    make_fake(isolated / "flat" / "fashion_mnist", tag=8)
    assert tag_of(datasets.load_fashion_mnist(download=False)) == 8


def test_not_found_lists_where_it_looked(isolated):
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.load_mnist(download=False)
    msg = str(info.value)
    assert str(isolated / "cache" / "flipnet" / "mnist") in msg
    assert os.path.join(os.getcwd(), "shared", "data", "mnist") in msg
    assert "FLIPNET_DATA" in msg and "--data-dir" in msg
    assert isinstance(info.value, FileNotFoundError)


def test_inconsistent_dataset_is_rejected(tmp_path):
    d = make_fake(tmp_path / "bad")
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    with gzip.open(d / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(idx_bytes(np.array([11, 0, 1, 2], np.uint8)))
    with pytest.raises(IDXFormatError, match="label 11"):
        datasets.load_mnist(d)
    d2 = make_fake(tmp_path / "bad2")
    (d2 / "t10k-labels-idx1-ubyte.gz").unlink()
    with gzip.open(d2 / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(idx_bytes(np.array([1, 2], np.uint8)))
    with pytest.raises(IDXFormatError, match="4 test images but 2 labels"):
        datasets.load_mnist(d2)


# ---- real data ---------------------------------------------------------------------------------
def test_real_mnist(mnist):
    (x, y), (xt, yt) = mnist
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28)
    assert x.dtype == np.uint8 and y.dtype == np.uint8
    assert y.max() == 9 and np.bincount(y).min() > 5000
    assert y[:5].tolist() == [5, 0, 4, 1, 9]


# ---- download from a loopback server ------------------------------------------------------------
@contextlib.contextmanager
def serve(directory):
    handler = functools.partial(_QuietHandler, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%d/" % httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def real_mnist_dir():
    d = datasets.find_dataset("mnist")
    if d is None or not all(os.path.isfile(os.path.join(d, f + ".gz")) for f in datasets.FILES):
        pytest.skip("the gzipped MNIST files are not available locally to serve")
    return d


def test_download_verifies_and_caches(isolated, monkeypatch, real_mnist_dir):
    with serve(real_mnist_dir) as url:
        monkeypatch.setenv("FLIPNET_MNIST_URL", url)
        (x, y), (xt, yt) = datasets.load_mnist()
    cache = isolated / "cache" / "flipnet" / "mnist"
    assert sorted(os.listdir(cache)) == sorted(f + ".gz" for f in datasets.FILES)
    assert x.shape == (60000, 28, 28) and yt.shape == (10000,)
    # now found in the cache without a server
    monkeypatch.setenv("FLIPNET_MNIST_URL", "http://127.0.0.1:9/")
    assert datasets.find_dataset("mnist") == str(cache)


def test_download_accepts_recompressed_files(isolated, real_mnist_dir):
    """A mirror may gzip differently: the decompressed content's SHA-256 is accepted too."""
    src = isolated / "mirror"
    src.mkdir()
    for stem in datasets.FILES:
        with gzip.open(os.path.join(real_mnist_dir, stem + ".gz"), "rb") as f:
            raw = f.read()
        with gzip.open(src / (stem + ".gz"), "wb", compresslevel=1) as f:
            f.write(raw)
    with serve(src) as url:
        d = datasets.download("mnist", url=url, directory=str(isolated / "dl"))
    assert datasets.load_idx_dataset(d)[1][1].shape == (10000,)


def test_corrupted_download_is_deleted(isolated, monkeypatch, real_mnist_dir):
    src = isolated / "evil"
    src.mkdir()
    for stem in datasets.FILES:
        shutil.copy(os.path.join(real_mnist_dir, stem + ".gz"), src)
    data = bytearray((src / "train-labels-idx1-ubyte.gz").read_bytes())
    data[-20] ^= 0xFF
    (src / "train-labels-idx1-ubyte.gz").write_bytes(bytes(data))
    cache = isolated / "cache" / "flipnet" / "mnist"
    with serve(src) as url:
        with pytest.raises(DownloadError) as info:
            datasets.load_mnist(url=url)
    assert "SHA-256 mismatch" in str(info.value) and "train-labels" in str(info.value)
    left = os.listdir(cache)
    assert "train-labels-idx1-ubyte.gz" not in left
    assert not [f for f in left if f.endswith(".part")]


def test_offline_download_failure_is_a_clear_error(isolated):
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.load_mnist(url="http://127.0.0.1:9/")  # discard port: connection refused
    msg = str(info.value)
    assert "download from http://127.0.0.1:9/ failed" in msg
    assert str(isolated / "cache" / "flipnet" / "mnist") in msg
