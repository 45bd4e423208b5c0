"""Installing puts only the `cifar10_fgs` namespace into site-packages (no generic top-level `cli`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_has_one_top_level_package_with_cli_and_card_template(tmp_path):
    src = tmp_path / "src"  # build from a copy: the checkout stays clean
    shutil.copytree(
        ROOT, src, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", ".pytest_cache")
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("cifar10_fgs-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"cifar10_fgs", wheel.name.split("-py")[0] + ".dist-info"}
    assert "cifar10_fgs/cli/main.py" in names and "cifar10_fgs/dataset_card/template.md.j2" in names
    assert "cifar10_fgs/cli/evaluate/transfer.py" in names  # a subpackage of cli, listed in pyproject
    assert "cifar10_fgs/dataset/manifest/records.py" in names and "cifar10_fgs/validate/checks.py" in names
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "cifar10-fgs = cifar10_fgs.cli.main:main" in entry
