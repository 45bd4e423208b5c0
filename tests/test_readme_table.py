"""benchmarks/readme_table.py: the README's results block, rewritten from a real results folder.

The folder is made here by the real evaluations (transfer with the source model, retraining in both
modes, one epoch each) on a tiny generated dataset; the script runs as a user runs it, in a subprocess.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cifar10_fgs.attack.fgs import AttackConfig
from cifar10_fgs.evaluate import RetrainOptions, TransferOptions, evaluate_retrain, evaluate_transfer
from cifar10_fgs.generate.core import GenerateOptions, generate_dataset

from helpers import tiny_model

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "readme_table.py"
START, END = "<!-- results:start -->", "<!-- results:end -->"


@pytest.fixture(scope="module")
def results(tmp_path_factory, tiny_keras_path, image_folder_source):
    """(DIR/results, transfer result, [adversarial, mixed] retrain results) of a tiny dataset."""
    import datasets
    import keras

    root, _ = image_folder_source
    work = tmp_path_factory.mktemp("readme_table")
    folder = work / "ds"
    generate_dataset(
        folder, tiny_keras_path, GenerateOptions(cifar10=root, attack=AttackConfig(batch_size=32), rows_per_shard=25)
    )
    base = keras.saving.load_model(tiny_keras_path, compile=False)
    target = tiny_model()
    rng = np.random.default_rng(1)
    target.set_weights([w + 0.05 * np.abs(w).mean() * rng.standard_normal(w.shape) for w in base.get_weights()])
    target_path = work / "target.keras"
    target.save(target_path)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", work / "hf_cache")
        tr = evaluate_transfer(folder, target_path, TransferOptions(cifar10=root, source_model=tiny_keras_path))
        retrained = [
            evaluate_retrain(
                folder,
                work / f"{name}.keras",
                RetrainOptions(cifar10=root, mode=mode, epochs=1, target_model=target_path),
            )
            for mode, name in (("mixed", "retrained_mixed"), ("adversarial", "retrained"))
        ]
    return folder / "results", tr, retrained[::-1]


def run_script(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=120)


def block_of(text: str) -> list[str]:
    return text.split(START + "\n", 1)[1].split(END, 1)[0].splitlines()


def test_block_holds_every_model_of_the_results_and_nothing_else_changes(results, tmp_path):
    results_dir, tr, (adversarial, mixed) = results
    readme = tmp_path / "README.md"
    head, tail = "# project\n\nThe run that produced it.\n\n", "\n\n## Next\n\nkept as it is\n"
    readme.write_text(f"{head}{START}\n| stale | table |\n{END}{tail}")

    done = run_script(results_dir, "--readme", readme)
    assert done.returncode == 0 and "rewritten" in done.stdout, done.stderr
    text = readme.read_text()
    assert text.startswith(head + START + "\n") and text.endswith(END + tail) and "stale" not in text

    rows = [line for line in block_of(text) if line.startswith("| `")]
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    assert [c[0] for c in cells] == ["`tiny.keras`", "`target.keras`", "`retrained.keras`", "`retrained_mixed.keras`"]
    expected = [
        (tr.report["results"]["source"]["original"]["accuracy"], 0.0),  # white-box: every stored copy fools it
        (tr.original.accuracy, tr.adversarial.accuracy),
        (adversarial.retrained_original.accuracy, adversarial.retrained_adversarial.accuracy),
        (mixed.retrained_original.accuracy, mixed.retrained_adversarial.accuracy),
    ]
    for c, (clean, adv) in zip(cells, expected):
        assert c[3:] == [f"{clean:.4f}", f"{adv:.4f}", f"{clean - adv:.4f}"]
    assert cells[0][2] == "`tiny`" and cells[2][2] == cells[3][2] == "`simple_deep_cnn`"
    assert "adversarial images (the paper's)" in cells[2][1] and "original + adversarial" in cells[3][1]
    assert f"Test split, {tr.num_rows_used} of {tr.num_rows_split} rows;" in text
    assert "`transfer.json`, `retrain.json`, `retrain_mixed.json`" in text

    stamp = readme.stat().st_mtime_ns
    again = run_script(results_dir, "--readme", readme)
    assert again.returncode == 0 and "already up to date" in again.stdout
    assert readme.stat().st_mtime_ns == stamp, "an unchanged table is not rewritten"


def test_bad_input_is_one_line_exit_2_and_the_readme_untouched(results, tmp_path):
    results_dir, _, _ = results
    bare = tmp_path / "bare.md"
    bare.write_text("# no markers\n")
    readme = tmp_path / "README.md"
    original = f"x\n{START}\nold\n{END}\n"
    readme.write_text(original)

    mixed_from_another_target = tmp_path / "results"
    shutil.copytree(results_dir, mixed_from_another_target)
    path = mixed_from_another_target / "retrain_mixed.json"
    report = json.loads(path.read_text())
    report["models"]["target"]["sha256"] = "0" * 64
    path.write_text(json.dumps(report))
    no_fields = tmp_path / "no_fields"
    no_fields.mkdir()
    (no_fields / "transfer.json").write_text(json.dumps({"results": {}, "kind": "transfer"}))

    cases = [
        ((results_dir, "--readme", bare), bare, "has no results markers"),
        ((tmp_path / "missing", "--readme", readme), readme, "transfer.json does not exist"),
        ((mixed_from_another_target, "--readme", readme), readme, "another dataset or target model"),
        ((no_fields, "--readme", readme), readme, "lacks"),
    ]
    for args, target, message in cases:
        before = target.read_text()
        done = run_script(*args)
        err = done.stderr.strip()
        assert done.returncode == 2 and message in err and len(err.splitlines()) == 1, (args, err)
        assert "Traceback" not in err and target.read_text() == before
    assert readme.read_text() == original


def test_the_repository_readme_holds_one_block_in_the_script_format():
    """The README's table is the script's output (header and footer as it writes them), not a typed table."""
    spec = importlib.util.spec_from_file_location("readme_table", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    readme = (SCRIPT.parents[1] / "README.md").read_text(encoding="utf-8")
    assert readme.count(START) == readme.count(END) == 1 and readme.index(START) < readme.index(END)
    block = block_of(readme)
    one = {"original": {"accuracy": 1.0}, "adversarial": {"accuracy": 0.5}, "accuracy_drop": 0.5}
    transfer = {
        "models": {"target": {"file": "t.keras", "architecture": "a"}},
        "results": {"target": one},
        "rows": {"test": {"num_rows_used": 1, "num_rows_split": 1}},
        "settings": {"split": "test"},
    }
    assert block[:2] == script.render_table(transfer, []).splitlines()[:2], "the table header is the script's"
    assert block[-1].startswith(f"Generated by `{script.COMMAND}` from `transfer.json`")
    assert all(line.startswith("| `") for line in block[2 : block.index("")]), "every row names a model file"
