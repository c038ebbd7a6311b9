"""The import-linter contracts refuse each wrong import they are meant to: one is planted in a copy of the
package tree and lint-imports must report the contract that forbids it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "functions", "infra")
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def lint_copy(tmp_path: Path, plant: tuple[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    if plant is not None:
        path, module = plant
        with (tmp_path / path).open("a") as file:
            file.write(f"\nimport {module}  # planted\n")
    return subprocess.run(  # lint-imports puts its working directory first on the path: the copy is linted
        [sys.executable, "-c", LINT, "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


def test_the_tree_as_it_is_keeps_every_contract(tmp_path: Path) -> None:
    done = lint_copy(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("path", "module", "contract"),
    [
        ("shared/web.py", "shared.store", "base modules of shared/ never reach up"),
        ("shared/errors.py", "shared.vault", "base modules of shared/ never reach up"),
        ("functions/api/app.py", "functions.export.app", "each function stands alone"),
        ("functions/token_refresh/app.py", "functions.sales_pull", "each function stands alone"),
        ("shared/services/events.py", "aws_lambda_powertools.event_handler", "Lambda Powertools only"),
        ("shared/services/events.py", "shared.web", "HTTP conventions (web, callback page)"),
        ("shared/services/events.py", "shared.callback_page", "HTTP conventions (web, callback page)"),
        ("shared/store/settings.py", "shared.web", "HTTP conventions (web, callback page)"),
        ("shared/domain/connections.py", "shared.bodies", "the domain is pure"),
        ("shared/domain/connections.py", "shared.contracts", "the domain is pure"),
        ("shared/services/events.py", "boto3", "services reach AWS only through"),
        ("shared/services/events.py", "botocore.config", "services reach AWS only through"),
    ],
)
def test_a_planted_wrong_import_is_refused(tmp_path: Path, path: str, module: str, contract: str) -> None:
    done = lint_copy(tmp_path, (path, module))
    assert done.returncode != 0, done.stdout
    broken = done.stdout.partition("Broken contracts")[2]
    assert contract in " ".join(broken.split()), done.stdout
    importer = path.removesuffix(".py").removesuffix("/app").replace("/", ".")
    assert f"{importer}" in broken, done.stdout
