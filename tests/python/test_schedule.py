"""Host-side schedules (float math -> the core's integers), data order, recipes."""

import numpy as np
import pytest

import flipnet
from flipnet import errors, recipes
from flipnet.schedule import Schedule, shuffle_order

SHAPES = [(784, 256), (256, 256), (256, 10)]


def test_p_decays_linearly_to_p1():
    s = Schedule(p0=0.3, p1=0.01, k_frac=0.002)
    assert s.p_at(0, 101) == pytest.approx(0.3)
    assert s.p_at(50, 101) == pytest.approx(0.155)
    assert s.p_at(100, 101) == pytest.approx(0.01)
    k, p = s.step_params(0, 101, SHAPES)
    assert p == [round(0.3 * 65536)] * 3
    assert k == [round(0.002 * 784 * 256), round(0.002 * 256 * 256), round(0.002 * 2560)]
    assert s.step_params(100, 101, SHAPES)[1] == [655] * 3
    assert Schedule(p0=1.0, p1=1.0).step_params(0, 1, SHAPES)[1] == [65536] * 3


def test_k_is_at_least_one_and_at_most_the_layer():
    s = Schedule(k_frac=[1e-9, 1.0, 0.0])
    k, _ = s.step_params(0, 10, SHAPES)
    assert k == [1, 256 * 256, 0]


def test_k_frac_end_decays():
    s = Schedule(k_frac=0.01, k_frac_end=0.001)
    first = s.step_params(0, 11, SHAPES)[0]
    last = s.step_params(10, 11, SHAPES)[0]
    assert first[0] == round(0.01 * 784 * 256) and last[0] == round(0.001 * 784 * 256)


@pytest.mark.parametrize("kwargs", [{"p0": -0.1}, {"p1": 1.5}, {"k_frac": 2.0},
                                    {"k_frac": [0.1, -1]}, {"margin": -1},
                                    {"recalibrate_every": -2}])
def test_bad_schedules(kwargs):
    with pytest.raises(errors.ArgumentError):
        Schedule(**kwargs)


def test_schedule_defaults_come_from_recipes():
    s = Schedule()
    d = recipes.DEFAULT
    assert (s.p0, s.p1, s.k_frac, s.margin) == (d["p0"], d["p1"], d["k_frac"], d["margin"])
    p = Schedule.from_recipe("paper")
    assert p.margin == recipes.PAPER["margin"]
    assert s.to_dict()["p_decay"] == "linear"


def test_shuffle_order_is_a_deterministic_permutation():
    a = shuffle_order(1000, seed=5, epoch=0)
    assert sorted(a.tolist()) == list(range(1000))
    assert np.array_equal(a, shuffle_order(1000, seed=5, epoch=0))
    assert not np.array_equal(a, shuffle_order(1000, seed=5, epoch=1))
    assert not np.array_equal(a, shuffle_order(1000, seed=6, epoch=0))


def test_shuffle_order_definition():
    """argsort of flipnet_rand(seed, stream(SHUFFLE=3, 0, epoch), i), computed with the core."""
    from flipnet._core import lib

    seed, epoch, n = 9, 4, 50
    keys = [lib.flipnet_rand(seed, (3 << 56) | epoch, i) for i in range(n)]
    assert shuffle_order(n, seed, epoch).tolist() == sorted(range(n), key=lambda i: keys[i])


def test_recipes_get():
    r = recipes.get("paper", epochs=3, margin=None)
    assert r["epochs"] == 3 and r["margin"] == recipes.PAPER["margin"]
    assert r is not recipes.PAPER and set(r) == set(recipes.DEFAULT)
    r["epochs"] = 99
    assert recipes.PAPER["epochs"] != 99
    assert recipes.get({"epochs": 2})["batch_size"] == recipes.DEFAULT["batch_size"]
    with pytest.raises(errors.ArgumentError):
        recipes.get("fast")
    with pytest.raises(errors.ArgumentError):
        recipes.get(None, learning_rate=0.1)
    assert flipnet.recipes.PAPER["vote"] == "sign" and flipnet.recipes.PAPER["filter"] == "hurt"


def test_counter_shift_annealing_in_equal_parts():
    from flipnet import Schedule, recipes

    s = Schedule(recipe=recipes.get(dict(counter_shift=7, counter_shift_end=9)))
    total = 300
    shifts = [s.counter_shift_at(i, total) for i in range(total)]
    assert shifts[0] == 7 and shifts[-1] == 9
    assert [shifts.count(c) for c in (7, 8, 9)] == [100, 100, 100]
    assert shifts == sorted(shifts)
    const = Schedule(recipe=recipes.get(dict(counter_shift=5, counter_shift_end=None)))
    assert {const.counter_shift_at(i, total) for i in range(total)} == {5}
    with pytest.raises(ValueError, match="counter_shift_end"):
        Schedule(recipe=recipes.get(dict(counter_shift=7, counter_shift_end=6)))
