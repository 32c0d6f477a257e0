"""
The wheels built here: the provider's holds only the provider, the emulator's only the emulator.

The emulator is a test double of Partner Center: it must never ship inside the provider (nor pull
pytest into a production install), and it shares no code with the client it checks.
"""

from __future__ import annotations

import ast
import configparser
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import partner_center_emulator
import pytest

# Transport, tokens or packaging, the same on every Airflow release: the main combination runs it.
pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parent.parent
UV = Path(sys.executable).with_name("uv")


def _build_wheel(project: Path, out_dir: Path) -> zipfile.ZipFile:
    """``uv build --wheel`` of ``project`` into ``out_dir``; the one wheel it made, opened."""
    subprocess.run(
        [str(UV), "build", "--wheel", "--quiet", "--out-dir", str(out_dir), str(project)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out_dir.glob("*.whl")
    return zipfile.ZipFile(wheel)


def _imported_modules(source: str) -> set[str]:
    """The top-level names of every module a Python source imports (at any depth of the file)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _entry_points(wheel: zipfile.ZipFile) -> configparser.ConfigParser:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    parser = configparser.ConfigParser()
    parser.read_string(wheel.read(name).decode())
    return parser


@pytest.fixture(scope="module")
def provider_wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    with _build_wheel(REPO_ROOT, tmp_path_factory.mktemp("provider-wheel")) as wheel:
        yield wheel


@pytest.fixture(scope="module")
def emulator_wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    with _build_wheel(REPO_ROOT / "emulator", tmp_path_factory.mktemp("emulator-wheel")) as wheel:
        yield wheel


def test_the_provider_wheel_holds_no_emulator_file(provider_wheel: zipfile.ZipFile) -> None:
    names = provider_wheel.namelist()
    assert "airflow_provider_partner/__init__.py" in names
    emulator_files = [n for n in names if "emulator" in n.lower() or "pytest_plugin" in n]
    assert emulator_files == []
    assert [n for n in names if n.startswith("partner_center_emulator")] == []
    # Only the provider package and its metadata: no tests, benchmarks or example DAGs either.
    assert {n.split("/")[0] for n in names} == {
        "airflow_provider_partner",
        f"airflow_provider_partner-{version('airflow-provider-partner')}.dist-info",
    }


def test_no_module_of_the_provider_wheel_imports_pytest_or_the_emulator(
    provider_wheel: zipfile.ZipFile,
) -> None:
    modules = [n for n in provider_wheel.namelist() if n.endswith(".py")]
    assert len(modules) > 10
    importing = {
        name: sorted(found)
        for name in modules
        if (
            found := _imported_modules(provider_wheel.read(name).decode())
            & {"pytest", "_pytest", "partner_center_emulator"}
        )
    }
    assert importing == {}


def test_the_provider_wheel_is_typed_and_registers_with_airflow(provider_wheel: zipfile.ZipFile) -> None:
    assert "airflow_provider_partner/py.typed" in provider_wheel.namelist()
    entry_points = _entry_points(provider_wheel)
    assert dict(entry_points["apache_airflow_provider"]) == {
        "provider_info": "airflow_provider_partner.get_provider_info:get_provider_info"
    }
    assert "pytest11" not in entry_points


def test_the_emulator_wheel_holds_the_emulator_only(emulator_wheel: zipfile.ZipFile) -> None:
    names = emulator_wheel.namelist()
    assert [n for n in names if "airflow_provider_partner" in n] == []
    assert {n.split("/")[0] for n in names} == {
        "partner_center_emulator",
        f"partner_center_emulator-{partner_center_emulator.__version__}.dist-info",
    }
    assert "partner_center_emulator/py.typed" in names
    assert "partner_center_emulator/__main__.py" in names
    # It shares no code with the client it checks.
    importing = [
        name
        for name in names
        if name.endswith(".py")
        and "airflow_provider_partner" in _imported_modules(emulator_wheel.read(name).decode())
    ]
    assert importing == []


def test_the_emulator_wheel_registers_its_fixtures_and_cli(emulator_wheel: zipfile.ZipFile) -> None:
    entry_points = _entry_points(emulator_wheel)
    assert dict(entry_points["pytest11"]) == {"partner_center_emulator": "partner_center_emulator.fixtures"}
    assert dict(entry_points["console_scripts"]) == {
        "partner-center-emulator": "partner_center_emulator.__main__:run"
    }


def test_the_installed_fixtures_come_from_the_entry_point(pytestconfig: pytest.Config) -> None:
    # Registered by pytest11 (no pytest_plugins line anywhere), under the entry point's name.
    plugin = pytestconfig.pluginmanager.get_plugin("partner_center_emulator")
    assert plugin is not None
    assert plugin.__name__ == "partner_center_emulator.fixtures"
