"""structlog across its supported releases (pyproject.toml: ``structlog>=24.1``)."""

from __future__ import annotations

import traceback

import structlog

# structlog 26's ConsoleRenderer prints a string under "exception" as it is, a traceback
# already formatted; before 26 it warns (UserWarning, an error under -W error) on every
# such event when its exception formatter is rich's, structlog's development default.
_EXCEPTION_KEY = "exception" if int(structlog.__version__.split(".")[0]) >= 26 else "traceback"


def traceback_field(exc: BaseException) -> dict[str, str]:
    """``exc``'s traceback as text, to log as a field: never ``exc_info``, which a renderer
    that shows locals (rich's) would print, with whatever secret a frame held."""
    return {_EXCEPTION_KEY: "".join(traceback.format_exception(exc))}
