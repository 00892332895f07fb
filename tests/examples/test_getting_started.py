"""docs/getting-started.md shows the integration examples inline (readable on the
repository page, where mkdocs includes show nothing), exactly as the files are."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "getting-started.md"


@pytest.mark.parametrize("name", ["fastapi_app.py", "flask_app.py", "django_app.py"])
def test_the_page_shows_the_example_as_it_is(name: str) -> None:
    text = PAGE.read_text()
    shown = re.search(
        rf"`examples/integrations/{re.escape(name)}`:\n\n```python\n(.*?)```\n", text, re.DOTALL
    )
    assert shown is not None, f"{name} is not shown in docs/getting-started.md"
    assert shown[1] == (ROOT / "examples" / "integrations" / name).read_text()


def test_the_page_uses_no_includes() -> None:
    assert "--8<--" not in PAGE.read_text()
