"""Host-side tooling for flipnet devices (docs/protocol.md).

- :mod:`.framing`: COBS frames with CRC-32 (pure functions),
- :mod:`.protocol`: command payloads and input packing (pure functions),
- :mod:`.client`: :class:`Device`, a protocol client over any pyserial port,
- :mod:`.model`: :func:`connect` / :class:`DeviceModel`, a model on a device shaped like
  :class:`flipnet.Model` (``fit`` on arrays or a stream of batches, ``evaluate``,
  ``predict``, ``pull``, ``save``, ``load``),
- :mod:`.session`: :func:`train_on_device` (stream a data set, train, pull; or continue
  a model pre-trained elsewhere),
- :mod:`.history`: model files to and from a device, with their history,
- :mod:`.sim`: the host twin and QEMU boards, devices without hardware,
- :mod:`.faults`: a fault-injecting port wrapper, :mod:`.selftest`: a malformed-input battery.

A library: its command line, ``flipnet device ...`` and ``flipnet demo``, is
:mod:`flipnet.cli.device`, and nothing here imports from :mod:`flipnet.cli`.
"""

from .client import Device, DeviceError, DeviceReplyError  # noqa: F401

__all__ = ["Device", "DeviceError", "DeviceReplyError"]
