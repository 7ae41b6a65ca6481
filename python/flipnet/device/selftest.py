"""Robustness checks of a device's protocol handling (used by the tests; also runnable
against a real board: ``python -m flipnet.device.selftest --port /dev/ttyACM0``).

:func:`malformed_battery` configures a small model, trains a step, then throws damaged and
invalid input at the device (garbage bytes, oversized / truncated / bad-CRC frames,
unknown commands, inconsistent payloads, a corrupt LOAD, ...). Every case must be answered
with the right NAK or error reply, and at the end the device must still answer and hold
exactly the model it had (same file bytes, same sample counter). It raises
:class:`SelfTestError` on the first violation (an explicit raise, so ``python -O`` keeps every
check) and returns a :class:`BatteryResult`: the cases it ran, the number of checks that
passed, and the device's model before and after.

Warning: it replaces the device's model.
"""

import time

import numpy as np

from . import protocol as P
from .client import DeviceReplyError
from .framing import NAK, REPLY, FramingError, build_frame, cobs_encode, encode_frame

__all__ = ["SelfTestError", "BatteryResult", "FramesResult", "exchange", "malformed_battery",
           "random_frames", "snapshot", "sync"]

ARCH = [784, 32, 10]


class SelfTestError(AssertionError):
    """A device answered damaged or invalid input wrongly (or changed its model)."""


class BatteryResult(list):
    """What :func:`malformed_battery` ran: the names of its cases (the list itself), ``checks``
    (how many checks passed), ``before`` and ``after``: :func:`snapshot` of the device's model
    before the first malformed input and after the last."""

    def __init__(self, cases=(), checks=0, before=None, after=None):
        super().__init__(cases)
        self.checks, self.before, self.after = checks, before, after


class FramesResult(dict):
    """What :func:`random_frames` saw: ``frames`` sent, ``replies`` (a reply to the command,
    with its sequence number) and ``naks`` (a NAK) among them, ``before`` / ``after``:
    :func:`snapshot` of the model around them (None with state changes)."""


class _Checker:
    """Counts the checks that pass; raises SelfTestError on the first that does not."""

    def __init__(self):
        self.passed = 0

    def __call__(self, ok, what, *args):
        if not ok:
            raise SelfTestError(what % args if args else what)
        self.passed += 1


def _check(ok, what, *args):
    if not ok:
        raise SelfTestError(what % args if args else what)


def exchange(dev, wire, wait=1.0, settle=0.05):
    """Write raw bytes, return the items (Frames / FramingErrors) that arrive in reply."""
    dev.write_raw(wire)
    items = []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        data = dev.read_raw()
        if data:
            items += dev.decoder.feed(data)
            if items:
                deadline = min(deadline, time.monotonic() + settle)
    return items


def sync(dev, quiet=0.3):
    """Wait for everything the device still has to say (a slow device, a busy host), so
    that late replies cannot be mistaken for answers to the next probe."""
    _check(dev.ping(b"sync") == b"sync", "sync: PING not echoed")
    last = time.monotonic()
    while time.monotonic() - last < quiet:
        if dev.read_raw():
            last = time.monotonic()
    dev.decoder.reset()


def _expect_nak(check, dev, wire, status, what, wait=5.0):
    sync(dev)
    items = exchange(dev, wire, wait)
    naks = [it for it in items if not isinstance(it, FramingError) and it.cmd == NAK]
    check(naks, "%s: expected a NAK %s, got %r", what, P.status_name(status), items)
    check(any(n.status == status for n in naks), "%s: NAK %s, expected %s", what,
          ", ".join(P.status_name(n.status) for n in naks), P.status_name(status))


def _expect_error(check, dev, cmd, payload, status, what):
    ok = status if isinstance(status, tuple) else (status,)
    try:
        dev.request(cmd, payload)
    except DeviceReplyError as exc:
        check(exc.status in ok, "%s: got %s, expected %s", what, P.status_name(exc.status),
              " or ".join(P.status_name(s) for s in ok))
        return
    raise SelfTestError("%s: accepted, expected %s" % (what, P.status_name(ok[0])))


def snapshot(dev):
    """(model file bytes, trained-sample counter) of the device."""
    return dev.pull(), dev.stats()["trained"]


def _random_batch(rng, n, batch=4, classes=10):
    x = rng.integers(-127, 128, size=(batch, n)).astype(np.int8)
    y = rng.integers(0, classes, size=batch)
    return x, y


def malformed_battery(dev, seed=0):
    """Run the battery (see the module doc); returns a :class:`BatteryResult` (the names of
    the cases run, the checks passed, the model before and after). Raises
    :class:`SelfTestError` on the first wrong answer."""
    rng = np.random.default_rng(seed)
    info = dev.info()
    max_frame = info["max_frame"]
    cases = []
    check = _Checker()

    def case(name):
        cases.append(name)

    dev.configure(ARCH, "ternary", seed=seed, batch=4)
    x, y = _random_batch(rng, ARCH[0])
    dev.train(x, y, [50, 3], [30000, 30000], calibrate=True)
    before = snapshot(dev)
    T = P.CMD["TRAIN"]

    # -- framing level: NAKs -------------------------------------------------------------------
    case("garbage")
    for _ in range(20):
        junk = rng.integers(1, 256, size=int(rng.integers(1, 300))).astype(np.uint8).tobytes()
        items = exchange(dev, b"\x00" + junk + b"\x00", wait=0.5)
        for it in items:
            check(isinstance(it, FramingError) or it.cmd == NAK, "garbage answered with %r", it)
    case("oversized frame")
    _expect_nak(check, dev, b"\x00" + b"\x07" * (max_frame + 300) + b"\x00", -102,
                "oversized frame")
    case("bad crc")
    f = bytearray(build_frame(P.CMD["INFO"], 1))
    f[-1] ^= 0x40
    _expect_nak(check, dev, b"\x00" + cobs_encode(bytes(f)) + b"\x00", -100, "bad CRC")
    case("truncated cobs")
    _expect_nak(check, dev, b"\x00\x09\x01\x02\x00", -101, "truncated COBS block")
    case("short frame")
    _expect_nak(check, dev, b"\x00" + cobs_encode(b"\x01\x01\x00\x00\x05") + b"\x00", -101,
                "short frame")
    case("frame without delimiter then a good one")
    dev.write_raw(b"\x11\x22\x33")  # no delimiter: the next frame's leading 0x00 ends it
    check(dev.ping(b"ok") == b"ok", "PING after an undelimited frame not echoed")

    # -- command level: error replies ---------------------------------------------------------
    sync(dev)
    case("unknown command")
    _expect_error(check, dev, 0x55, b"", -104, "unknown command")
    case("wrong version")
    sync(dev)
    items = exchange(dev, encode_frame(P.CMD["INFO"], 0xABC, b"", version=9), wait=5.0)
    check(items and not isinstance(items[0], FramingError) and items[0].status == -103,
          "INFO of protocol version 9: expected status -103, got %r", items)
    case("configure bad lengths")
    _expect_error(check, dev, P.CMD["CONFIGURE"], b"\x02\x00", -105, "short CONFIGURE")
    good = P.configure_payload(ARCH, "ternary", 1, 4)
    _expect_error(check, dev, P.CMD["CONFIGURE"], good + b"\x00", -105, "long CONFIGURE")
    _expect_error(check, dev, P.CMD["CONFIGURE"], b"\x00" + good[1:], -3, "CONFIGURE 0 layers")
    case("configure too big")
    _expect_error(check, dev, P.CMD["CONFIGURE"],
                  P.configure_payload([784, 4000, 10], "ternary", 1, 4), -107,
                  "CONFIGURE 784-4000-10")
    _expect_error(check, dev, P.CMD["CONFIGURE"],
                  P.configure_payload([784, 32, 10], "ternary", 1, 64), -107,
                  "CONFIGURE batch 64")
    _expect_error(check, dev, P.CMD["CONFIGURE"], P.configure_payload([784, 32, 10], 7, 1, 4),
                  (-2, -3), "CONFIGURE bad kind")
    case("configure huge (32-bit size overflow)")
    for sizes in ([65535] * 9, [65535, 65535], [65535, 1, 65535], [2, 65535, 65535, 2]):
        for kind in ("ternary", "binary"):
            _expect_error(check, dev, P.CMD["CONFIGURE"], P.configure_payload(sizes, kind, 1, 1),
                          (-2, -3, -107), "CONFIGURE %s %s" % ("-".join(map(str, sizes)), kind))
    case("train bad fields")
    k, p = [50, 3], [30000, 30000]
    good = P.train_payload(x, y, k, p)
    _expect_error(check, dev, T, good[:3], -105, "TRAIN 3 bytes")
    _expect_error(check, dev, T, good[:-1], -105, "TRAIN one byte short")
    _expect_error(check, dev, T, good + b"\x00", -105, "TRAIN one byte long")
    _expect_error(check, dev, T, good[:1] + b"\x03" + good[2:], -105, "TRAIN bits=3")
    _expect_error(check, dev, T, good[:2] + b"\x00\x00" + good[4:], -109, "TRAIN batch 0")
    x9, y9 = _random_batch(rng, ARCH[0], batch=5)
    _expect_error(check, dev, T, P.train_payload(x9, y9, k, p), -109, "TRAIN batch > configured")
    _expect_error(check, dev, T, P.train_payload(x, [0, 1, 10, 2], k, p), -6, "TRAIN label 10")
    off = 4 + 8 * 2 + 2 * 4  # header, k and p of 2 layers, 4 labels
    bad = good[:off] + b"\x80" + good[off + 1:]  # first input value -128
    _expect_error(check, dev, T, bad, -7, "TRAIN input -128")
    xb = np.full((4, ARCH[0]), 64, np.int8)
    tb = P.train_payload(xb, y, k, p, bits=1, table=np.array([-64, 64], np.int8))
    tb = tb[:20] + b"\x80" + tb[21:]  # table entry -128
    _expect_error(check, dev, T, tb, -7, "TRAIN table -128")
    _expect_error(check, dev, T, P.train_payload(x, y, [10 ** 6, 3], p), -2, "TRAIN k > weights")
    _expect_error(check, dev, T, P.train_payload(x, y, k, [70000, 1]), -2, "TRAIN p > 1")
    quiet = (x // 32).astype(np.int8)  # would calibrate to a different shift
    _expect_error(check, dev, T, P.train_payload(quiet, y, [10 ** 6, 3], p, calibrate=True), -2,
                  "TRAIN calibrate + k > weights (no calibration may stick)")
    case("eval / predict bad")
    _expect_error(check, dev, P.CMD["EVAL"], P.eval_payload(x, y)[:-2], -105, "EVAL short")
    if 2 * 4 + 4 * 4 * ARCH[-1] + 12 > info["max_reply"]:  # pragma: no cover - big replies
        _expect_error(check, dev, P.CMD["PREDICT"], P.predict_payload(x, logits=True), -107,
                      "PREDICT logits too big")
    case("pull bad")
    _expect_error(check, dev, P.CMD["PULL"], b"\x00" * 7, -105, "PULL 7 bytes")
    _expect_error(check, dev, P.CMD["PULL"], P.pull_payload(10 ** 7, 64), -105, "PULL past the end")
    case("load bad")
    model = before[0]
    n = len(model)
    _expect_error(check, dev, P.CMD["LOAD"], P.load_payload(n, 100, model[100:200], 4), -108,
                  "LOAD chunk without a start")
    _expect_error(check, dev, P.CMD["LOAD"], P.load_payload(10 ** 7, 0, b"", 4), -107,
                  "LOAD too big")
    _expect_error(check, dev, P.CMD["LOAD"], P.load_payload(100, 0, model[:101], 4), -105,
                  "LOAD more bytes than total")
    for name, data, status in (
            ("corrupt byte", model[:200] + bytes([model[200] ^ 1]) + model[201:], -24),
            ("wrong magic", b"XLIPNET\x00" + model[8:], -20),
            ("truncated", model[:n - 10], None)):
        r = None
        try:
            dev.load(data, batch=4, chunk=700, raw=True)
        except DeviceReplyError as exc:
            r = exc.status
        check(r is not None and r < 0, "LOAD %s accepted", name)
        if status is not None:
            check(r == status, "LOAD %s: %s, expected %s", name, P.status_name(r),
                  P.status_name(status))
    _expect_error(check, dev, P.CMD["LOAD"], P.load_payload(n, 700, model[700:900], 4), -108,
                  "LOAD chunk after a failed load")

    # -- nothing changed ---------------------------------------------------------------------------
    case("model intact")
    after = snapshot(dev)
    check(after == before, "the model or the sample counter changed")
    dev.sizes = list(ARCH)
    dev.batch = 4
    return BatteryResult(cases, check.passed, before, after)


def random_frames(dev, count=300, seed=0, include_state_changes=False):
    """Send CRC-valid frames with random commands and payloads; every one must get a reply
    (or a NAK). Without ``include_state_changes`` CONFIGURE, TRAIN and RESET are left out,
    and the model must be unchanged afterwards. Returns a :class:`FramesResult`; raises
    :class:`SelfTestError` on the first wrong answer."""
    rng = np.random.default_rng(seed)
    info = dev.info()
    cmds = [c for c in range(256)
            if include_state_changes or c not in (P.CMD["CONFIGURE"], P.CMD["TRAIN"],
                                                  P.CMD["RESET"])]
    before = snapshot(dev) if not include_state_changes else None
    replies = naks = 0
    for i in range(count):
        cmd = int(rng.choice(cmds))
        size = int(rng.integers(0, 64)) if rng.random() < 0.8 else \
            int(rng.integers(0, info["max_frame"] - 12 + 1))
        payload = rng.integers(0, 256, size=size).astype(np.uint8).tobytes()
        seq = int(rng.integers(0, 2 ** 32))
        items = exchange(dev, encode_frame(cmd, seq, payload), wait=5.0, settle=0.01)
        frames = [it for it in items if not isinstance(it, FramingError)]
        _check(frames, "no reply to random frame %d (cmd 0x%02x, %d bytes)", i, cmd, size)
        fr = frames[0]
        _check(fr.cmd in (cmd | REPLY, NAK), "reply 0x%02x to cmd 0x%02x", fr.cmd, cmd)
        if fr.cmd == NAK:
            naks += 1
        else:
            _check(fr.seq == seq, "reply to cmd 0x%02x with sequence number %d, sent %d",
                   cmd, fr.seq, seq)
            replies += 1
    _check(dev.ping(b"alive") == b"alive", "PING after the random frames not echoed")
    after = snapshot(dev) if before is not None else None
    _check(after == before, "random frames changed the model")
    return FramesResult(frames=count, replies=replies, naks=naks, before=before, after=after)


def main(argv=None):  # pragma: no cover - manual use on hardware
    import argparse

    from .client import Device

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", required=True)
    ap.add_argument("--baud", type=int, default=115200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    with Device(args.port, baudrate=args.baud) as dev:
        cases = malformed_battery(dev, args.seed)
        random_frames(dev, 200, args.seed)
    print("ok: %d cases, 200 random frames" % len(cases))


if __name__ == "__main__":  # pragma: no cover
    main()
