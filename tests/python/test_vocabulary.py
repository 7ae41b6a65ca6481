"""One vocabulary for every command's --json result (docs/json.md): every key a command prints
is documented there, the same fact has the same key everywhere, and the old keys are aliases
holding the same value."""

import json
import os
import re

import pytest

from flipnet import cli
from flipnet.cli._vocab import ALIASES, canonical

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "json.md")


def _documented():
    """The keys in the first column of docs/json.md's tables."""
    keys = set()
    with open(DOC, encoding="utf-8") as f:
        for line in f:
            if line.startswith("| `"):
                first = line.split("|")[1]
                keys.update(re.findall(r"`([a-z_0-9]+)`", first))
    return keys


def _run(capsys, argv):
    assert cli.main(argv) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _check(result, aliases=()):
    doc = _documented()
    missing = sorted(k for k in result if k not in doc)
    assert not missing, "keys not in docs/json.md: %s" % missing
    for old in aliases:
        assert result[old] == result[ALIASES[old]], old


def test_canonical_adds_aliases_with_the_same_value():
    r = canonical({"test_acc": 0.5, "batch_size": 8}, ("test_acc", "batch"))
    assert r == {"test_acc": 0.5, "accuracy": 0.5, "batch_size": 8, "batch": 8}
    # the vocabulary key wins over a stale old one
    assert canonical({"accuracy": 0.7, "test_acc": 0.1}, ("test_acc",))["test_acc"] == 0.7


def test_every_alias_is_documented():
    doc = _documented()
    for old, new in ALIASES.items():
        assert old in doc and new in doc


def test_host_commands_speak_the_vocabulary(tmp_path, capsys, synthetic_dir):
    out = str(tmp_path / "m.flip")
    train = _run(capsys, ["train", "--data-dir", synthetic_dir, "--arch", "784-32-10",
                          "--epochs", "1", "--limit", "256", "--test-limit", "100", "--out", out,
                          "--quiet", "--json"])
    _check(train)
    assert train["command"] == "train"
    for key in ("accuracy", "train_accuracy", "samples_per_s", "batch_size", "n_train",
                "n_test", "arch", "seconds"):
        assert train[key] is not None, key
    ev = _run(capsys, ["eval", out, "--data-dir", synthetic_dir, "--limit", "100", "--json"])
    _check(ev, ("n",))
    assert ev["command"] == "eval" and ev["n_test"] == 100 and ev["accuracy"] == train["accuracy"]
    info = _run(capsys, ["info", out, "--json"])
    _check(info)
    assert info["train_accuracy"] == train["train_accuracy"]


@pytest.mark.parametrize("command", ["device train", "demo"])
def test_device_commands_speak_the_vocabulary(tmp_path, capsys, synthetic_dir, twin_exe,
                                              monkeypatch, command):
    from flipnet.device import sim

    monkeypatch.setenv("FLIPNET_TWIN", twin_exe)
    out = str(tmp_path / "d.flip")
    common = ["--data-dir", synthetic_dir, "--limit", "48", "--test-limit", "64", "--out", out,
              "--quiet", "--json", "--arch", "784-16-10", "--input", "centered"]
    if command == "demo":
        r = _run(capsys, ["demo", "--twin"] + common)
        _check(r, ("test_acc", "train_acc", "batch"))
    else:
        with sim.start_twin(twin_exe) as proc:
            r = _run(capsys, ["device", "train", "--port", proc.port] + common)
            _check(r, ("test_acc", "train_acc", "batch"))
            ev = _run(capsys, ["device", "eval", "--port", proc.port, "--data-dir",
                               synthetic_dir, "--limit", "64", "--input", "centered",
                               "--json"])
            _check(ev, ("n",))
            assert ev["command"] == "device eval" and ev["n_test"] == 64
    assert r["command"] == command
    assert r["n_train"] == 48 and r["samples"] == 48 and r["arch"] == "784-16-10"
    assert 0 <= r["accuracy"] <= 1 and 0 <= r["train_accuracy"] <= 1
    assert r["samples_per_s"] > 0 and r["batch_size"] == 8
