"""What fits a device: the RAM a model needs there, and the largest model of a recipe that
trains in a device's arena (docs/protocol.md, CONFIGURE; firmware/README.md, RAM).

A training device holds, in its arena, the model's weight area (packed weights and counters,
``flipnet_model_size``) and the training scratch for its batch (``flipnet_scratch_size``);
the model file is never held (PULL streams it). A TRAIN frame of ``batch`` samples at 8 bits
must also fit its request buffer (``max_frame``). The sizes come from the core itself (the
same code the firmware runs), so the host's answer is the device's.
"""

from ..arch import KINDS
from ..core import CoreModel
from ..rule import check_counter_bits

__all__ = ["device_bytes", "frame_bytes", "fits", "largest_hidden"]


def device_bytes(sizes, counter_bits=None, batch=8, kind="ternary"):
    """Arena bytes a dense ``sizes`` model of ``kind`` layers trains in at ``batch``: weights +
    counters (``counter_bits`` per layer, or one for all; None: no counters) + scratch, each
    rounded up to 4 bytes as the device lays them out."""
    n_layers = len(sizes) - 1
    bits = check_counter_bits(counter_bits, n_layers) if counter_bits else None
    m = CoreModel(list(sizes), [KINDS[kind]] * n_layers, bits is not None, 1, bits)
    r = m.memory_report(batch)
    weight_area = r["weight_bytes"] + r["counter_bytes"]  # flipnet_model_size, a multiple of 4
    return weight_area + (r["scratch_train_bytes"] + 3) // 4 * 4


def frame_bytes(n_inputs, n_layers, batch):
    """The largest TRAIN frame of ``batch`` samples at 8 bits (header, k and p, an input
    table, labels, inputs, CRC): what a device's ``max_frame`` must hold."""
    return 12 + 4 + 8 * n_layers + 16 + 2 * batch + batch * n_inputs


def fits(info, sizes, counter_bits=None, batch=8, kind="ternary"):
    """True when a device with INFO ``info`` (``arena_bytes``, ``max_frame``, ``max_batch``)
    trains ``sizes`` at ``batch``."""
    return (batch <= info["max_batch"]
            and frame_bytes(sizes[0], len(sizes) - 1, batch) <= info["max_frame"]
            and device_bytes(sizes, counter_bits, batch, kind) <= info["arena_bytes"])


def largest_hidden(info, n_inputs, n_classes, counter_bits=None, batch=8, kind="ternary",
                   limit=4096):
    """The largest hidden width h (at most ``limit``) whose ``n_inputs``-h-``n_classes`` model
    trains on the device at ``batch``, or 0 when none does."""
    lo, hi = 0, limit
    while lo < hi:  # device_bytes grows with h: bisect
        mid = (lo + hi + 1) // 2
        if fits(info, [n_inputs, mid, n_classes], counter_bits, batch, kind):
            lo = mid
        else:
            hi = mid - 1
    return lo
