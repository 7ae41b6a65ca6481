"""Payloads of the flipnet serial protocol (docs/protocol.md section 4): pure functions.

``*_payload(...)`` build request payloads, ``parse_*`` decode reply payloads into dicts.
Input packing (1/2/4/8 bits per value) lives here too. No I/O.
"""

import struct

import numpy as np

from ..arch import INTEGER_KINDS
from ..arch import KINDS as _LAYER_KINDS
from ..inputs import INPUT_ENCODINGS, parse_encoding, reduce_pixels, scale_pixels
from ..rule import BACKPROPS, COUNTER_BITS, FILTERS, ROUNDINGS, VOTES

__all__ = [
    "CMD", "CMD_NAMES", "STATUS_NAMES", "status_name",
    "info_payload", "configure_payload", "train_payload", "eval_payload", "predict_payload",
    "pull_payload", "load_payload", "stats_payload", "reset_payload", "save_payload",
    "parse_store", "parse_info", "parse_configure", "parse_train", "parse_eval", "parse_predict",
    "parse_pull", "parse_load", "parse_stats", "parse_error",
    "pack_codes", "unpack_codes", "pixel_table", "quantize_pixels", "info_encoding",
    "encode_inputs",
    "runcode", "rundecode", "runs_decode_in_place",
    "KINDS", "VOTES", "FILTERS", "BACKPROPS", "ENCODINGS", "INFO_FLAGS", "SAMPLES_RUNS",
    "SAMPLES_SHIFT", "SAMPLES_STEPS",
    "E_INFER_ONLY", "E_STORAGE", "E_STEPS",
]

CMD = {"INFO": 0x01, "CONFIGURE": 0x02, "TRAIN": 0x03, "EVAL": 0x04, "PREDICT": 0x05,
       "PULL": 0x06, "LOAD": 0x07, "STATS": 0x08, "RESET": 0x09, "PING": 0x0A,
       "SAVE": 0x0B, "RESTORE": 0x0C}
CMD_NAMES = {v: k for k, v in CMD.items()}

#: the layer kinds a device trains (its integer-only core), with their flipnet_kind codes
KINDS = {k: _LAYER_KINDS[k] for k in INTEGER_KINDS}
KIND_NAMES = {v: k for k, v in KINDS.items()}
#: INFO flags (docs/protocol.md, INFO)
INFO_FLAGS = {"configured": 1, "inference_only": 2, "runs": 4, "store": 8}
#: sample payload flag: the packed inputs are run-coded
SAMPLES_RUNS = 0x80
#: TRAIN flags bit 3: a u32 counter shift for this step follows p (docs/protocol.md, TRAIN)
SAMPLES_SHIFT = 0x08
#: TRAIN flags bit 4: a u64 expected step counter follows (docs/protocol.md section 10)
SAMPLES_STEPS = 0x10
#: status of a training / model-transfer command on the inference-only firmware
E_INFER_ONLY = -110
#: no checkpoint store / no checkpoint / a flash write failed (docs/protocol.md section 10)
E_STORAGE = -111
#: TRAIN refused: the device's step counter is not the one the host expected (a reset)
E_STEPS = -112

STATUS_NAMES = {
    0: "OK",
    -1: "E_NULL", -2: "E_ARG", -3: "E_SHAPE", -4: "E_NOMEM (core)", -5: "E_ALIGN",
    -6: "E_LABEL", -7: "E_INPUT",
    -20: "E_FMT_MAGIC", -21: "E_FMT_VERSION", -22: "E_FMT_TRUNCATED", -23: "E_FMT_SIZE",
    -24: "E_FMT_CRC", -25: "E_FMT_VALUE",
    -100: "E_CRC", -101: "E_FRAME", -102: "E_TOOLONG", -103: "E_VERSION", -104: "E_CMD",
    -105: "E_PAYLOAD", -106: "E_STATE", -107: "E_NOMEM", -108: "E_ORDER", -109: "E_BATCH",
    -110: "E_INFER_ONLY", -111: "E_STORAGE", -112: "E_STEPS",
}

_STATUS_TEXT = {
    -2: "an argument is out of range", -3: "invalid layer sizes",
    -6: "a label is >= the number of classes", -7: "an input value is -128",
    -20: "not a flipnet model file", -21: "unknown model file version",
    -22: "model file truncated", -23: "model file sizes inconsistent",
    -24: "model file CRC mismatch (corrupted)", -25: "model file has an invalid field",
    -100: "frame CRC mismatch", -101: "malformed frame", -102: "frame longer than the device "
    "accepts", -103: "protocol version not supported by the firmware", -104: "unknown command",
    -105: "payload inconsistent with the command", -106: "no model on the device (configure "
    "or load one first)", -107: "does not fit the device's RAM", -108: "LOAD chunk out of "
    "order", -109: "batch size 0 or larger than configured",
    -110: "inference-only firmware: no training; flash the training firmware",
    -111: "no checkpoint store on the device, no checkpoint in it, or writing one failed",
    -112: "the device's step counter is not the one expected (it was reset or restored)",
}


def status_name(status):
    """``"E_NOMEM (does not fit the device's RAM)"`` for a status code."""
    name = STATUS_NAMES.get(status, "status %d" % status)
    text = _STATUS_TEXT.get(status)
    return "%s (%s)" % (name, text) if text else name


def _lookup(table, value, what):
    if isinstance(value, str):
        try:
            return table[value]
        except KeyError:
            raise ValueError("unknown %s %r (one of %s)" % (what, value, ", ".join(table))) \
                from None
    return int(value)


# ---- input packing ---------------------------------------------------------------------
def pack_codes(codes, bits):
    """Pack integer codes (each < 2**bits) LSB-first into bytes (docs/protocol.md TRAIN)."""
    codes = np.asarray(codes, dtype=np.uint8).ravel()
    if bits == 8:
        return codes.tobytes()
    if bits not in (1, 2, 4):
        raise ValueError("bits must be 1, 2, 4 or 8, got %r" % (bits,))
    if codes.size and int(codes.max()) >= (1 << bits):
        raise ValueError("a code does not fit in %d bits" % bits)
    per = 8 // bits
    pad = (-codes.size) % per
    c = np.concatenate([codes, np.zeros(pad, np.uint8)]).reshape(-1, per).astype(np.uint16)
    shifts = (np.arange(per, dtype=np.uint16) * bits)
    return (c << shifts).sum(axis=1).astype(np.uint8).tobytes()


def unpack_codes(data, bits, count):
    """Inverse of :func:`pack_codes` for ``count`` codes."""
    raw = np.frombuffer(bytes(data), dtype=np.uint8)
    if bits == 8:
        return raw[:count].copy()
    per = 8 // bits
    shifts = (np.arange(per, dtype=np.uint8) * bits)
    codes = (raw[:, None] >> shifts) & ((1 << bits) - 1)
    return codes.ravel()[:count].astype(np.uint8)


#: the per-pixel input encodings (flipnet.inputs; the INFO encoding byte's scalings)
ENCODINGS = INPUT_ENCODINGS


def pixel_table(bits, encoding="centered"):
    """int8 value of each code when uint8 pixels are sent with ``bits`` bits.

    Code ``c = q >> (8 - bits)``; its value is the scaled value at the middle of the code's
    bin, ``c * w + w // 2`` with ``w = 2**(8 - bits)``, through the input encoding's scaling
    (``"centered"``: ``clamp(v - 128, -127, 127)``; ``"half"``, and every reducing encoding
    without ``-centered``: ``v >> 1``). ``q`` is the pixel, or for a reducing encoding the
    block mean it scales (:func:`flipnet.inputs.reduce_pixels`). 8 bits needs no table (each
    value is encoded exactly).
    """
    if bits == 8:
        return None
    if bits not in (1, 2, 4):
        raise ValueError("bits must be 1, 2, 4 or 8, got %r" % (bits,))
    w = 1 << (8 - bits)
    c = np.arange(1 << bits, dtype=np.int32)
    return scale_pixels((c * w + w // 2).astype(np.uint8), parse_encoding(encoding).scaling)


def quantize_pixels(pixels, bits=8, encoding="centered"):
    """uint8 pixels -> (int8 inputs the device will train on, codes, table).

    A per-pixel encoding keeps the shape of ``pixels``; a reducing one (``"crop20-pool2"``)
    takes images (N, S, S) or (N, S * S) and gives (N, n_inputs): the block means are what is
    binned with ``bits`` < 8, exactly as pixels are."""
    p = np.asarray(pixels, dtype=np.uint8)
    enc = parse_encoding(encoding)
    if enc.reduces:
        p = reduce_pixels(p, enc)
    if bits == 8:
        x = scale_pixels(p, enc.scaling)
        return x, x.view(np.uint8), None
    table = pixel_table(bits, enc)
    codes = (p >> (8 - bits)).astype(np.uint8)
    return table[codes], codes, table


def info_encoding(code, crop):
    """The input encoding named by INFO's model fields (docs/protocol.md, INFO): ``code``
    bit 0 the scaling (0 centered, 1 half), bits 4..7 the pool side P (0: none), ``crop`` the
    crop side C (0: none)."""
    scaling = "half" if code & 1 else "centered"
    pool = code >> 4
    parts = (["crop%d" % crop] if crop else []) + (["pool%d" % pool] if pool else [])
    if not parts:
        return scaling
    name = "-".join(parts) + ("-centered" if scaling == "centered" else "")
    try:
        return parse_encoding(name).name
    except ValueError:
        raise ValueError("INFO reports an input encoding flipnet does not know (code 0x%02x, "
                         "crop %d)" % (code, crop)) from None


def encode_inputs(x, bits=8, table=None):
    """int8 inputs -> (table bytes, packed bytes) for TRAIN / EVAL / PREDICT.

    With ``bits`` < 8 every value of ``x`` must be one of ``table`` (2**bits int8 values).
    """
    x = np.asarray(x, dtype=np.int8)
    if bits == 8:
        if x.size and int(x.min()) == -128:
            raise ValueError("input value -128 (inputs must be in [-127, 127])")
        return b"", x.view(np.uint8).tobytes()
    if table is None:
        raise ValueError("bits=%d needs a table of %d int8 values" % (bits, 1 << bits))
    table = np.asarray(table, dtype=np.int8)
    if table.shape != (1 << bits,):
        raise ValueError("table must have %d entries for bits=%d" % (1 << bits, bits))
    inverse = np.full(256, -1, dtype=np.int16)
    for c in range(len(table) - 1, -1, -1):
        inverse[int(table[c]) & 0xFF] = c
    codes = inverse[x.view(np.uint8).ravel()]
    if codes.size and int(codes.min()) < 0:
        raise ValueError("an input value is not in the %d-bit table" % bits)
    return table.tobytes(), pack_codes(codes.astype(np.uint8), bits)


# ---- run coding of sample inputs ---------------------------------------------------------------
def _ext(v, direct):
    """Header field and extension bytes of a count v (docs/protocol.md, TRAIN)."""
    if v < direct:
        return v, b""
    v -= direct
    out = bytearray()
    while v >= 255:
        out.append(255)
        v -= 255
    out.append(v)
    return direct, bytes(out)


def runcode(data):
    """Run coding of ``data`` (bytes): the most frequent byte ``b`` first, then segments of
    (a run of ``b``, literal bytes). Returns (coded bytes, segments), segments being (z, l,
    header bytes) for :func:`runs_decode_in_place`."""
    a = np.frombuffer(bytes(data), dtype=np.uint8)
    if a.size == 0:
        return b"", []
    bg = int(np.bincount(a, minlength=256).argmax())
    isbg = np.concatenate(([False], a == bg, [False])).astype(np.int8)
    d = np.diff(isbg)
    run_start = np.flatnonzero(d == 1)      # background runs [start, end)
    run_end = np.flatnonzero(d == -1)
    out = bytearray([bg])
    segs = []
    pos = 0
    n = a.size
    raw = a.tobytes()
    runs = list(zip(run_start.tolist(), run_end.tolist()))
    k = 0
    while pos < n:
        if k < len(runs) and runs[k][0] == pos:
            z = runs[k][1] - runs[k][0]
            pos = runs[k][1]
            k += 1
        else:
            z = 0
        lit_end = runs[k][0] if k < len(runs) else n
        l = lit_end - pos
        hz, ez = _ext(z, 31)
        hl, el = _ext(l, 7)
        head = bytes([(hz << 3) | hl]) + ez + el
        out += head
        out += raw[pos:lit_end]
        segs.append((z, l, len(head)))
        pos = lit_end
    return bytes(out), segs


def rundecode(data):
    """Inverse of :func:`runcode` (raises ValueError on malformed input)."""
    data = bytes(data)
    if not data:
        return b""
    bg = data[0]
    out = bytearray()
    i = 1

    def count(v, i):
        while True:
            if i >= len(data):
                raise ValueError("run coding: extension past the end")
            e = data[i]
            i += 1
            v += e
            if e != 255:
                return v, i

    while i < len(data):
        h = data[i]
        i += 1
        z, l = h >> 3, h & 7
        if z == 31:
            z, i = count(z, i)
        if l == 7:
            l, i = count(l, i)
        if i + l > len(data):
            raise ValueError("run coding: literals past the end")
        out += bytes([bg]) * z + data[i:i + l]
        i += l
    return bytes(out)


def runs_decode_in_place(segments, at, coded_len, max_frame):
    """Whether a device decodes these segments in place (link.c): the coded bytes sit at the
    top of its ``max_frame``-byte request buffer and are decoded to offset ``at``; a run may
    not overwrite coded bytes not read yet."""
    if at + sum(z + l for z, l, _ in segments) > max_frame:
        return False
    slack = (max_frame - coded_len + 1) - at  # read position - write position
    if slack < 0:
        return False
    for z, _, head in segments:
        slack += head - z
        if slack < 0:
            return False
    return True


# ---- requests ------------------------------------------------------------------------------
def info_payload():
    return b""


def stats_payload():
    return b""


def reset_payload(what=0):
    return struct.pack("<B", what)


def _counters_byte(counters):
    """CONFIGURE's counters byte: 0 none, else the bits per counter (True: 8)."""
    if counters is True:
        return 8
    if not counters:
        return 0
    if int(counters) not in COUNTER_BITS:
        raise ValueError("counters: bits per counter must be one of %s, got %r"
                         % (", ".join(map(str, COUNTER_BITS)), counters))
    return int(counters)


def configure_payload(sizes, kinds="ternary", seed=0, batch=8, vote="sign", filter="hurt",
                      backprop="sign", margin=0, calib_target=32, counters=False,
                      counter_shift=0, counter_threshold=0, counter_decay=0,
                      counter_round="nearest", checkpoint_every=None):
    """CONFIGURE: architecture, rule, seed, largest batch (docs/protocol.md). ``counters``:
    False / 0 none, True int8 counters, or the bits per counter (8, 4, 2).
    ``checkpoint_every``: the checkpoint cadence in steps (section 10; the field is only sent
    when given, so older firmware keeps working without it)."""
    sizes = [int(s) for s in sizes]
    L = len(sizes) - 1
    if isinstance(kinds, (str, int)):
        kinds = [kinds] * L
    kinds = [_lookup(KINDS, k, "weight kind") for k in kinds]
    if len(kinds) != L:
        raise ValueError("%d kinds for %d layers" % (len(kinds), L))
    head = struct.pack("<BBBBiQHBBBBBB", L, _lookup(VOTES, vote, "vote"),
                       _lookup(FILTERS, filter, "filter"),
                       _lookup(BACKPROPS, backprop, "backprop"), int(margin),
                       int(seed) & 0xFFFFFFFFFFFFFFFF, int(batch), int(calib_target),
                       _counters_byte(counters), int(counter_shift), int(counter_threshold),
                       int(counter_decay), _lookup(ROUNDINGS, counter_round, "counter rounding"))
    tail = b""
    if checkpoint_every is not None:
        every = int(checkpoint_every)
        if not 0 <= every <= 0xFFFFFFFF:
            raise ValueError("checkpoint_every must be 0 (off) or a positive number of steps, "
                             "got %d" % every)
        tail = struct.pack("<I", every)
    return head + struct.pack("<%dH" % (L + 1), *sizes) + bytes(kinds) + tail


#: SAVE operations (docs/protocol.md section 10)
SAVE_OPS = {"save": 0, "every": 1, "every_save": 2, "wipe": 3}


def save_payload(op="save", every=0):
    """SAVE: ``op`` "save" (a checkpoint now), "every" (set the cadence), "every_save" (both)
    or "wipe" (erase every checkpoint)."""
    every = int(every)
    if not 0 <= every <= 0xFFFFFFFF:
        raise ValueError("every must be 0 (off) or a positive number of steps, got %d" % every)
    return struct.pack("<BI", _lookup(SAVE_OPS, op, "SAVE operation"), every)


def _samples(flags, x, bits, table, labels=None, kp=None, max_frame=None):
    x = np.asarray(x, dtype=np.int8)
    if x.ndim != 2:
        raise ValueError("inputs must be (batch, n_inputs), got shape %s" % (x.shape,))
    tab, packed = encode_inputs(x, bits, table)
    head = b""
    if kp is not None:
        head += kp
    head += tab
    if labels is not None:
        labels = np.asarray(labels, dtype=np.uint16).ravel()
        if labels.shape[0] != x.shape[0]:
            raise ValueError("%d labels for %d samples" % (labels.shape[0], x.shape[0]))
        head += labels.astype("<u2").tobytes()
    if max_frame:
        # run coding when it is shorter and the device can decode it in place
        coded, segs = runcode(packed)
        at = 8 + 4 + len(head)  # frame header, flags/bits/B, then head
        if len(coded) < len(packed) and runs_decode_in_place(segs, at, len(coded), max_frame):
            flags |= SAMPLES_RUNS
            packed = coded
    return struct.pack("<BBH", flags, bits, x.shape[0]) + head + packed


def train_payload(x, y, k, p_q16, calibrate=False, bits=8, table=None, calibrate_after=False,
                  max_frame=None, calibrate_from=0, counter_shift=None, expected_steps=None):
    """TRAIN: one step on (x int8 (B, n0), y) with k and p_q16 per layer; ``calibrate``
    calibrates the shifts on this batch before the step, ``calibrate_after`` after it, both
    keeping the first layer's shift with ``calibrate_from=1`` (a recipe's recalibrate_from);
    ``counter_shift``: the counters' shift of this step (a schedule that anneals it), else the
    model's own.
    ``max_frame`` (the device's, from INFO, when it takes run-coded inputs): run-code the
    inputs when that is shorter. ``expected_steps``: the model's step counter before this
    step; a device whose counter differs (it was reset and resumed from a checkpoint)
    refuses the step with E_STEPS instead of applying it (section 10)."""
    kp = struct.pack("<%dI" % len(k), *[int(v) for v in k])
    kp += struct.pack("<%dI" % len(p_q16), *[int(v) for v in p_q16])
    flags = (1 if calibrate else 0) | (2 if calibrate_after else 0) | (4 if calibrate_from else 0)
    if counter_shift is not None:
        flags |= SAMPLES_SHIFT
        kp += struct.pack("<I", int(counter_shift))
    if expected_steps is not None:
        flags |= SAMPLES_STEPS
        kp += struct.pack("<Q", int(expected_steps))
    return _samples(flags, x, bits, table, y, kp, max_frame=max_frame)


def eval_payload(x, y, bits=8, table=None, max_frame=None):
    return _samples(0, x, bits, table, y, max_frame=max_frame)


def predict_payload(x, logits=False, bits=8, table=None, max_frame=None):
    return _samples(1 if logits else 0, x, bits, table, max_frame=max_frame)


def pull_payload(offset, max_len=1024):
    return struct.pack("<IHH", offset, max_len, 0)


def load_payload(total, offset, data, batch=8):
    return struct.pack("<IIHH", total, offset, batch, 0) + bytes(data)


# ---- replies -------------------------------------------------------------------------------
def _need(p, n, what):
    if len(p) < n:
        raise ValueError("%s reply too short (%d < %d bytes)" % (what, len(p), n))


def parse_error(p):
    _need(p, 12, "error")
    cmd, _, d1, d2 = struct.unpack_from("<HHII", p)
    return {"cmd": cmd, "detail": (d1, d2)}


STORE_BYTES = 60


def parse_store(p, off=0):
    """The checkpoint block (INFO with flags bit 3, SAVE and RESTORE replies)."""
    _need(p, off + STORE_BYTES, "checkpoint block")
    (flags, slots, _, every, seq, steps, samples, crc, train_seq, length, slot_bytes, wear,
     erases, writes, failures) = struct.unpack_from("<BBHIIQQIIIIIIII", p, off)
    has = bool(flags & 2)
    return {"store": bool(flags & 1), "slots": slots, "every": every,
            "restored": bool(flags & 4), "last_write_failed": bool(flags & 8),
            "checkpoint": {"seq": seq, "steps": steps, "samples": samples, "crc": crc,
                           "train_seq": train_seq, "bytes": length} if has else None,
            "slot_bytes": slot_bytes, "wear": wear, "erases": erases, "writes": writes,
            "failures": failures}


def parse_info(p):
    _need(p, 48, "INFO")
    (proto, vmaj, vmin, vpat, max_frame, max_reply, arena, ram_static, stack, max_batch,
     max_layers, flags, largest) = struct.unpack_from("<BBBBIIIIIHBBI", p)
    board = p[32:48].split(b"\x00", 1)[0].decode("ascii", "replace")
    out = {"protocol": proto, "core_version": "%d.%d.%d" % (vmaj, vmin, vpat),
           "max_frame": max_frame, "max_reply": max_reply, "arena_bytes": arena,
           "ram_static": ram_static, "stack_bytes": stack, "max_batch": max_batch,
           "max_layers": max_layers, "configured": bool(flags & 1),
           "inference_only": bool(flags & 2), "runs": bool(flags & 4),
           "largest_hidden": largest, "board": board}
    if flags & 8:  # the training firmware's checkpoint block (section 10)
        out["store"] = parse_store(p, 48)
    if flags & 2:  # the inference firmware's compiled-in model follows
        _need(p, 52, "INFO")
        L, enc, crop = struct.unpack_from("<BBH", p, 48)
        _need(p, 52 + 3 * L + 2 + 28, "INFO")
        sizes = list(struct.unpack_from("<%dH" % (L + 1), p, 52))
        off = 52 + 2 * (L + 1)
        kinds = [KIND_NAMES.get(k, k) for k in p[off:off + L]]
        steps, samples, seed, weight_bytes = struct.unpack_from("<QQQI", p, off + L)
        out["model"] = {"sizes": sizes, "arch": "-".join(map(str, sizes)), "kinds": kinds,
                        "input": info_encoding(enc, crop), "steps": steps,
                        "samples": samples, "seed": seed, "weight_bytes": weight_bytes}
    return out


def parse_configure(p):
    _need(p, 20, "CONFIGURE")
    w, s, f, used, arena = struct.unpack_from("<5I", p)
    return {"weight_bytes": w, "scratch_bytes": s, "file_bytes": f, "arena_used": used,
            "arena_bytes": arena}


def parse_train(p, n_layers):
    L = n_layers
    _need(p, 24 + 9 * L, "TRAIN")
    correct, errors, steps, samples = struct.unpack_from("<IIQQ", p)
    off = 24
    shifts = list(p[off:off + L])
    off += L
    changes = list(struct.unpack_from("<%dI" % L, p, off))
    off += 4 * L
    eligible = list(struct.unpack_from("<%dI" % L, p, off))
    return {"correct": correct, "errors": errors, "steps": steps, "samples": samples,
            "shifts": shifts, "changes": changes, "eligible": eligible}


def parse_eval(p):
    _need(p, 8, "EVAL")
    correct, batch = struct.unpack_from("<II", p)
    return {"correct": correct, "batch": batch}


def parse_predict(p, batch, classes, logits=False):
    _need(p, 2 * batch + (4 * batch * classes if logits else 0), "PREDICT")
    out = {"classes": np.frombuffer(p, dtype="<u2", count=batch).astype(np.int64)}
    if logits:
        out["logits"] = np.frombuffer(p, dtype="<i4", count=batch * classes,
                                      offset=2 * batch).reshape(batch, classes).astype(np.int32)
    return out


def parse_pull(p):
    _need(p, 16, "PULL")
    total, offset, crc, n, _ = struct.unpack_from("<IIIHH", p)
    _need(p, 16 + n, "PULL")
    return {"total": total, "offset": offset, "crc": crc, "data": bytes(p[16:16 + n])}


def parse_load(p):
    _need(p, 12, "LOAD")
    received, total, done = struct.unpack_from("<IIB", p)
    return {"received": received, "total": total, "done": bool(done)}


def parse_stats(p):
    _need(p, 68, "STATS")
    (steps, samples, trained, train_frames, dup_frames, bad_frames, stack_used, stack_bytes,
     ram_static, arena_used, L, configured, _, tick_hz, train_ticks) = \
        struct.unpack_from("<QQQIIIIIIIBBHIQ", p)
    _need(p, 68 + 8 * L, "STATS")
    changes = list(struct.unpack_from("<%dQ" % L, p, 68)) if L else []
    return {"steps": steps, "samples": samples, "trained": trained,
            "train_frames": train_frames, "dup_frames": dup_frames, "bad_frames": bad_frames,
            "stack_used": stack_used, "stack_bytes": stack_bytes, "ram_static": ram_static,
            "arena_used": arena_used, "n_layers": L, "configured": bool(configured),
            "tick_hz": tick_hz, "train_ticks": train_ticks,
            "train_seconds": train_ticks / tick_hz if tick_hz else None, "changes": changes}
