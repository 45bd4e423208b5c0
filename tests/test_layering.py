"""The package's imports run one way, in data-flow order, and importing it loads no TensorFlow."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Stage packages from the bottom up: a module may import its own stage and the stages below it.
LAYERS = (
    ("errors", "formatting"),  # leaves: import nothing of the package
    ("config", "provenance", "hub"),
    ("recipes",),  # the training recipes: built on config's checks
    ("data",),
    ("models",),
    ("training", "attack"),
    ("dataset",),
    ("dataset_card",),  # the pure card renderer: reads the dataset's types, imports nothing above them
    ("generate",),
    ("validate",),
    ("evaluate",),
    ("publish",),
    ("run_setup",),  # run's options and workspace checks
    ("pipeline",),
    ("cli",),
)
LEVEL = {name: i for i, names in enumerate(LAYERS) for name in names}
FOLDERS = {"cifar10_fgs": ROOT / "cifar10_fgs", "cli": ROOT / "cli", "dataset_card": ROOT / "dataset_card"}


def _stage(module: str) -> str:
    """``cifar10_fgs.attack.fgs`` -> ``attack``; ``cifar10_fgs`` itself -> ``cifar10_fgs``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _imports(path: Path, package: str) -> set[str]:
    """Every ``cifar10_fgs...`` module the file imports, at any depth (relative imports resolved)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names = [f"{mod}.{a.name}" for a in node.names] if not node.module or node.level else [mod]
            out.update(n for n in names if n.startswith("cifar10_fgs"))
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("cifar10_fgs"))
    return out


def _modules():
    for top, folder in FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("").parts
            package = ".".join((["cifar10_fgs"] if top == "cifar10_fgs" else ["cifar10_fgs", top]) + list(rel[:-1]))
            stage = top if top != "cifar10_fgs" else (rel[0] if len(rel) > 1 else rel[0])
            yield path, package, stage


def test_every_stage_imports_only_itself_and_the_stages_below():
    wrong = []
    for path, package, stage in _modules():
        if stage == "__init__":
            continue  # the package's face: lazy entry points of every stage
        for mod in _imports(path, package):
            target = _stage(mod)
            if target in ("cifar10_fgs", "__version__", stage):
                continue
            assert target in LEVEL, f"{path}: imports {mod}, a stage missing from LAYERS"
            if LEVEL[target] > LEVEL[stage] or (LEVEL[target] == LEVEL[stage] and target != stage):
                wrong.append(f"{path.relative_to(ROOT)} ({stage}) imports {mod} ({target})")
    assert not wrong, "imports against the data flow:\n" + "\n".join(wrong)


def test_the_public_entry_points_resolve_without_loading_tensorflow():
    code = (
        "import sys, cifar10_fgs\n"
        "assert 'tensorflow' not in sys.modules\n"
        "for name in cifar10_fgs.__all__: getattr(cifar10_fgs, name)\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.split() == ["False", "False"]


def test_every_public_name_is_documented_in_the_package_docstring():
    import cifar10_fgs

    undocumented = [name for name in cifar10_fgs.__all__ if f"``{name}" not in cifar10_fgs.__doc__]
    assert not undocumented, undocumented
