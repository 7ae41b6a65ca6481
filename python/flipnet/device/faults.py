"""A fault-injecting wrapper around a serial port, to test the protocol's recovery.

    port = FaultyPort(serial.serial_for_url(url), seed=1, flip=5e-5, drop=5e-5, dup=5e-5,
                      frame_drop=0.05, frame_dup=0.05, delay=0.05)
    dev = Device(port, timeout=0.3)

Bytes written (host -> device) and read (device -> host) pass through :meth:`_damage`: each
byte is dropped, has one bit flipped, or is duplicated with the given per-byte
probabilities (``*_in`` variants for the device -> host direction, default: the same).
Whole writes (one request frame each, as :class:`Device` writes them) are dropped or sent
twice with ``frame_drop`` / ``frame_dup``, and ``delay`` is the probability of stalling a
write or read by up to ``max_delay`` seconds. All randomness comes from ``seed``.
"""

import time

import numpy as np

__all__ = ["FaultyPort"]


class FaultyPort:
    def __init__(self, inner, seed=0, flip=0.0, drop=0.0, dup=0.0, flip_in=None, drop_in=None,
                 dup_in=None, frame_drop=0.0, frame_dup=0.0, delay=0.0, max_delay=0.02):
        self.inner = inner
        self.port = "faulty(%s)" % (getattr(inner, "port", None) or getattr(inner, "name", "?"))
        self.rng = np.random.default_rng(seed)
        self.out_rates = (flip, drop, dup)
        self.in_rates = (flip if flip_in is None else flip_in,
                         drop if drop_in is None else drop_in,
                         dup if dup_in is None else dup_in)
        self.frame_drop = frame_drop
        self.frame_dup = frame_dup
        self.delay = delay
        self.max_delay = max_delay
        self.counts = {"flip": 0, "drop": 0, "dup": 0, "frame_drop": 0, "frame_dup": 0,
                       "delay": 0}

    # ---- damage ----------------------------------------------------------------------------
    def _damage(self, data, rates):
        flip, drop, dup = rates
        if not data or (flip == 0 and drop == 0 and dup == 0):
            return data
        a = np.frombuffer(bytes(data), dtype=np.uint8).copy()
        r = self.rng.random(a.size)
        f = r < flip
        d = (r >= flip) & (r < flip + drop)
        u = (r >= flip + drop) & (r < flip + drop + dup)
        if f.any():
            bits = self.rng.integers(0, 8, int(f.sum())).astype(np.uint8)
            a[f] ^= (np.uint8(1) << bits)
        reps = np.ones(a.size, dtype=np.int64)
        reps[d] = 0
        reps[u] = 2
        self.counts["flip"] += int(f.sum())
        self.counts["drop"] += int(d.sum())
        self.counts["dup"] += int(u.sum())
        return np.repeat(a, reps).tobytes()

    def _maybe_delay(self):
        if self.delay and self.rng.random() < self.delay:
            self.counts["delay"] += 1
            time.sleep(float(self.rng.random()) * self.max_delay)

    # ---- pyserial-like surface -------------------------------------------------------------
    def write(self, data):
        self._maybe_delay()
        if self.frame_drop and self.rng.random() < self.frame_drop:
            self.counts["frame_drop"] += 1
            return len(data)
        copies = 1
        if self.frame_dup and self.rng.random() < self.frame_dup:
            self.counts["frame_dup"] += 1
            copies = 2
        for _ in range(copies):
            self.inner.write(self._damage(data, self.out_rates))
        return len(data)

    def read(self, n=1):
        data = self.inner.read(n)
        if data:
            self._maybe_delay()
        return self._damage(data, self.in_rates)

    @property
    def in_waiting(self):
        from .client import available

        return available(self.inner)

    def flush(self):
        f = getattr(self.inner, "flush", None)
        if f is not None:
            f()

    def reset_input_buffer(self):
        f = getattr(self.inner, "reset_input_buffer", None)
        if f is not None:
            f()

    def close(self):
        self.inner.close()
