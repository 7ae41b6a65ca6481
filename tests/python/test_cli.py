"""The flipnet command line: train / eval / info, --json output, clean user errors."""

import json
import os
import subprocess
import sys

import pytest

import flipnet
from flipnet import cli

TINY = ["--arch", "784-32-10", "--epochs", "1", "--batch-size", "64", "--limit", "600",
        "--test-limit", "300"]


def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def last_json(out):
    lines = [ln for ln in out.splitlines() if ln.strip()]
    return json.loads(lines[-1])


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist):
    """A tiny model trained through the CLI once for the module (path, json result)."""
    path = tmp_path_factory.mktemp("cli") / "tiny.flip"
    status = cli.main(["train", *TINY, "--seed", "3", "--out", str(path), "--json", "--quiet"])
    assert status == 0
    return path


def test_train_json(capsys, tmp_path, mnist):
    out_path = tmp_path / "m.flip"
    status, out, err = run(capsys, "train", *TINY, "--out", out_path, "--json", "--p0", "0.2",
                           "--k-frac", "0.004,0.01", "--margin", "16", "--vote", "sign")
    assert status == 0, err
    res = last_json(out)
    assert res["command"] == "train" and res["dataset"] == "mnist"
    assert res["arch"] == "784-32-10" and res["epochs"] == 1 and res["n_train"] == 600
    assert res["steps"] == 10 and res["n_test"] == 300
    assert 0.0 <= res["accuracy"] <= 1.0 and res["seconds"] > 0 and res["samples_per_s"] > 0
    assert res["bytes"] == os.path.getsize(out_path) and res["weight_bytes"] > 0
    assert len(res["history"]) == 1
    assert "epoch 1/1" in err  # progress on stderr
    model = flipnet.load(out_path)
    assert model.rule["margin"] == 16 and model.rule["vote"] == "sign"
    assert model.recipe["p0"] == 0.2 and model.recipe["k_frac"] == [0.004, 0.01]
    assert model.meta["dataset"] == "mnist"


def test_train_human_output(capsys, tmp_path, mnist):
    status, out, err = run(capsys, "train", *TINY, "--recipe", "paper", "--weights", "binary",
                           "--out", tmp_path / "b.flip", "--quiet", "--no-val")
    assert status == 0, err
    assert "test accuracy" in out and "saved" in out and err == ""
    assert flipnet.load(tmp_path / "b.flip").kinds == ["binary", "binary"]


def test_eval_json(capsys, trained):
    status, out, err = run(capsys, "eval", trained, "--json", "--limit", "200")
    assert status == 0, err
    res = last_json(out)
    assert res["command"] == "eval" and res["n"] == 200 and res["dataset"] == "mnist"
    assert 0.0 <= res["accuracy"] <= 1.0 and res["samples_per_s"] > 0


def test_info_json_and_text(capsys, trained):
    status, out, err = run(capsys, "info", trained, "--json")
    assert status == 0, err
    res = last_json(out)
    assert res["arch"] == "784-32-10" and res["kinds"] == ["ternary", "ternary"]
    assert res["seed"] == 3 and res["steps"] == 10 and res["epochs"] == 1
    assert res["bytes"] == os.path.getsize(trained)
    assert res["training"][0]["where"] == "host" and res["seconds"] > 0
    status, out, _ = run(capsys, "info", trained)
    assert status == 0 and "784-32-10" in out and "bits/weight" in out


@pytest.mark.parametrize("argv,words", [
    (["info", "/nonexistent/model.flip"], "No such file"),
    (["eval", "/nonexistent/model.flip"], "No such file"),
    (["train", "--arch", "784-abc-10", "--out", ""], "bad architecture"),
    (["train", "--data-dir", "/nonexistent/data", "--out", ""], "mnist not found"),
])
def test_user_errors_are_one_clean_line(capsys, argv, words):
    status, out, err = run(capsys, *argv)
    assert status == 1
    assert err.startswith("flipnet: error: ") and words in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_arch_not_matching_data(capsys, mnist):
    status, out, err = run(capsys, "train", "--arch", "100-10", "--limit", "10", "--out", "")
    assert status == 1 and "takes 100 inputs but mnist samples have 784" in err


def test_corrupt_model_is_a_clean_error(capsys, tmp_path, trained):
    data = bytearray(trained.read_bytes())
    data[200] ^= 1  # a weight byte
    bad = tmp_path / "bad.flip"
    bad.write_bytes(bytes(data))
    status, out, err = run(capsys, "info", bad)
    assert status == 1 and "CRC" in err.upper() and "Traceback" not in err


def test_bad_usage_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--p0", "2"])
    assert info.value.code == 2
    assert cli.main([]) == 2


def _env():
    env = dict(os.environ)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(flipnet.__file__)))
    env["PYTHONPATH"] = pkg_parent + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_subprocess_json_is_last_line_and_errors_have_no_traceback(tmp_path, trained):
    p = subprocess.run([sys.executable, "-m", "flipnet", "info", str(trained), "--json"],
                       capture_output=True, text=True, env=_env(), timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1])["arch"] == "784-32-10"
    p = subprocess.run([sys.executable, "-m", "flipnet", "eval", str(tmp_path / "nope.flip")],
                       capture_output=True, text=True, env=_env(), timeout=120)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith("flipnet: error:")


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("train", "eval", "info"):
        assert cmd in out


def test_fashion_mnist_and_eval_uses_the_models_dataset(capsys, tmp_path):
    from flipnet import datasets

    if datasets.find_dataset("fashion_mnist") is None:
        pytest.skip("Fashion-MNIST not available locally")
    path = tmp_path / "f.flip"
    status, out, err = run(capsys, "train", "--dataset", "fashion_mnist", "--arch", "784-10",
                           "--epochs", "1", "--limit", "300", "--test-limit", "100",
                           "--out", path, "--json", "--quiet")
    assert status == 0, err
    assert last_json(out)["dataset"] == "fashion_mnist"
    status, out, err = run(capsys, "eval", path, "--json", "--limit", "50")
    assert status == 0, err
    assert last_json(out)["dataset"] == "fashion_mnist" and last_json(out)["n"] == 50


def test_resume_continues_training(capsys, tmp_path, trained):
    out_path = tmp_path / "more.flip"
    status, out, err = run(capsys, "train", "--resume", trained, "--epochs", "1", "--limit",
                           "600", "--test-limit", "100", "--margin", "9", "--out", out_path,
                           "--json", "--quiet")
    assert status == 0, err
    res = last_json(out)
    assert res["steps"] == 20 and res["seed"] == 3 and res["resumed_from"] == str(trained)
    m = flipnet.load(out_path)
    assert m.epochs_trained == 2 and len(m.training_log) == 2 and m.rule["margin"] == 9
    status, out, err = run(capsys, "train", "--resume", trained, "--arch", "784-10")
    assert status == 1 and "--resume keeps" in err
