"""Protocol client for a flipnet device (docs/protocol.md): any pyserial port.

    from flipnet.device import Device
    with Device("/dev/ttyACM0") as dev:          # or "COM3", "socket://127.0.0.1:4444",
        print(dev.info())                        #    a pty path, "loop://"
        dev.configure([784, 128, 10], "ternary", seed=1, batch=8)
        r = dev.train(x8, y, k=[200, 3], p_q16=[19661, 19661], calibrate=True)
        data = dev.pull()                        # the model file, CRC-checked

Stop-and-wait with retransmission: each request is sent, then the client waits for the
reply with the same sequence number; on a NAK, a damaged reply or a timeout it sends the
same frame again (the device answers repeats from its cache, so nothing runs twice).
Transport failures raise :class:`DeviceError`, naming the port and what to check; an error
answered by the device raises :class:`DeviceReplyError` (a subclass) with its status code.
"""

import random
import time

import numpy as np

from ..errors import FlipnetError
from . import protocol as P
from .framing import NAK, REPLY, FramingError, StreamDecoder, crc32, encode_frame, max_encoded_size

__all__ = ["Device", "DeviceError", "DeviceReplyError", "available"]

_HINTS = ("check that the board is connected and powered, that the flipnet firmware is "
          "flashed and running (reset the board), that the port name and baud rate are "
          "right, and that no other program (a serial monitor, another flipnet) has the port "
          "open")


class DeviceError(FlipnetError, OSError):
    """The device could not be reached or stopped answering (message says what to check)."""

    def __init__(self, message, port=None):
        FlipnetError.__init__(self, message)
        self.port = port


class DeviceReplyError(DeviceError):
    """The device answered a request with an error status (docs/protocol.md section 5)."""

    def __init__(self, message, port=None, status=None, cmd=None, detail=None):
        DeviceError.__init__(self, message, port)
        self.status = status
        self.cmd = cmd
        self.detail = detail


def _open(port, baudrate):
    try:
        import serial
    except ImportError as exc:  # pragma: no cover - pyserial is a dependency
        raise DeviceError("pyserial is not installed (pip install pyserial): %s" % exc,
                          port) from None
    try:
        return serial.serial_for_url(port, baudrate=baudrate, timeout=0.02, write_timeout=10)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise DeviceError("cannot open port %s: %s; %s" % (port, exc, _HINTS), port) from None


def available(port):
    """Bytes waiting on ``port``. pyserial's socket:// ports report at most 1 (they only
    poll with select), which makes reading a reply byte by byte slow: ask the kernel."""
    sock = getattr(port, "_socket", None)
    if sock is not None:
        try:
            import array
            import fcntl
            import termios

            buf = array.array("i", [0])
            fcntl.ioctl(sock.fileno(), termios.FIONREAD, buf)
            return max(int(buf[0]), 0)
        except (ImportError, OSError, AttributeError, ValueError):
            pass
    return port.in_waiting


class Device:
    """A flipnet device behind a serial port.

    ``port``: anything ``serial.serial_for_url`` opens (``/dev/ttyACM0``, ``COM3``,
    ``socket://host:port``, a pty path, ``loop://``), or an already open pyserial-like object
    (``read``, ``write``, ``in_waiting``). ``timeout``: seconds to wait for a reply before
    retransmitting (plus the transfer time at ``baudrate``); ``retries``: retransmissions
    before giving up with :class:`DeviceError`. ``runs``: run-code sample inputs when the
    device takes them (INFO) and that is shorter (MNIST at 8 bits: 4.5x fewer bytes).

    The inference-only firmware (INFO says so) needs no ``configure`` / ``load``: its model's
    sizes come from INFO, and ``predict`` / ``evaluate`` work right away.
    """

    def __init__(self, port, baudrate=115200, timeout=3.0, retries=10, seed=None, runs=True):
        if isinstance(port, str):
            self.port = port
            self._ser = _open(port, baudrate)
            self._own = True
        else:
            self.port = getattr(port, "port", None) or getattr(port, "name", None) or repr(port)
            self._ser = port
            self._own = False
        self.baudrate = baudrate
        self.timeout = float(timeout)
        self.retries = int(retries)
        rng = random.Random(seed) if seed is not None else random.SystemRandom()
        self._seq = rng.getrandbits(32)
        self.decoder = StreamDecoder()  # frames from the bytes read
        self.bytes_sent = 0
        self.bytes_received = 0
        self.retransmits = 0
        self.naks = 0
        self.bad_replies = 0
        self._info = None
        self._rtt = {}  # cmd -> longest clean round trip seen (s)
        self.sizes = None
        self.batch = None
        self.runs = bool(runs)
        sock = getattr(self._ser, "_socket", None)  # socket:// ports: no Nagle delays
        if sock is not None:
            try:
                import socket

                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        try:
            self._ser.reset_input_buffer()
        except Exception:  # noqa: BLE001 - not every port-like object has it
            pass

    # ---- lifetime ---------------------------------------------------------------------
    def close(self):
        if self._own and self._ser is not None:
            try:
                self._ser.close()
            except Exception:  # noqa: BLE001
                pass
        self._ser = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "Device(%r)" % self.port

    # ---- transport: raw bytes, for request() and for protocol tests (device.selftest) ------
    def write_raw(self, data):
        """Write ``data`` (bytes, already framed or deliberately not) to the port; counted in
        ``bytes_sent``. Replies to it arrive through :meth:`read_raw` and ``decoder``."""
        try:
            self._ser.write(data)
            flush = getattr(self._ser, "flush", None)
            if flush is not None:
                flush()
        except Exception as exc:  # noqa: BLE001 - pyserial raises several types
            raise DeviceError("writing to %s failed: %s; %s" % (self.port, exc, _HINTS),
                              self.port) from None
        self.bytes_sent += len(data)

    def read_raw(self):
        """The bytes the port has now (waiting up to the port's read timeout for one); counted
        in ``bytes_received``. Feed them to ``decoder`` (a
        :class:`~flipnet.device.framing.StreamDecoder`) to get frames."""
        try:
            n = available(self._ser)
            data = self._ser.read(n if n else 1)
        except Exception as exc:  # noqa: BLE001
            raise DeviceError("reading from %s failed: %s; %s" % (self.port, exc, _HINTS),
                              self.port) from None
        self.bytes_received += len(data)
        return data

    def _wait_time(self, n_out, n_in):
        # the configured timeout, plus the time the bytes need on a real UART (10 bits/byte)
        return self.timeout + 10.0 * (n_out + n_in) / max(1, self.baudrate)

    def request(self, cmd, payload=b"", reply_size=1024):
        """Send one request and return the reply payload (retransmitting as needed)."""
        if self._ser is None:
            raise DeviceError("the connection to %s is closed" % self.port, self.port)
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        seq = self._seq
        wire = encode_frame(cmd, seq, payload)
        want = cmd | REPLY
        name = P.CMD_NAMES.get(cmd, "0x%02x" % cmd)
        wait = self._wait_time(len(wire), max_encoded_size(reply_size))
        # a slow device (big model, low clock) may compute longer than the timeout: wait at
        # least 3x the longest round trip seen for this command, so as not to resend into it
        wait = max(wait, 3.0 * self._rtt.get(cmd, 0.0))
        t_first = time.monotonic()
        timeouts = 0  # waits that ended without any answer
        sends = 0     # every transmission; NAKs and damaged replies resend at once
        while True:
            if timeouts > self.retries or sends > 4 * (self.retries + 1):
                raise DeviceError(
                    "no valid reply from %s to %s after %d attempts (%d timeouts of %.1f s, %d "
                    "NAKs, %d damaged replies); %s" % (self.port, name, sends, timeouts, wait,
                                                       self.naks, self.bad_replies, _HINTS),
                    self.port)
            if sends:
                self.retransmits += 1
            sends += 1
            self.write_raw(wire)
            deadline = time.monotonic() + wait
            resend = False
            while not resend and time.monotonic() < deadline:
                data = self.read_raw()
                if not data:
                    continue
                for item in self.decoder.feed(data):
                    if isinstance(item, FramingError):
                        self.bad_replies += 1
                        resend = True  # maybe our reply: ask again (the device has it cached)
                        continue
                    if item.cmd == NAK:
                        self.naks += 1
                        if item.status == -102 and self._info is None and cmd != 0x01:
                            self.info()  # the device dropped our frame: learn its limit
                        if item.status == -102 and self._info is not None and \
                                len(payload) + 12 > self._info["max_frame"]:
                            raise DeviceReplyError(
                                "%s request of %d bytes is larger than the %d-byte frames the "
                                "device on %s accepts (smaller batch, fewer --bits, smaller "
                                "chunks)" % (name, len(payload) + 12, self._info["max_frame"],
                                             self.port), self.port, item.status, cmd)
                        resend = True
                        continue
                    if item.cmd != want or item.seq != seq:
                        continue  # a stale reply to an earlier retransmission
                    if item.status < 0:
                        err = {}
                        try:
                            err = P.parse_error(item.payload)
                        except ValueError:
                            pass
                        if item.status == P.E_INFER_ONLY:
                            raise DeviceReplyError(self._infer_only_message(name), self.port,
                                                   item.status, cmd, err.get("detail"))
                        if err and item.status == -107:
                            more = " (needs %d bytes, has %d)" % err["detail"]
                        elif err:
                            more = " (details %d, %d)" % err["detail"]
                        else:
                            more = ""
                        raise DeviceReplyError(
                            "device on %s rejected %s: %s%s" % (
                                self.port, name, P.status_name(item.status), more),
                            self.port, item.status, cmd, err.get("detail"))
                    if sends == 1:
                        rtt = time.monotonic() - t_first
                        self._rtt[cmd] = max(self._rtt.get(cmd, 0.0), rtt)
                    return item.payload
            if not resend:
                timeouts += 1

    def _infer_only_message(self, name):
        if self._info is None:
            try:
                self.info()  # to name the compiled-in model
            except DeviceError:
                pass
        model = (self._info or {}).get("model")
        what = " (its model, %s, is compiled in)" % model["arch"] if model else ""
        return ("the device on %s runs the inference-only firmware%s: no %s there (E_INFER_ONLY: "
                "no training, no model transfer); flash the training firmware to train, load or "
                "pull a model (firmware/README.md), or use predict / evaluate"
                % (self.port, what, name))

    def _coding(self):
        """The max_frame to run-code inputs for, or None."""
        if not self.runs:
            return None
        info = self.info()
        return info["max_frame"] if info.get("runs") else None

    # ---- commands ---------------------------------------------------------------------------
    def ping(self, data=b""):
        return self.request(P.CMD["PING"], data)

    def info(self, refresh=False):
        """Board, protocol/core version, RAM budget, frame sizes (dict)."""
        if self._info is None or refresh:
            self._info = P.parse_info(self.request(P.CMD["INFO"]))
            model = self._info.get("model")
            if model and self.sizes is None:  # inference-only firmware: its compiled-in model
                self.sizes = list(model["sizes"])
                self.batch = self._info["max_batch"]
        return dict(self._info)

    def stats(self):
        """Steps, samples, trained-sample counter, changes per layer, stack high-water."""
        return P.parse_stats(self.request(P.CMD["STATS"]))

    def reset(self):
        """Forget the model and counters."""
        self.request(P.CMD["RESET"], P.reset_payload(0))
        self.sizes = None
        self.batch = None

    def configure(self, sizes, kinds="ternary", seed=0, batch=8, vote="sign", filter="hurt",
                  backprop="sign", margin=0, calib_target=32, counters=False, counter_shift=0,
                  counter_threshold=0, counter_decay=0, counter_round="nearest",
                  checkpoint_every=None):
        """Create a model with fresh weights on the device (dict of its RAM plan).

        Rule options as in ``flipnet_rule``; ``counters``: False, True (int8) or the bits per
        counter (8, 4, 2), implied (int8) by a nonzero ``counter_threshold``;
        ``counter_decay`` and ``counter_round="stochastic"`` need it. ``checkpoint_every``:
        write a checkpoint to the device's flash now and after every that many steps
        (docs/protocol.md section 10)."""
        if checkpoint_every and not (self.info().get("store") or {}).get("store"):
            raise DeviceError("the device on %s has no checkpoint store (its firmware predates "
                              "checkpoints, or the board has no flash for them: the host twin "
                              "needs --flash FILE, QEMU a semihosting flash file)" % self.port,
                              self.port)
        if not counters and int(counter_threshold) > 0:
            counters = True
        r = P.parse_configure(self.request(P.CMD["CONFIGURE"], P.configure_payload(
            sizes, kinds, seed, batch, vote, filter, backprop, margin, calib_target, counters,
            counter_shift, counter_threshold, counter_decay, counter_round, checkpoint_every)))
        self.sizes = [int(s) for s in sizes]
        self.batch = int(batch)
        return r

    def _need_model(self):
        if self.sizes is None and self._info is None:
            self.info()  # the inference-only firmware tells its model's sizes
        if self.sizes is None:
            raise DeviceError("no model configured through this connection to %s (call "
                              "configure() or load() first)" % self.port, self.port)

    def train(self, x, y, k, p_q16, calibrate=False, bits=8, table=None, calibrate_after=False,
              calibrate_from=0, counter_shift=None, expected_steps=None):
        """One training step on the device; x int8 (B, n0), y (B,). Returns the step dict.

        ``calibrate`` / ``calibrate_after``: set the shifts from this batch before / after
        the step (``calibrate_from=1``: the first layer's shift kept); ``counter_shift``: the
        counters' shift of this step only (an annealing schedule), else the model's;
        ``expected_steps``: the model's step counter before the step (a device that was reset
        refuses with E_STEPS rather than apply it to an older model)."""
        self._need_model()
        payload = P.train_payload(x, y, k, p_q16, calibrate, bits, table, calibrate_after,
                                  max_frame=self._coding(), calibrate_from=calibrate_from,
                                  counter_shift=counter_shift, expected_steps=expected_steps)
        return P.parse_train(self.request(P.CMD["TRAIN"], payload), len(self.sizes) - 1)

    def _chunks(self, n):
        b = self.batch or 1
        for i in range(0, n, b):
            yield slice(i, min(n, i + b))

    def evaluate(self, x, y, bits=8, table=None):
        """Correct predictions of the device on (x, y), in batches; returns (correct, n)."""
        self._need_model()
        x = np.asarray(x, dtype=np.int8)
        y = np.asarray(y)
        correct = 0
        mf = self._coding()
        for s in self._chunks(x.shape[0]):
            r = P.parse_eval(self.request(P.CMD["EVAL"], P.eval_payload(x[s], y[s], bits, table,
                                                                       max_frame=mf)))
            correct += r["correct"]
        return correct, int(x.shape[0])

    def predict(self, x, logits=False, bits=8, table=None):
        """Predicted classes (and logits with ``logits=True``) of the device for x."""
        self._need_model()
        x = np.asarray(x, dtype=np.int8)
        classes = self.sizes[-1]
        cls, lg = [], []
        mf = self._coding()
        for s in self._chunks(x.shape[0]):
            r = P.parse_predict(self.request(P.CMD["PREDICT"],
                                             P.predict_payload(x[s], logits, bits, table,
                                                               max_frame=mf),
                                             reply_size=2 * 64 + 4 * 64 * classes),
                                s.stop - s.start, classes, logits)
            cls.append(r["classes"])
            if logits:
                lg.append(r["logits"])
        cls = np.concatenate(cls) if cls else np.zeros(0, np.int64)
        return (cls, np.concatenate(lg)) if logits else cls

    def pull(self, chunk=None):
        """The device's model as a model file (bytes), assembled from CRC-checked chunks."""
        info = self.info()
        room = info["max_reply"] - 12 - 16
        chunk = room if chunk is None else min(int(chunk), room)
        for _ in range(3):
            first = P.parse_pull(self.request(P.CMD["PULL"], P.pull_payload(0, chunk),
                                              reply_size=info["max_reply"]))
            total, crc = first["total"], first["crc"]
            parts = [first["data"]]
            got = len(first["data"])
            ok = True
            while got < total:
                r = P.parse_pull(self.request(P.CMD["PULL"], P.pull_payload(got, chunk),
                                              reply_size=info["max_reply"]))
                if r["crc"] != crc or r["total"] != total or r["offset"] != got or not r["data"]:
                    ok = False  # the model changed under us: start again
                    break
                parts.append(r["data"])
                got += len(r["data"])
            data = b"".join(parts)
            if ok and len(data) == total and crc32(data) == crc:
                return data
        raise DeviceError("pulling the model from %s failed: the assembled file does not "
                          "match the device's CRC" % self.port, self.port)

    def load(self, data, batch=8, chunk=None, raw=False):
        """Send a model file to the device; it replaces the model only if the file is valid.

        The file goes without its metadata blob (:func:`flipnet.device.history.device_file`):
        the device keeps none, and a host's training history would take RAM the device
        needs for staging. Weights, counters, shifts, rule, seed and step counter are sent
        unchanged, so the device continues exactly where the file left off. The reply dict
        has ``crc``: the CRC field of the file sent, which the device's PULL metadata names as
        ``load_crc``. ``raw=True`` sends ``data`` byte for byte, unchecked (to test the
        device's own checks)."""
        from . import history

        info = self.info()
        data = bytes(data) if raw else history.device_file(data)
        room = info["max_frame"] - 12 - 12
        chunk = room if chunk is None else min(int(chunk), room)
        total = len(data)
        off = 0
        r = None
        while True:
            piece = data[off:off + chunk]
            r = P.parse_load(self.request(P.CMD["LOAD"], P.load_payload(total, off, piece,
                                                                         batch)))
            off += len(piece)
            if r["done"] or off >= total:
                break
        try:
            from ..model import Model

            m = Model.from_bytes(data)
            self.sizes = list(m.sizes)
        except Exception:  # noqa: BLE001 - the device accepted it; sizes only for parsing
            self.sizes = self.sizes
        self.batch = int(batch)
        r["crc"] = history.file_crc(data)
        return r

    # ---- checkpoints (docs/protocol.md section 10) -------------------------------------------
    def checkpoint(self):
        """The device's checkpoint store (dict; ``checkpoint`` is None when it holds none),
        from a fresh INFO; None for firmware without checkpoints."""
        return self.info(refresh=True).get("store")

    def save(self, every=None):
        """Write a checkpoint now; with ``every``, also set the cadence (0: on demand only).
        Returns the store dict."""
        payload = P.save_payload("save") if every is None else P.save_payload("every_save", every)
        return P.parse_store(self.request(P.CMD["SAVE"], payload))

    def set_checkpoint_every(self, every):
        """Set the checkpoint cadence (steps; 0: on demand only) without writing one."""
        return P.parse_store(self.request(P.CMD["SAVE"], P.save_payload("every", every)))

    def wipe_checkpoints(self):
        """Erase every checkpoint in the device's flash (the live model stays)."""
        return P.parse_store(self.request(P.CMD["SAVE"], P.save_payload("wipe")))

    def restore(self):
        """Make the newest checkpoint in flash the live model (what a reset does at boot)."""
        r = P.parse_store(self.request(P.CMD["RESTORE"]))
        self.sizes = None  # learnt again from the model when needed
        return r

    def link_stats(self):
        return {"bytes_sent": self.bytes_sent, "bytes_received": self.bytes_received,
                "retransmits": self.retransmits, "naks": self.naks,
                "bad_replies": self.bad_replies}
