"""perfkit.admin: the seed's performance endpoints for any ASGI or WSGI host (docs/admin.md).

One core of framework-free handlers (:class:`AdminCore`), thin adapters
(:class:`ASGIAdmin`, :class:`WSGIAdmin`) and the HTML dashboard. Build the apps with
:meth:`perfkit.Perfkit.asgi_admin` / :meth:`~perfkit.Perfkit.wsgi_admin`.
"""

from perfkit.admin.asgi import ASGIAdmin, mount_asgi
from perfkit.admin.auth import Authorize, Guard
from perfkit.admin.core import AdminCore
from perfkit.admin.http import AdminError, ErrorBody, Request, Response
from perfkit.admin.routes import ROUTES, openapi_document
from perfkit.admin.source import AdminSource, Dependency
from perfkit.admin.spec import Route
from perfkit.admin.wsgi import WSGIAdmin, mount_wsgi

__all__ = [  # noqa: RUF022 - plain sorted(), as tests/test_exported_members.py checks
    "ASGIAdmin",
    "AdminCore",
    "AdminError",
    "AdminSource",
    "Authorize",
    "Dependency",
    "ErrorBody",
    "Guard",
    "ROUTES",
    "Request",
    "Response",
    "Route",
    "WSGIAdmin",
    "mount_asgi",
    "mount_wsgi",
    "openapi_document",
]
