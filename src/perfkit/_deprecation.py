"""One way to warn that a name is deprecated (removed in the next release).

The old names of a renamed API stay one release as aliases that call :func:`renamed` and
answer as the new name does; CHANGELOG.md lists each with its replacement.
"""

from __future__ import annotations

import warnings

__all__ = ["renamed"]


def renamed(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn (``DeprecationWarning``, pointing at the caller's caller) that ``old`` is
    deprecated in favour of ``new``."""
    warnings.warn(
        f"{old} is deprecated (removed in the next release): use {new}",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
