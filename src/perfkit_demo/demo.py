"""``perfkit demo``: the marketplace, its worker and its dashboard, on this machine.

Servers come from DATABASE_URL / REDIS_URL, or are embedded and started here. Data is
loaded when the database has none. The app is served by uvicorn in this process, the
worker runs as a subprocess; Ctrl-C (SIGINT) or SIGTERM stops the server, then the
worker, then the embedded servers — only what this command started.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
from pathlib import Path

from perfkit.settings import Settings
from perfkit_demo.stack import (
    Stack,
    ensure_data,
    listen,
    marketplace_module,
    say,
    sigterm_as_interrupt,
)

__all__ = ["run_demo"]

ADMIN_PATH = "/api/admin/performance"


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo until interrupted; returns the exit status."""
    import uvicorn

    settings = Settings.from_env()
    data_dir = Path(args.data_dir) if args.data_dir else None
    # An interrupt while starting (say, during the data load) stops what was started too.
    with (
        listen(args.host, args.port) as sock,
        sigterm_as_interrupt(),
        contextlib.suppress(KeyboardInterrupt),
        Stack(database_url=args.database_url, redis_url=args.redis_url, data_dir=data_dir) as stack,
    ):
        ensure_data(stack.database_url, args.sf, args.seed)
        marketplace = marketplace_module("app")
        token = secrets.token_urlsafe(24)
        exports = str(stack.data_dir / "exports")
        worker = stack.worker(JOB_EXPORT_DIR=exports)
        app = marketplace.create_app(
            marketplace.MarketplaceConfig(
                database_url=stack.database_url,
                redis_url=stack.redis_url,
                admin_token=token,
            ),
            settings,
        )
        base = f"http://{args.host}:{args.port}"
        say(f"Worker: pid {worker.pid} (email, notifications, analytics queues)")
        say("")
        say("perfkit demo is running; Ctrl-C stops it.")
        say(f"  app:         {base}/api/products  (more: {base}/api/leaderboards/categories)")
        if app.admin_mounted:
            say(f"  dashboard:   {base}{ADMIN_PATH}/  (paste the admin token)")
            say(f"  admin token: {token}")
            say(f"  admin API:   curl -H 'Authorization: Bearer {token}' {base}{ADMIN_PATH}/cache")
        server = uvicorn.Server(
            uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level)
        )
        # uvicorn re-raises the SIGINT or SIGTERM it handled once it has shut down.
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
        say("Stopping ...")
    say("Stopped everything perfkit demo started.")
    return 0
