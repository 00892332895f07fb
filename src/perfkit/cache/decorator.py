"""``@cached_query``: cache what a function returns, keyed by its arguments."""

from __future__ import annotations

import functools
import hashlib
import inspect
import sys
import threading
import typing
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    ParamSpec,
    Protocol,
    Self,
    TypeVar,
    cast,
    overload,
)

import msgspec

from perfkit import _defaults
from perfkit._acompat import is_async_callable
from perfkit._errors import ArgumentError, ArgumentTypeError
from perfkit.cache._base import check_key, resolve_ttl, validate_tags
from perfkit.cache._codec import MISSING
from perfkit.cache._stale import StalePolicy
from perfkit.cache._sync import RedisService

if TYPE_CHECKING:
    # Imported on first use (see _is_async_service): a sync-only application never loads
    # the async service.
    from perfkit.cache._aio import AsyncRedisService

__all__ = [
    "AsyncCachedFunction",
    "CachedFunction",
    "CachedQueryDecorator",
    "Serializer",
    "cached_query",
    "get_default_cache",
    "set_default_cache",
]

P = ParamSpec("P")
P2 = ParamSpec("P2")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class CachedFunction(Protocol[P, R_co]):
    """A sync function decorated with :func:`cached_query`: called as before, plus helpers
    taking the same arguments."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co:
        """The cached value for these arguments (computed and cached on a miss)."""
        ...

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Drop the entry for these arguments."""
        ...

    def refresh(self, *args: P.args, **kwargs: P.kwargs) -> R_co:
        """Recompute and cache the value for these arguments, even on a hit."""
        ...

    def cache_key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The cache key (without the namespace) of these arguments."""
        ...

    # A decorated method: called through an instance, it is bound like any function; the
    # helpers are reached through the class (``Repo.find.invalidate(repo, 1)``).
    @overload
    def __get__(self, instance: None, owner: type[Any], /) -> Self: ...

    @overload
    def __get__(
        self: CachedFunction[Concatenate[Any, P2], R], instance: object, owner: type[Any], /
    ) -> Callable[P2, R]: ...


class AsyncCachedFunction(Protocol[P, R_co]):
    """An async function decorated with :func:`cached_query`; as :class:`CachedFunction`,
    with ``invalidate`` and ``refresh`` awaited."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R_co]:
        """The cached value for these arguments (computed and cached on a miss)."""
        ...

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[None]:
        """Drop the entry for these arguments."""
        ...

    def refresh(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R_co]:
        """Recompute and cache the value for these arguments, even on a hit."""
        ...

    def cache_key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The cache key (without the namespace) of these arguments."""
        ...

    @overload
    def __get__(self, instance: None, owner: type[Any], /) -> Self: ...

    @overload
    def __get__(
        self: AsyncCachedFunction[Concatenate[Any, P2], R],
        instance: object,
        owner: type[Any],
        /,
    ) -> Callable[P2, Coroutine[Any, Any, R]]: ...


class CachedQueryDecorator(Protocol):
    """What ``cached_query(...)`` returns: applied to a function, its typed cached twin."""

    # A coroutine function is also a Callable[P, R] (R a coroutine): the async overload
    # must come first, which mypy flags as an overlap.
    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, func: Callable[P, Coroutine[Any, Any, R]]
    ) -> AsyncCachedFunction[P, R]: ...

    @overload
    def __call__(self, func: Callable[P, R]) -> CachedFunction[P, R]: ...


class Serializer(Protocol):
    """Turns values of a type perfkit cannot encode into bytes and back (``serializer=``)."""

    def dumps(self, value: Any, /) -> bytes:
        """The bytes to cache for ``value``."""
        ...

    def loads(self, data: bytes, /) -> Any:
        """The value ``data`` was made from."""
        ...


# The default services, sync (False) and async (True): a process-wide default.
_services: _defaults.Slot[dict[bool, RedisService | AsyncRedisService]] = _defaults.slot(
    "cache.default", dict
)
_defaults_lock = threading.Lock()
_encoder = msgspec.msgpack.Encoder()
_MEMO_TYPES = frozenset({str, int, type(None)})
_MEMO_SIZE = 4096
_REQUIRED = object()  # a parameter without a default, not given yet
# Leading parameters left out of the key: the instance or class of a method.
_RECEIVERS = ("self", "cls")


def _is_async_service(service: object) -> bool:
    """Whether ``service`` is an AsyncRedisService, without importing that module: while it
    is not loaded, nothing can be one."""
    module = sys.modules.get("perfkit.cache._aio")
    return module is not None and isinstance(service, module.AsyncRedisService)


def get_default_cache(*, asynchronous: bool = False) -> RedisService | AsyncRedisService:
    """The service ``cached_query`` uses when given none: created from the environment on
    first use (one sync and one async service per process)."""
    with _defaults_lock:
        found = _services.value.get(asynchronous)
        if found is not None:
            return found
        if asynchronous:
            from perfkit.cache._aio import AsyncRedisService

            service: RedisService | AsyncRedisService = AsyncRedisService.from_env()
        else:
            service = RedisService.from_env()
        _services.value[asynchronous] = service
        return service


def set_default_cache(service: RedisService | AsyncRedisService | None) -> None:
    """Replace the default service of its kind (sync or async); ``None`` resets both."""
    with _defaults_lock:
        if service is None:
            _services.value.clear()
        else:
            _services.value[_is_async_service(service)] = service


def _argument_digest(name: str, arguments: dict[str, Any]) -> str:
    try:
        # The values in signature order: the names are the function's, already in the key.
        encoded = _encoder.encode(list(arguments.values()))
    except (TypeError, OverflowError):
        for argument, value in arguments.items():
            try:
                _encoder.encode(value)
            except (TypeError, OverflowError) as exc:
                raise ArgumentTypeError(
                    f"cached_query({name}): argument {argument!r} of type "
                    f"{type(value).__name__} cannot be part of a cache key ({exc}); "
                    "pass key='...' with a template to build the key yourself"
                ) from exc
        raise
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()


def _binder(
    signature: inspect.Signature, name: str
) -> Callable[[tuple[Any, ...], dict[str, Any]], dict[str, Any]]:
    """A function binding call arguments to parameter names, defaults applied, in signature
    order. ``Signature.bind`` would be most of a hit's cost, so plain signatures (no
    ``*args``/``**kwargs``, no positional-only) take a list-only path; anything else, and
    every call that does not fit, goes through ``bind`` (which also words the errors)."""
    params = list(signature.parameters.values())
    names = tuple(p.name for p in params)
    index = {n: i for i, n in enumerate(names)}
    n_positional = sum(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)
    # Keyword-only parameters follow the positional ones, so list order is signature order.
    fill = [_REQUIRED if p.default is p.empty else p.default for p in params]
    simple = all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params)

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if simple and len(args) <= n_positional:
            values = [*args, *fill[len(args) :]]
            for keyword, value in kwargs.items():
                position = index.get(keyword)
                if position is None or position < len(args):
                    break  # unknown, or given twice: let bind() word the error
                values[position] = value
            else:
                for value in values:
                    if value is _REQUIRED:
                        break
                else:
                    return dict(zip(names, values, strict=True))
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ArgumentTypeError(f"{name}(): {exc}") from exc
        bound.apply_defaults()
        return dict(bound.arguments)

    return bind


def cached_query(
    ttl: float | None = None,
    tags: Sequence[str] = (),
    *,
    cache: RedisService | AsyncRedisService | None = None,
    key: str | None = None,
    l1: bool = True,
    serializer: Serializer | None = None,
    stale_ttl: float | None = None,
    stale_if_error: bool = False,
    early_refresh: float | None = None,
) -> CachedQueryDecorator:
    """Cache the results of a sync or async function.

    The key is the function's module and qualified name plus its arguments bound to its
    signature (defaults applied), msgspec-encoded and hashed, or ``key`` formatted with the
    arguments (``"products:{category}:{page}"``). ``tags`` are templates filled the same
    way. Hits are decoded into the return annotation when there is one (msgspec Structs,
    dataclasses, attrs classes, pydantic models and containers of them). The function
    gains ``.invalidate(...)``, ``.refresh(...)`` and ``.cache_key(...)``, typed with its
    parameters (:class:`CachedFunction`, :class:`AsyncCachedFunction`). ``l1=False`` keeps
    this function's results out of the service's L1 near cache (when it has one).
    ``serializer``: an object with ``dumps(value) -> bytes`` and ``loads(bytes)`` for
    values of any other type (its bytes are cached; only use one whose ``loads`` is safe
    on what your Redis holds: never ``pickle``).

    ``stale_ttl``: seconds after expiry in which a caller gets the old value at once while
    one refresh (one across every process, through the stampede lock) runs in the
    background of the process that claimed it. ``stale_if_error``: when that refresh
    raises, keep serving the old value until the window ends (without it, the failure
    drops the old value and the next caller gets the error). ``early_refresh``: the XFetch
    ``beta`` (``1.0`` usual, larger is earlier) of a probabilistic background refresh
    shortly before expiry; off by default. Invalidation is not expiry: after
    ``invalidate_tags``, ``delete`` or ``invalidate_pattern`` the old value is never
    served, stale or not (see docs/cache.md).
    """
    if isinstance(tags, str):
        raise ArgumentTypeError(f"tags must be a list of strings, not the string {tags!r}")
    tag_templates = tuple(tags)
    if serializer is not None and not all(
        callable(getattr(serializer, method, None)) for method in ("dumps", "loads")
    ):
        raise ArgumentTypeError(
            f"serializer must have dumps(value) -> bytes and loads(bytes) methods, got "
            f"{type(serializer).__name__}"
        )
    resolve_ttl(ttl, 0)  # a bad ttl fails where the function is decorated, not at its first call
    policy = StalePolicy.of(stale_ttl, stale_if_error, early_refresh)

    def decorate(func: Callable[..., Any]) -> Any:
        signature = inspect.signature(func)
        is_async = is_async_callable(func)
        name = f"{func.__module__}.{func.__qualname__}"
        skip = next(iter(signature.parameters), None)
        skip = skip if skip in _RECEIVERS else None
        if cache is not None and _is_async_service(cache) != is_async:
            kind = "an async" if is_async else "a sync"
            raise ArgumentTypeError(
                f"cached_query({name}): {kind} function needs "
                f"{'AsyncRedisService' if is_async else 'RedisService'}, got "
                f"{type(cache).__name__}"
            )
        # With a serializer the cache holds its bytes: hits are decoded as bytes, then loads().
        return_type: list[Any] = [] if serializer is None else [bytes]

        def decode_type() -> Any:
            # Resolved on first call, so annotations may name types defined later.
            if not return_type:
                try:
                    hint = typing.get_type_hints(func).get("return", Any)
                except NameError as exc:
                    raise ArgumentTypeError(
                        f"cached_query({name}): cannot resolve the return annotation "
                        f"({exc}); define the type at module level so hits can be "
                        "decoded into it"
                    ) from exc
                return_type.append(None if hint is Any or hint is type(None) else hint)
            return return_type[0]

        bind = _binder(signature, name)

        # Keys of recent calls whose arguments are all str/int/None: building a key is most
        # of a hit's CPU time. Exact types only, so 1, 1.0 and True never share an entry.
        memo: dict[tuple[Any, ...], tuple[str, tuple[str, ...]]] = {}

        def resolve(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
            given = args[1:] if skip is not None else args
            # The type checks inline, not in a helper: a call is a good part of an L1 hit.
            for value in given:
                if type(value) not in _MEMO_TYPES:
                    return compute(args, kwargs)
            for value in kwargs.values():
                if type(value) not in _MEMO_TYPES:
                    return compute(args, kwargs)
            # Positional arguments are never tuples here, so the two shapes cannot meet.
            memo_key = (given, *kwargs.items()) if kwargs else given
            known = memo.get(memo_key)
            if known is None:
                known = compute(args, kwargs)
                if len(memo) >= _MEMO_SIZE:
                    memo.clear()
                memo[memo_key] = known
            return known

        def compute(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
            arguments = bind(args, kwargs)
            if skip is not None:
                arguments.pop(skip, None)
            try:
                cache_key = (
                    key.format(**arguments)
                    if key is not None
                    else f"cq:{name}:{_argument_digest(name, arguments)}"
                )
                filled = tuple(template.format(**arguments) for template in tag_templates)
            except (KeyError, IndexError, AttributeError) as exc:
                raise ArgumentError(
                    f"cached_query({name}): template refers to {exc} which is not an argument"
                ) from exc
            # Checked here, once per memoized call, rather than by the service on every hit.
            return check_key(cache_key), validate_tags(filled)

        def service() -> Any:
            return cache if cache is not None else get_default_cache(asynchronous=is_async)

        load = func if serializer is None else _dumping(func, serializer, is_async)

        def refresh(*args: Any, **kwargs: Any) -> Any:
            # The async service's _load returns a coroutine, which the caller awaits: one
            # function serves both kinds.
            cache_key, filled = resolve(args, kwargs)
            return service()._load(
                cache_key, lambda: load(*args, **kwargs), ttl, filled, None, refresh=True,
                policy=policy,
            )  # fmt: skip

        if is_async:

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                cache_key, filled = resolve(args, kwargs)
                # Inlined service() and decode_type(): calls are a good part of an L1 hit.
                svc = cache if cache is not None else get_default_cache(asynchronous=True)
                type_ = return_type[0] if return_type else decode_type()
                if l1:
                    value = svc._cached_hit(cache_key, type_)
                    if value is not MISSING:
                        return value
                # _load directly: a Redis hit is found inside it, so no frame in between.
                return await svc._load(
                    cache_key, lambda: load(*args, **kwargs), ttl, filled, type_, l1=l1,
                    policy=policy,
                )  # fmt: skip

            async def async_invalidate(*args: Any, **kwargs: Any) -> None:
                await service().delete(resolve(args, kwargs)[0])

            wrapper: Any = async_wrapper
            wrapper.invalidate = async_invalidate
        else:

            @functools.wraps(func)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                cache_key, filled = resolve(args, kwargs)
                svc = cache if cache is not None else get_default_cache()
                type_ = return_type[0] if return_type else decode_type()
                if l1:
                    value = svc._cached_hit(cache_key, type_)
                    if value is not MISSING:
                        return value
                return svc._load(
                    cache_key, lambda: load(*args, **kwargs), ttl, filled, type_, l1=l1,
                    policy=policy,
                )  # fmt: skip

            def sync_invalidate(*args: Any, **kwargs: Any) -> None:
                service().delete(resolve(args, kwargs)[0])

            wrapper = sync_wrapper
            wrapper.invalidate = sync_invalidate
        wrapper.refresh = refresh
        if serializer is not None:
            wrapper = _loading(wrapper, serializer, is_async)
        wrapper.cache_key = lambda *args, **kwargs: resolve(args, kwargs)[0]
        return wrapper

    return cast(CachedQueryDecorator, decorate)


def _dumping(func: Callable[..., Any], serializer: Serializer, is_async: bool) -> Any:
    """``func`` returning ``serializer.dumps`` of its value: what a miss caches."""
    if is_async:

        async def adumps(*args: Any, **kwargs: Any) -> bytes:
            return serializer.dumps(await func(*args, **kwargs))

        return adumps

    def dumps(*args: Any, **kwargs: Any) -> bytes:
        return serializer.dumps(func(*args, **kwargs))

    return dumps


def _loading(cached: Any, serializer: Serializer, is_async: bool) -> Any:
    """The cached function (and its ``refresh``) returning ``serializer.loads`` of the
    bytes the cache holds, so hits and misses return the same kind of value."""
    refresh = cached.refresh
    if is_async:

        @functools.wraps(cached)
        async def aloaded(*args: Any, **kwargs: Any) -> Any:
            return serializer.loads(await cached(*args, **kwargs))

        async def arefresh(*args: Any, **kwargs: Any) -> Any:
            return serializer.loads(await refresh(*args, **kwargs))

        wrapper: Any = aloaded
        wrapper.refresh = arefresh
    else:

        @functools.wraps(cached)
        def loaded(*args: Any, **kwargs: Any) -> Any:
            return serializer.loads(cached(*args, **kwargs))

        def sync_refresh(*args: Any, **kwargs: Any) -> Any:
            return serializer.loads(refresh(*args, **kwargs))

        wrapper = loaded
        wrapper.refresh = sync_refresh
    wrapper.invalidate = cached.invalidate
    return wrapper
