"""One vocabulary for the ``--json`` results of every ``flipnet`` command (docs/json.md).

The same fact has the same key in every command: ``accuracy`` (test accuracy of the final
model), ``train_accuracy`` (running accuracy of the training forward passes), ``samples_per_s``
(training throughput), ``batch_size``, ``n_train`` / ``n_test``, ``arch``, ... . Keys that
older releases used for a fact that now has its vocabulary name are kept for one release as
aliases holding the same value (:data:`ALIASES`); new code should read the vocabulary names.
"""

__all__ = ["ALIASES", "canonical"]

#: old key -> its vocabulary key (kept in the JSON for one release, same value)
ALIASES = {
    "test_acc": "accuracy",
    "train_acc": "train_accuracy",
    "batch": "batch_size",
    "n": "n_test",
}


def canonical(result, old=()):
    """``result`` (a dict) with the vocabulary key of each old key of ``old`` that it holds
    (the vocabulary key's value wins where both are set), and the old key set to the same
    value, as an alias for one release."""
    out = dict(result)
    for key in old:
        new = ALIASES[key]
        if new not in out and key in out:
            out[new] = out[key]
        if new in out:
            out[key] = out[new]
    return out
