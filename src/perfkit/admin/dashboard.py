"""The HTML dashboard: one self-contained page (package resource ``dashboard.html``), served
with a Content-Security-Policy that allows exactly its own inline style and script."""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources

from perfkit.admin.http import Response

__all__ = ["DASHBOARD", "Page"]


def _hash(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


class Page:
    """An HTML page whose inline ``<style>`` and ``<script>`` blocks are pinned by hash."""

    def __init__(self, html: str) -> None:
        self.body = html.encode()
        styles = [_hash(m) for m in re.findall(r"<style>(.*?)</style>", html, re.DOTALL)]
        scripts = [_hash(m) for m in re.findall(r"<script>(.*?)</script>", html, re.DOTALL)]
        # No CDN, no external font, nothing but our own fetches to the same origin.
        self.csp = "; ".join(
            [
                "default-src 'none'",
                f"style-src {' '.join(styles) or chr(39) + 'none' + chr(39)}",
                f"script-src {' '.join(scripts) or chr(39) + 'none' + chr(39)}",
                "connect-src 'self'",
                "img-src data:",
                "base-uri 'none'",
                "form-action 'none'",
                "frame-ancestors 'none'",
            ]
        )

    def response(self) -> Response:
        """The page with its headers."""
        return Response(
            headers=[
                ("content-type", "text/html; charset=utf-8"),
                ("content-security-policy", self.csp),
            ],
            body=self.body,
        )


DASHBOARD = Page(resources.files("perfkit.admin").joinpath("dashboard.html").read_text("utf-8"))
