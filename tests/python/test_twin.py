"""Model.fit is the documented loop around the core: replaying it step by step with the NumPy
reference (python/flipnet/reference.py) gives bit-identical weights, shifts and statistics."""

import numpy as np
import pytest

import flipnet
from flipnet import recipes
from flipnet.schedule import Schedule, shuffle_order

reference = pytest.importorskip("flipnet.reference")

VOTES = {"sign": 0, "weighted": 1}
FILTERS = {"hurt": 0, "net": 1}
KINDS = {"ternary": 1, "binary": 2}


@pytest.mark.parametrize("recipe,kinds", [("default", ["ternary", "ternary", "ternary"]),
                                          ("paper", ["ternary", "binary", "ternary"])])
def test_fit_replays_bit_exactly_on_the_reference(mnist_small, recipe, kinds):
    (x, y), _ = mnist_small
    n, epochs, batch = 300, 2, 64
    x, y = x[:n], y[:n]
    sizes = [784, 32, 16, 10]
    m = flipnet.Model(sizes, kinds, seed=3, recipe=recipe)
    hist = m.fit(x, y, epochs=epochs, batch_size=batch, verbose=0)

    r = recipes.get(recipe)
    ref = reference.RefModel(sizes, [KINDS[k] for k in kinds], seed=3,
                             rule=dict(vote=VOTES[r["vote"]], filter=FILTERS[r["filter"]],
                                       backprop=0, margin=r["margin"]))
    sched = Schedule.from_recipe(r)
    x8 = flipnet.quantize(x).reshape(n, 784)
    shapes = list(zip(sizes[:-1], sizes[1:]))
    steps_per_epoch = -(-n // batch)
    total = epochs * steps_per_epoch
    step = 0
    for e in range(epochs):
        order = shuffle_order(n, 3, e)
        if e == 0:
            ref.calibrate(x8[np.sort(order[:r["calibrate_samples"]])])
        changes = [0] * len(shapes)
        correct = 0
        for s in range(steps_per_epoch):
            idx = order[s * batch:(s + 1) * batch]
            k, p = sched.step_params(step, total, shapes)
            st = ref.train_step(x8[idx], y[idx], k, p)
            changes = [a + b for a, b in zip(changes, st.changes)]
            correct += st.correct
            step += 1
        assert hist[e]["changes"] == changes
        assert hist[e]["train_acc"] == correct / n
    assert m.shifts == [int(s) for s in ref.shifts][:len(m.shifts)]
    assert (m.steps, m.samples) == (ref.steps, ref.samples)
    for layer in range(3):
        assert np.array_equal(m.weights(layer), ref.weights[layer]), layer
