"""Synthetic handwriting-like data for the tests that check exactness, not accuracy.

``digits(n_train, n_test, seed)`` returns ``((x, y), (xt, yt))`` shaped like MNIST (images
uint8 (N, 28, 28), labels uint8 (N,)), generated from a fixed NumPy generator: always the
same bytes for the same arguments, never read from disk, so no bit-exactness test depends on
MNIST being present.

Each class is a prototype of three thick random strokes on a zero background (about a tenth
of the pixels are ink, as in MNIST: zero runs for the run-coded link, values over the whole
0..255 range for every input quantization); each sample is its class's prototype moved by up
to 2 pixels, with a random ink intensity, 10% of its ink dropped and a few faint noise
pixels. A small network learns it well above chance within a few hundred samples.
"""

import os
import struct

import numpy as np

SIDE = 28


def _prototype(rng):
    img = np.zeros((SIDE, SIDE), np.float64)
    for _ in range(3):
        p0, p1 = rng.uniform(5, 22, 2), rng.uniform(5, 22, 2)
        for t in np.linspace(0.0, 1.0, 48):
            r, c = np.rint(p0 + t * (p1 - p0)).astype(int)
            img[r - 1:r + 2, c - 1:c + 2] = 1.0
    return img


def _samples(rng, protos, n):
    classes = len(protos)
    y = rng.integers(0, classes, n).astype(np.uint8)
    x = protos[y].copy()
    # move every sample by (dy, dx) in [-2, 2]^2 (the strokes stay inside the frame)
    shift = rng.integers(-2, 3, (n, 2))
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            sel = (shift[:, 0] == dy) & (shift[:, 1] == dx)
            if sel.any():
                x[sel] = np.roll(x[sel], (dy, dx), axis=(1, 2))
    x *= rng.uniform(0.55, 1.0, (n, 1, 1)) * 255.0
    x[rng.random(x.shape) < 0.10] = 0.0                       # dropped ink
    noise = rng.random(x.shape) < 0.02                        # faint specks
    x[noise] = np.maximum(x[noise], rng.uniform(20, 90, int(noise.sum())))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8), y


def digits(n_train=4000, n_test=2000, seed=2026, classes=10):
    """((x, y), (xt, yt)): MNIST-shaped synthetic data, the same for the same arguments."""
    rng = np.random.default_rng(seed)
    protos = np.stack([_prototype(rng) for _ in range(classes)])
    return _samples(rng, protos, n_train), _samples(rng, protos, n_test)


def write_idx(directory, x, y, xt, yt):
    """Write ((x, y), (xt, yt)) as the four MNIST IDX files (uncompressed) in ``directory``."""
    os.makedirs(directory, exist_ok=True)
    for stem, a in (("train-images-idx3-ubyte", x), ("train-labels-idx1-ubyte", y),
                    ("t10k-images-idx3-ubyte", xt), ("t10k-labels-idx1-ubyte", yt)):
        a = np.ascontiguousarray(a, dtype=np.uint8)
        with open(os.path.join(directory, stem), "wb") as f:
            f.write(struct.pack(">BBBB", 0, 0, 0x08, a.ndim))
            f.write(struct.pack(">%dI" % a.ndim, *a.shape))
            f.write(a.tobytes())
