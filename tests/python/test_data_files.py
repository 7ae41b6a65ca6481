"""Labelled samples from files (flipnet.data): .npz, .csv, IDX directories; float features
through the model's input scale, stored in the model file and applied again by predict; the
CLI's --data on train, eval and device train; clear errors for bad files."""

import json

import numpy as np
import pytest

import flipnet
from flipnet import cli, data
from flipnet.errors import DataFileError, InvalidFieldError
from flipnet.inputs import FeatureScale


def _features(n=400, f=12, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.normal(size=(n, f)) + y[:, None] * np.linspace(-1, 1, f) * 1.5
    return x, y


def _write_csv(path, x, y, header=True, words=None, label_first=False, delim=","):
    with open(path, "w") as f:
        names = ["f%d" % i for i in range(x.shape[1])]
        if header:
            cols = (["label"] + names) if label_first else (names + ["label"])
            f.write(delim.join(cols) + "\n")
        for row, lab in zip(x, y):
            lab = words[lab] if words else str(lab)
            vals = ["%.6f" % v for v in row]
            f.write(delim.join([lab] + vals if label_first else vals + [lab]) + "\n")


# ---- the loader --------------------------------------------------------------------------
def test_npz_train_and_test_split(tmp_path):
    x, y = _features()
    p = tmp_path / "d.npz"
    np.savez(p, x=x[:300].astype(np.float32), y=y[:300], x_test=x[300:], y_test=y[300:])
    (a, b), (c, d) = data.load_split(p)
    assert a.shape == (300, 12) and a.dtype == np.float32 and np.array_equal(b, y[:300])
    assert c.shape == (100, 12) and np.array_equal(d, y[300:])
    assert data.has_split(p, "test")


@pytest.mark.parametrize("header", [True, False])
@pytest.mark.parametrize("delim", [",", ";", "\t"])
def test_csv_header_detection_and_last_column_label(tmp_path, header, delim):
    x, y = _features(50)
    p = tmp_path / "d.csv"
    _write_csv(p, x, y, header=header, delim=delim)
    xs, ys = data.load(p)
    assert xs.dtype == np.float64 and xs.shape == (50, 12)
    assert np.allclose(xs, x, atol=1e-6) and np.array_equal(ys, y)


def test_csv_label_by_name_or_index_and_words(tmp_path):
    x, y = _features(60)
    p = tmp_path / "d.csv"
    _write_csv(p, x, y, words=["walk", "rest", "run"], label_first=True)
    d = data.load(p, label="label")
    assert d.classes == ["rest", "run", "walk"]  # sorted, numbered
    assert [d.classes[i] for i in d.y[:5]] == [["walk", "rest", "run"][i] for i in y[:5]]
    d0 = data.load(p, label=0)
    assert np.array_equal(d0.x, d.x) and np.array_equal(d0.y, d.y)
    # a test file numbers its words as the training file did
    q = tmp_path / "t.csv"
    _write_csv(q, x[:3], np.array([1, 1, 1]), words=["walk", "rest", "run"], label_first=True)
    assert list(data.load(q, label=0, classes=d.classes).y) == [0, 0, 0]


def test_csv_holdout_is_seeded_and_disjoint(tmp_path):
    x, y = _features(100)
    p = tmp_path / "d.csv"
    _write_csv(p, x, y)
    (a, b), (c, d) = data.load_split(p, seed=3)
    assert len(a) == 80 and len(c) == 20
    (a2, _), (c2, _) = data.load_split(p, seed=3)
    assert np.array_equal(a, a2) and np.array_equal(c, c2)
    rows = {tuple(r) for r in a}
    assert not any(tuple(r) in rows for r in c)


def test_idx_directory(synthetic_dir, synthetic):
    (x, y), (xt, yt) = data.load_split(synthetic_dir)
    (sx, sy), (sxt, syt) = synthetic
    assert x.dtype == np.uint8 and np.array_equal(x, sx) and np.array_equal(yt, syt)


@pytest.mark.parametrize("content, words", [
    ("", "empty"),
    ("a,b,label\n", "only a header"),
    ("1,2,0\n3,4\n", "line 2 has 2 columns"),
    ("1,2,0\n3,x,1\n", "line 2, column 2"),
    ("1,2,0\n3,nan,1\n", "not a finite number"),
    ("1,2,0.5\n3,4,1\n", "not a class index"),
])
def test_bad_csv_files_say_what_is_wrong(tmp_path, content, words):
    p = tmp_path / "bad.csv"
    p.write_text(content)
    with pytest.raises(DataFileError, match=words) as e:
        data.load(p)
    assert str(p) in str(e.value)


def test_bad_npz_and_paths(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, features=np.zeros((3, 2)), y=np.zeros(3, int))
    with pytest.raises(DataFileError, match="no array 'x'.*'features'"):
        data.load(p)
    np.savez(p, x=np.zeros((3, 2)), y=np.zeros(4, int))
    with pytest.raises(DataFileError, match="3 samples but 4 labels"):
        data.load(p)
    np.savez(p, x=np.zeros((3, 2)), y=np.array([0.0, 1.5, 2.0]))
    with pytest.raises(DataFileError, match="non-integer"):
        data.load(p)
    np.savez(p, x=np.zeros((3, 2)), y=np.zeros(3, int))
    with pytest.raises(DataFileError, match="x_test"):
        data.load(p, split="test")
    with pytest.raises(DataFileError, match="no such file"):
        data.load(tmp_path / "missing.csv")
    (tmp_path / "d.parquet").write_bytes(b"x")
    with pytest.raises(DataFileError, match="unknown data file type"):
        data.load(tmp_path / "d.parquet")
    with pytest.raises(DataFileError, match="no train split"):
        data.load(tmp_path)
    with pytest.raises(DataFileError, match="no column named 'nope'"):
        _write_csv(tmp_path / "h.csv", np.zeros((2, 2)), [0, 1])
        data.load(tmp_path / "h.csv", label="nope")


# ---- the input scale, stored and applied again ----------------------------------------
def test_float_features_scale_is_stored_and_applied_by_predict(tmp_path):
    x, y = _features()
    m = flipnet.Model([12, 32, 3], seed=1, input_scale="minmax")
    m.fit(x[:300], y[:300], epochs=2, verbose=0)
    assert isinstance(m.input_scale, FeatureScale) and m.input_scale.method == "minmax"
    assert m.input_scale == FeatureScale.fit(x[:300], "minmax")
    p = str(tmp_path / "m.flip")
    m.save(p)
    m2 = flipnet.load(p)
    assert m2.input_scale == m.input_scale
    assert np.array_equal(m2.predict(x[300:]), m.predict(x[300:]))
    # the same as quantizing by hand and giving int8 samples
    x8 = m.input_scale.apply(x[300:])
    assert x8.dtype == np.int8 and np.array_equal(m2.predict(x8), m.predict(x[300:]))
    # the formula of docs/data.md
    s = m.input_scale
    want = np.clip(np.rint((x[300:] - s.offset) * s.scale), -127, 127)
    assert np.array_equal(x8, want.astype(np.int8))


def test_old_files_load_and_a_malformed_scale_is_refused(tmp_path):
    from flipnet import metadata

    m = flipnet.Model([12, 16, 3], seed=0)
    blob = json.loads(metadata.encode(m))
    assert blob["input_scale"] is None
    del blob["input_scale"]  # a file from before the key
    m2 = flipnet.Model.from_bytes(m.to_bytes())
    metadata.apply(m2, json.dumps(blob).encode())
    assert m2.input_scale is None
    for bad in ({"offset": [0.0] * 5, "scale": [1.0] * 5}, {"offset": [0.0] * 12},
                "std-ish", {"offset": [0.0] * 12, "scale": [-1.0] * 12}):
        blob["input_scale"] = bad
        with pytest.raises(InvalidFieldError, match="input_scale"):
            metadata.apply(m2, json.dumps(blob).encode())


# ---- the CLI ---------------------------------------------------------------------------------
def _last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_cli_train_and_eval_on_a_csv(tmp_path, capsys):
    x, y = _features()
    p = tmp_path / "motions.csv"
    _write_csv(p, x, y, words=["walk", "rest", "run"])
    out = str(tmp_path / "m.flip")
    assert cli.main(["train", "--data", str(p), "--arch", "12-64-3", "--epochs", "4",
                     "--input-scale", "std", "--out", out, "--quiet", "--json"]) == 0
    r = _last_json(capsys)
    assert r["dataset"] == "motions.csv" and r["n_train"] == 320 and r["n_test"] == 80
    assert r["accuracy"] > 0.6 and r["input_scale"]["method"] == "std"
    m = flipnet.load(out)
    assert m.meta["classes"] == ["rest", "run", "walk"]
    assert cli.main(["eval", out, "--data", str(p), "--json"]) == 0
    ev = _last_json(capsys)
    d = data.load(p, classes=m.meta["classes"])
    assert ev["n_test"] == 400 and ev["accuracy"] == m.evaluate(d.x, d.y)
    # the arch follows the data when not given
    assert cli.main(["train", "--data", str(p), "--epochs", "1", "--out", "", "--quiet",
                     "--json", "--recipe", "paper"]) == 0
    assert _last_json(capsys)["arch"].startswith("12-")


def test_cli_errors_for_bad_data(tmp_path, capsys):
    p = tmp_path / "bad.csv"
    p.write_text("1,2,0\n3,4\n")
    assert cli.main(["train", "--data", str(p), "--out", ""]) == 1
    e = capsys.readouterr().err
    assert "line 2 has 2 columns" in e and "Traceback" not in e
    assert cli.main(["train", "--data-dir", "/nonexistent", "--input-scale", "std",
                     "--out", ""]) == 1
    assert "--input-scale is for float features" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a usage error (status 2) naming the choices
        cli.main(["train", "--input-scale", "sideways", "--out", ""])
    assert "std, minmax, absmax" in capsys.readouterr().err


def test_cli_device_train_on_an_npz(tmp_path, capsys, twin_exe):
    from flipnet.device import sim

    x, y = _features(500)
    p = tmp_path / "d.npz"
    np.savez(p, x=x[:400].astype(np.float32), y=y[:400], x_test=x[400:], y_test=y[400:])
    out = str(tmp_path / "dev.flip")
    with sim.start_twin(twin_exe) as proc:
        assert cli.main(["device", "train", "--port", proc.port, "--data", str(p), "--epochs",
                         "3", "--arch", "12-48-3", "--out", out, "--quiet", "--json"]) == 0
    r = _last_json(capsys)
    assert r["accuracy"] > 0.6 and r["n_train"] == 400 and r["n_test"] == 100
    assert r["data"] == str(p) and r["input_scale"]["method"] == "std"
    assert r["samples"] == 3 * 400  # all of --data (not --dataset's default share)
    m = flipnet.load(out)
    assert m.input_scale == FeatureScale.fit(x[:400].astype(np.float32), "std")
    assert m.evaluate(x[400:], y[400:]) == r["accuracy"]  # the pulled model reads the floats
