#!/usr/bin/env bash
# Refresh requirements/dev.txt, the dev extra's locked set (the README's test command and
# .ci/run's "locked" set install with it as pip constraints). One universal lock for every
# supported Python (3.11+), resolved today by uv: `pip install uv` first, then
#     tools/lock.sh
# Commit the result; .ci/run also tests the newest releases (no lock) and the lowest ones.
set -euo pipefail
cd "$(dirname "$0")/.."
uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
    --custom-compile-command "tools/lock.sh" --quiet -o requirements/dev.txt
