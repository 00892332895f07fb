"""perfkit.admin: the seed's performance endpoints for any ASGI or WSGI host (docs/admin.md).

One core of framework-free handlers (:class:`~perfkit.admin.core.AdminCore`), thin
adapters (:class:`ASGIAdmin`, :class:`WSGIAdmin`) and the HTML dashboard. Build the apps
with :meth:`perfkit.Perfkit.asgi_admin` / :meth:`~perfkit.Perfkit.wsgi_admin` and mount
them in a host app with :func:`mount_asgi` / :func:`mount_wsgi`; ``authorize`` is given
the :class:`Request`.

What builds the admin is in the submodules: the route table (:mod:`perfkit.admin.routes`,
:mod:`perfkit.admin.spec`), the core (:mod:`perfkit.admin.core`), the protocol of what it
reads (:mod:`perfkit.admin.source`), the credential check (:mod:`perfkit.admin.auth`), the
HTTP types (:mod:`perfkit.admin.http`) and the response bodies (:mod:`perfkit.admin.schemas`).
"""

from perfkit.admin.asgi import ASGIAdmin, mount_asgi
from perfkit.admin.auth import Authorize
from perfkit.admin.http import Request
from perfkit.admin.wsgi import WSGIAdmin, mount_wsgi

__all__ = [
    "ASGIAdmin",
    "Authorize",
    "Request",
    "WSGIAdmin",
    "mount_asgi",
    "mount_wsgi",
]
