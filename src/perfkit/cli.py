"""The ``perfkit`` command line: ``perfkit worker``, ``perfkit jobs ...``, ``perfkit demo``
and ``perfkit bench``.

Each top-level command is added by one ``_add_<command>`` function listed in
``COMMANDS``; it sets ``handler`` on its parser, which :func:`main` calls with the parsed
arguments. Tables are for terminals; ``--json`` prints JSON for scripts.

Commands of other packages join through the ``perfkit.commands`` entry-point group:
``perfkit demo`` and ``perfkit bench`` come from ``perfkit_demo`` (shipped by the same
distribution), which the library never imports (docs/architecture.md).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.metadata
import inspect
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import msgspec
import psycopg
import redis

from perfkit import __version__
from perfkit._errors import ConfigError, PerfkitError
from perfkit.settings import Settings, check_redis_url, redacted_url

__all__ = ["COMMANDS", "add_command", "build_parser", "main", "run"]

Subparsers = Any  # argparse's _SubParsersAction is private


def _redis_url_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-url", help="Redis URL of the queues (default: REDIS_URL from the environment)"
    )
    parser.add_argument(
        "--quiet", action="store_true", help="do not say which Redis it uses (on stderr)"
    )


def _import_option(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument(
        "--import", dest="imports", action="append", default=[], metavar="MODULE", help=help
    )


def add_command(
    subparsers: Subparsers, name: str, handler: Callable[[argparse.Namespace], int]
) -> argparse.ArgumentParser:
    """Add the command ``name``, which runs ``handler``; returns its parser for the options.

    The command's help (one line in ``perfkit --help``) is the first paragraph of
    ``handler``'s docstring, its description (``perfkit <name> --help``) the rest: the
    command is described where it is implemented.
    """
    help, _, description = inspect.cleandoc(handler.__doc__ or "").partition("\n\n")
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help, description=description
    )
    parser.set_defaults(handler=handler)
    return parser


def _connection(args: argparse.Namespace, settings: Settings) -> redis.Redis:
    if args.redis_url:
        url, source = check_redis_url(args.redis_url, "--redis-url"), "--redis-url"
    else:
        url = settings.redis_url
        given = os.environ.get("REDIS_URL", "").strip()
        source = "REDIS_URL" if given else "REDIS_URL is not set: the default"
    # Said every time: a command run against the wrong Redis looks like an empty one.
    if not args.quiet:
        print(f"Redis: {redacted_url(url)} ({source})", file=sys.stderr)
    # A connect timeout only: a read timeout would cut the worker's blocking dequeue.
    return redis.Redis.from_url(url, socket_connect_timeout=settings.redis_connect_timeout)


def _print_json(value: Any) -> None:
    print(msgspec.json.encode(value).decode())


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers], *([str(v) for v in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


# -- perfkit worker -------------------------------------------------------------------


def _run_worker(args: argparse.Namespace) -> int:
    """run an RQ worker (with the scheduler) on perfkit's queues

    Run a worker on QUEUES (default: email notifications analytics), taking every
    high-priority queue first, then normal, then low. RQ's scheduler always runs, so
    retries with backoff and delayed jobs are enqueued when due.
    """
    from perfkit.jobs import allow_jobs, make_worker

    for module in args.imports:
        importlib.import_module(module)
    # The worker runs registered processors and the functions of these modules only.
    allow_jobs(*args.imports, *args.allow)
    settings = Settings.from_env()
    worker = make_worker(
        _connection(args, settings),
        args.queues or _default_queues(),
        fork=args.fork,
        concurrency=args.concurrency,
        heartbeat_interval=args.heartbeat_interval,
        maintenance_interval=args.maintenance_interval,
        name=args.name,
    )
    # Its own connection: a horse forked while the cron thread holds the worker's
    # connection pool would find the pool's lock taken forever.
    cron = _periodic_scheduler(args, settings) if args.with_cron else None
    if cron is not None:
        cron.start()
    try:
        # The scheduler always runs: retries with a delay and delayed jobs need it.
        worker.work(
            burst=args.burst,
            with_scheduler=True,
            logging_level=args.log_level,
            max_jobs=args.max_jobs,
        )
    finally:
        if cron is not None:
            cron.stop()
    return 0


def _periodic_scheduler(args: argparse.Namespace, settings: Settings) -> Any:
    from perfkit.jobs import JobService
    from perfkit.jobs.periodic import PeriodicScheduler, default_schedule

    service = JobService.from_settings(settings, connection=_connection(args, settings))
    return PeriodicScheduler(service, default_schedule(settings))


def _run_cron(args: argparse.Namespace) -> int:
    """enqueue periodic jobs (the schedule of perfkit.jobs.periodic)

    Enqueue the periodic jobs of the schedule (perfkit.jobs.periodic() in the --import
    modules, plus cache.warm every CACHE_WARMUP_INTERVAL) when due. Any number of `perfkit
    cron` and `perfkit worker --with-cron` processes may run: each period's job is enqueued
    once.
    """
    for module in args.imports:
        importlib.import_module(module)
    settings = Settings.from_env()
    cron = _periodic_scheduler(args, settings)
    # SIGTERM stops it as Ctrl-C does: after the current pass.
    signal.signal(signal.SIGTERM, lambda signum, frame: cron.stop(timeout=0))
    signal.signal(signal.SIGINT, lambda signum, frame: cron.stop(timeout=0))
    cron.run()
    return 0


def _default_queues() -> tuple[str, ...]:
    from perfkit.jobs.queues import DEFAULT_QUEUES

    return DEFAULT_QUEUES


def _add_worker(subparsers: Subparsers) -> None:
    from perfkit.jobs.worker import DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_MAINTENANCE_INTERVAL

    parser = add_command(subparsers, "worker", _run_worker)
    parser.add_argument("queues", nargs="*", metavar="QUEUE", help="base queue names")
    parser.add_argument("--burst", action="store_true", help="quit when the queues are empty")
    parser.add_argument(
        "--fork",
        action="store_true",
        help="fork a work horse per job (RQ's Worker: isolation, ~3x slower); "
        "default: run jobs in the worker process (RQ's SimpleWorker)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        metavar="N",
        help="run up to N async jobs at once on the worker's event loop (sync jobs: one "
        "at a time, as always; not with --fork); default: %(default)s",
    )
    parser.add_argument("--name", help="worker name (default: random)")
    parser.add_argument(
        "--heartbeat-interval",
        type=int,
        default=DEFAULT_HEARTBEAT_INTERVAL,
        metavar="SECONDS",
        help="how often a running job's heartbeat is refreshed (default: %(default)s)",
    )
    parser.add_argument(
        "--maintenance-interval",
        type=int,
        default=DEFAULT_MAINTENANCE_INTERVAL,
        metavar="SECONDS",
        help="how often registries are cleaned and abandoned jobs recovered (default: %(default)s)",
    )
    _import_option(
        parser,
        "import MODULE first (registers processors, configures senders) and allow "
        "jobs naming its functions; repeatable",
    )
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="NAME",
        help="also run jobs naming functions of module NAME, or the function NAME "
        "(a dotted path, imported when a job names it); repeatable",
    )
    parser.add_argument(
        "--with-cron",
        action="store_true",
        help="also enqueue periodic jobs (each period once, whatever the number of "
        "workers doing so); see `perfkit cron`",
    )
    parser.add_argument("--max-jobs", type=int, help="quit after this many jobs")
    parser.add_argument("--log-level", default="INFO", help="default: %(default)s")
    _redis_url_option(parser)


def _add_cron(subparsers: Subparsers) -> None:
    parser = add_command(subparsers, "cron", _run_cron)
    _import_option(parser, "import MODULE first (its periodic() entries, processors); repeatable")
    _redis_url_option(parser)


# -- perfkit jobs ...  ------------------------------------------------------------------


def _service(args: argparse.Namespace, queues: Sequence[str] | None = None) -> Any:
    from perfkit.jobs import JobService

    settings = Settings.from_env()
    connection = _connection(args, settings)
    return JobService.from_settings(
        settings, connection=connection, queues=queues or _default_queues()
    )


def _jobs_stats(args: argparse.Namespace) -> int:
    stats = _service(args, args.queues).stats().queues
    if args.json:
        _print_json(stats)
        return 0
    headers = ["queue", "waiting", "started", "scheduled", "deferred", "completed", "failed"]
    headers += ["workers", "status"]
    columns = ("queue", "waiting", "started", "scheduled", "deferred", "completed", "failed")
    rows = [[*(getattr(s, c) for c in columns), s.workers, s.status] for s in stats]
    print(_table(headers, rows))
    for s in stats:
        if s.status != "healthy":
            print(f"{s.queue}: {s.status}: {s.reason}")
    return 0


def _jobs_schedule(args: argparse.Namespace) -> int:
    from perfkit.jobs.periodic import periodic_runs

    runs = periodic_runs(_service(args))
    if args.json:
        _print_json(runs)
        return 0

    def when(moment: Any) -> str:
        return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"

    rows = [
        [
            run.name,
            run.processor,
            run.every,
            when(run.last_run_at),
            run.last_status or "-",
            when(run.next_run_at),
        ]
        for run in runs
    ]
    headers = ["name", "processor", "every (s)", "last run (UTC)", "status", "next run (UTC)"]
    print(_table(headers, rows) if rows else "no periodic jobs scheduled")
    return 0


def _jobs_failed(args: argparse.Namespace) -> int:
    service = _service(args)
    queues = [args.queue] if args.queue else list(_default_queues())
    pages = [service.failed_jobs(q, offset=args.offset, limit=args.limit) for q in queues]
    if args.json:
        _print_json(pages if len(pages) > 1 else pages[0])
        return 0
    for page in pages:
        shown = f"{page.offset + 1}-{page.offset + len(page.jobs)}" if page.jobs else "none"
        print(f"{page.queue}: {page.total} failed (showing {shown})")
        if page.jobs:
            rows = [
                [
                    job.id,
                    job.processor or job.function or "?",
                    job.attempts,
                    job.failed_at.strftime("%Y-%m-%d %H:%M:%S") if job.failed_at else "?",
                    job.error[:80],
                ]
                for job in page.jobs
            ]
            print(_table(["id", "processor", "attempts", "failed at (UTC)", "error"], rows))
    return 0


def _jobs_retry(args: argparse.Namespace) -> int:
    service = _service(args)
    if args.all:
        count = service.retry_all_failed(args.queue or _default_queues())
        result: dict[str, Any] = {"requeued": count}
    elif args.job_id:
        service.retry_failed(args.job_id)
        result = {"requeued": 1, "job_id": args.job_id}
    else:
        print("error: give a JOB_ID or --all", file=sys.stderr)
        return 2
    if args.json:
        _print_json(result)
    else:
        print(f"requeued {result['requeued']} job(s)")
    return 0


def _jobs_status(args: argparse.Namespace) -> int:
    service = _service(args)
    status = service.job_status(args.job_id)
    progress = service.job_progress(args.job_id)
    if args.json:
        _print_json({"job_id": args.job_id, "status": status, "progress": progress})
    elif progress is None:
        print(f"{args.job_id}: {status}")
    else:
        message = f" - {progress.message}" if progress.message else ""
        print(f"{args.job_id}: {status}, {progress.fraction:.0%} done{message}")
    return 0


def _jobs_delete(args: argparse.Namespace) -> int:
    _service(args).delete_failed(args.job_id)
    if args.json:
        _print_json({"deleted": args.job_id})
    else:
        print(f"deleted failed job {args.job_id}")
    return 0


def _jobs_cancel(args: argparse.Namespace) -> int:
    was = _service(args).cancel(args.job_id)
    if args.json:
        _print_json({"job_id": args.job_id, "was": was})
    elif was == "started":
        print(f"job {args.job_id} was running: asked its worker to stop it")
    else:
        print(f"canceled job {args.job_id} ({was})")
    return 0


def _jobs_clear(args: argparse.Namespace) -> int:
    count = _service(args).clear_completed(args.queue or _default_queues())
    if args.json:
        _print_json({"cleared": count})
    else:
        print(f"cleared {count} completed job(s)")
    return 0


def _add_jobs(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("jobs", help="inspect and manage background jobs")
    commands = parser.add_subparsers(dest="jobs_command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], int], help: str) -> Any:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("--json", action="store_true", help="print JSON instead of a table")
        _redis_url_option(sub)
        sub.set_defaults(handler=handler)
        return sub

    stats = command("stats", _jobs_stats, "queue statistics and health (counts only)")
    stats.add_argument("queues", nargs="*", metavar="QUEUE")

    command("schedule", _jobs_schedule, "periodic jobs: every, last and next runs")

    failed = command("failed", _jobs_failed, "list failed jobs, newest first")
    failed.add_argument("queue", nargs="?", metavar="QUEUE", help="default: every queue")
    failed.add_argument("--offset", type=int, default=0)
    failed.add_argument("--limit", type=int, default=20)

    retry = command("retry", _jobs_retry, "requeue a failed job, or all of them")
    retry.add_argument("job_id", nargs="?", metavar="JOB_ID")
    retry.add_argument("--all", action="store_true", help="requeue every failed job")
    retry.add_argument("--queue", action="append", metavar="QUEUE", help="with --all; repeatable")

    status = command("status", _jobs_status, "a job's status and the progress it reported")
    status.add_argument("job_id", metavar="JOB_ID")

    delete = command("delete", _jobs_delete, "delete a failed job")
    delete.add_argument("job_id", metavar="JOB_ID")

    cancel = command("cancel", _jobs_cancel, "cancel a job: never run it, or stop it if running")
    cancel.add_argument("job_id", metavar="JOB_ID")

    clear = command("clear", _jobs_clear, "delete completed jobs and their results")
    clear.add_argument("--queue", action="append", metavar="QUEUE", help="repeatable")


# The library's own commands; others come from the ``perfkit.commands`` entry points.
COMMANDS: list[Callable[[Subparsers], None]] = [
    _add_worker,
    _add_cron,
    _add_jobs,
]

ENTRY_POINT_GROUP = "perfkit.commands"


def _plugin_commands() -> list[Callable[[Subparsers], None]]:
    """The ``add_<command>`` functions of the ``perfkit.commands`` entry points, by name."""
    found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    return [entry.load() for entry in sorted(found, key=lambda entry: entry.name)]


def build_parser() -> argparse.ArgumentParser:
    """The ``perfkit`` argument parser with every command of ``COMMANDS``."""
    parser = argparse.ArgumentParser(
        prog="perfkit", description="perfkit: backend performance primitives"
    )
    parser.add_argument("--version", action="version", version=f"perfkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in [*COMMANDS, *_plugin_commands()]:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``perfkit`` command line; returns the exit status (2: a bad setting or
    argument, 1: another error)."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.handler(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except PerfkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except redis.ConnectionError as exc:
        print(f"error: cannot reach Redis: {exc}", file=sys.stderr)
        return 1
    except psycopg.OperationalError as exc:
        print(f"error: PostgreSQL: {str(exc).strip()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # what the command started is stopped by then
        print("interrupted", file=sys.stderr)
        return 130
    return status


def run() -> NoReturn:
    """The ``perfkit`` program: :func:`main`, then exit with its status."""
    status = main()
    # The process ends here. Moving every object out of the collector's reach spares the
    # interpreter's teardown a full collection of them (0.5-1 s of a stopped `perfkit
    # demo` on a busy machine; a worker's exit too); the memory goes back all the same.
    gc.freeze()
    sys.exit(status)


if __name__ == "__main__":
    run()
