"""The report's template ships in the wheel and is found from an installed (non-editable) package."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import losslab

ROOT = Path(losslab.__file__).resolve().parents[2]  # the checkout: pyproject.toml, src/
TEMPLATES = ("losslab/report/templates/report.html.j2", "losslab/report/templates/report.css")


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / "pyproject.toml").is_file()
                    or importlib.util.find_spec("setuptools") is None,
                    reason="needs the source checkout and setuptools to build a wheel")
def test_a_wheel_ships_the_template_and_renders_from_it(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy, so building leaves no build/ in the checkout
    shutil.copytree(ROOT / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist"), str(source)], check=True)
    wheel = next((tmp_path / "dist").glob("losslab-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert set(TEMPLATES) <= names, f"template missing from the wheel: {sorted(names)}"
        archive.extractall(tmp_path / "installed")

    # Render from the unpacked wheel alone: the source tree is off the path.
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])\n"
        "import losslab; assert losslab.__file__.startswith(sys.argv[1]), losslab.__file__\n"
        "from conftest import make_comparison\n"
        "from losslab.report import build_report\n"
        "print(build_report(make_comparison(__import__('pathlib').Path(sys.argv[3]))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "installed"), str(Path(__file__).parent),
         str(tmp_path / "comparison")],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr
    index = Path(result.stdout.strip().splitlines()[-1])
    text = index.read_text(encoding="utf-8")
    assert "Which synthetic run is sharpest?" in text and "table.metrics td.best" in text
