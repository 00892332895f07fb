"""The layers of docs/architecture.md: the library never loads the demo harness, the demo's
commands still join ``perfkit``'s command line, and the import contracts hold."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from perfkit.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_importing_every_part_loads_neither_the_demo_nor_the_example_app() -> None:
    code = (
        "import sys, perfkit, perfkit.cli, perfkit.kit, perfkit.admin, perfkit.jobs, "
        "perfkit.cache, perfkit.queries, perfkit.metrics\n"
        "perfkit.cli.build_parser()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('perfkit_demo', 'marketplace')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout
    # The parser adds `demo`/`bench` by loading perfkit_demo.commands (cheap parsers only).
    assert out.strip() == "['perfkit_demo', 'perfkit_demo.commands']"


def test_demo_and_bench_join_the_command_line_through_entry_points() -> None:
    args = build_parser().parse_args(["bench"])
    assert args.command == "bench"
    assert build_parser().parse_args(["demo"]).command == "demo"


def test_the_import_contracts_hold() -> None:
    result = subprocess.run(
        [str(BIN / "lint-imports")], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "BROKEN" not in result.stdout
    for contract in ("Layers:", "never imports the demo", "jobs core imports neither"):
        assert contract in result.stdout


@pytest.mark.slow
def test_the_wheel_ships_the_demo_package_the_marketplace_and_the_commands(
    tmp_path: Path,
) -> None:
    pip = shutil.which("pip", path=str(BIN))
    assert pip is not None
    subprocess.run(
        [pip, "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("perfkit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = (n for n in names if n.endswith(".dist-info/entry_points.txt"))
        declared = archive.read(entry_points).decode()
    assert "perfkit_demo/stack.py" in names
    assert "perfkit_demo/_examples/marketplace/__init__.py" in names
    assert not any(name.startswith("perfkit/_main/") for name in names)
    assert "[perfkit.commands]" in declared
    assert "demo = perfkit_demo.commands:add_demo" in declared
