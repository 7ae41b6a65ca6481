"""Progress bars on stderr (tqdm), one kind for ``Model.fit`` and device sessions."""

import sys

__all__ = ["bar"]


def bar(total, desc, enabled=True):
    """A tqdm bar counting ``total`` samples on stderr, or None (not ``enabled``, or no tqdm)."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, desc=desc, unit="sample", file=sys.stderr, leave=True,
                dynamic_ncols=True, mininterval=0.5)
