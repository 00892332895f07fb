"""Named job processors taking one typed (msgspec Struct) payload.

::

    class SalesPayload(msgspec.Struct):
        period: Literal["daily", "weekly"]

    @processor("analytics.sales_aggregation", queue="analytics")
    def sales_aggregation(payload: SalesPayload) -> dict[str, int]: ...

Enqueuing by name validates the payload before anything is written to Redis. The RQ
job names the decorated function by its import path, so a worker finds it by importing
its module (the processor must be a module-level function); the payload travels as JSON
and is validated again in the worker before the function runs.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any, Generic, TypeVar, get_type_hints

import msgspec

from perfkit._acompat import is_async_callable
from perfkit._errors import JobError, PayloadError, PermanentJobError
from perfkit.jobs.limits import Limit, check_limits

__all__ = ["Processor", "get_processor", "processor", "processor_at", "processors"]

P = TypeVar("P", bound=msgspec.Struct)
R = TypeVar("R")

_REGISTRY: dict[str, Processor[Any, Any]] = {}
# The same processors by import path: what a worker reads from a job.
_BY_PATH: dict[str, Processor[Any, Any]] = {}

ExceptionTypes = tuple[type[BaseException], ...]


def _validation_error(name: str, exc: msgspec.ValidationError) -> PayloadError:
    # msgspec names the field as a path ("... - at `$.to`"); keep it in the message.
    return PayloadError(f"payload for processor {name!r} is not valid: {exc}")


@dataclass(eq=False, repr=False)
class Processor(Generic[P, R]):
    """A registered processor: call it with a payload (Struct or mapping) to run it.

    ``retry_on``: only these exceptions are retried (None: any); ``no_retry_on``: these
    fail at once. :class:`~perfkit.PermanentJobError` always fails at once.
    """

    name: str
    func: Callable[[P], R]
    payload_type: type[P]
    queue: str
    path: str
    _: KW_ONLY
    retry_on: ExceptionTypes | None = None
    no_retry_on: ExceptionTypes = ()
    limits: tuple[Limit, ...] = ()

    def retries(self, exc: BaseException) -> bool:
        """Whether a failure with ``exc`` is worth retrying (transient) for this processor."""
        if isinstance(exc, (PermanentJobError, *self.no_retry_on)):
            return False
        return self.retry_on is None or isinstance(exc, self.retry_on)

    def validate(self, payload: Any) -> P:
        """``payload`` as this processor's Struct; raises :class:`PayloadError` naming the field."""
        if isinstance(payload, self.payload_type):
            # Re-check constraints (Meta bounds...) that constructing a Struct skips.
            payload = msgspec.to_builtins(payload)
        elif payload is None:
            payload = {}
        elif isinstance(payload, msgspec.Struct):
            raise PayloadError(
                f"payload for processor {self.name!r} must be a {self.payload_type.__name__} "
                f"or a mapping, got {type(payload).__name__}"
            )
        elif not isinstance(payload, Mapping):
            raise PayloadError(
                f"payload for processor {self.name!r} must be a mapping, "
                f"got {type(payload).__name__}"
            )
        try:
            return msgspec.convert(payload, self.payload_type)
        except msgspec.ValidationError as exc:
            raise _validation_error(self.name, exc) from exc

    def __repr__(self) -> str:
        return f"Processor({self.name!r}, queue={self.queue!r}, path={self.path!r})"


def _payload_type(name: str, func: Callable[..., Any]) -> type[msgspec.Struct]:
    parameters = list(inspect.signature(func).parameters.values())
    if len(parameters) != 1:
        raise JobError(f"processor {name!r} must take exactly one payload parameter")
    hints = get_type_hints(func)
    annotation = hints.get(parameters[0].name)
    if not (isinstance(annotation, type) and issubclass(annotation, msgspec.Struct)):
        raise JobError(f"processor {name!r}: annotate its parameter with a msgspec.Struct type")
    return annotation


def _exception_types(name: str, option: str, value: Any) -> ExceptionTypes:
    types = value if isinstance(value, tuple) else (value,)
    if not all(isinstance(t, type) and issubclass(t, BaseException) for t in types):
        raise JobError(f"processor {name!r}: {option}= takes exception classes, got {value!r}")
    return types


def processor(
    name: str,
    *,
    queue: str,
    retry_on: type[BaseException] | ExceptionTypes | None = None,
    no_retry_on: type[BaseException] | ExceptionTypes = (),
    limits: Iterable[Limit] = (),
) -> Callable[[Callable[[P], R]], Callable[[Any], R]]:
    """Register the decorated function as the processor ``name`` on ``queue``.

    The function takes one parameter annotated with a msgspec Struct type. The decorated
    function accepts the Struct or a mapping (as a worker passes it) and validates it; an
    ``async def`` function stays async (a worker runs it on its event loop).
    Registering a name twice with another function raises :class:`JobError`.
    ``retry_on`` / ``no_retry_on`` (exception classes) say which failures are retried:
    by default every exception but :class:`~perfkit.PermanentJobError` (and so
    :class:`PayloadError`) is. ``limits`` (:class:`~perfkit.jobs.limits.Concurrency`,
    :class:`~perfkit.jobs.limits.Rate`) apply to every job of the processor, across all workers.
    """
    checked_limits = check_limits(f"processor {name!r}", limits)
    retried = None if retry_on is None else _exception_types(name, "retry_on", retry_on)
    not_retried = _exception_types(name, "no_retry_on", no_retry_on)

    def decorate(func: Callable[[P], R]) -> Callable[[Any], R]:
        payload_type: type[Any] = _payload_type(name, func)
        qualname = func.__qualname__
        if "<locals>" in qualname or func.__module__ == "__main__":
            raise JobError(
                f"processor {name!r} must be a module-level function of an importable "
                f"module (got {func.__module__}.{qualname}): workers import it by path"
            )
        path = f"{func.__module__}.{qualname}"
        existing = _REGISTRY.get(name)
        if existing is not None and existing.path != path:
            raise JobError(f"processor {name!r} is already registered by {existing.path}")
        entry: Processor[Any, R] = Processor(
            name,
            func,
            payload_type,
            queue,
            path,
            retry_on=retried,
            no_retry_on=not_retried,
            limits=checked_limits,
        )

        run: Callable[[Any], Any]
        if is_async_callable(func):
            # An async wrapper, so that workers see an async job (asyncrunner).
            @functools.wraps(func)
            async def run(payload: Any) -> Any:
                return await func(entry.validate(payload))
        else:

            @functools.wraps(func)
            def run(payload: Any) -> R:
                return func(entry.validate(payload))

        run.processor = entry  # type: ignore[attr-defined]
        _REGISTRY[name] = entry
        _BY_PATH[path] = entry
        return run

    return decorate


def get_processor(name_or_func: str | Callable[..., Any]) -> Processor[Any, Any]:
    """The processor registered under a name (or for a decorated function).

    Raises :class:`PayloadError` for an unknown name, so that enqueuing one is refused
    the same way as a bad payload.
    """
    if isinstance(name_or_func, str):
        found = _REGISTRY.get(name_or_func)
        if found is None:
            known = ", ".join(sorted(_REGISTRY)) or "none"
            raise PayloadError(f"no processor named {name_or_func!r} (registered: {known})")
        return found
    entry = getattr(name_or_func, "processor", None)
    if not isinstance(entry, Processor):
        raise JobError(f"{name_or_func!r} is not a registered processor")
    return entry


def processor_at(path: str) -> Processor[Any, Any] | None:
    """The processor whose function lives at import path ``path``, if one is registered."""
    return _BY_PATH.get(path)


def processors() -> dict[str, Processor[Any, Any]]:
    """Every registered processor by name (a copy)."""
    return dict(_REGISTRY)
