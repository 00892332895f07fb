"""The docs stay in step with the code: every setting is in the configuration reference."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from perfkit import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_setting_is_documented_with_its_default() -> None:
    text = (DOCS / "configuration.md").read_text()
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", text, flags=re.MULTILINE))
    minutes = {"CACHE_WARMUP_INTERVAL", "PERFORMANCE_LOG_INTERVAL"}
    defaults = Settings()
    for field in msgspec.structs.fields(Settings):
        variable = field.name.upper()
        assert variable in rows, f"{variable} is missing from docs/configuration.md"
        value = getattr(defaults, field.name)
        documented = rows[variable].strip().strip("`")
        if value is None:
            assert documented == "—", variable
            continue
        if variable in minutes:
            value = value / 60
        if isinstance(value, bool):
            expected = str(value).lower()
        elif isinstance(value, float) and value.is_integer():
            expected = str(int(value))
        else:
            expected = str(value)
        assert documented == expected, f"{variable}: docs say {documented}, default is {expected}"
