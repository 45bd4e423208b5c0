"""`generate`: shards on disk, load_dataset, resume, determinism, locks and bad settings."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cifar10_fgs.cli._errors import run_with_friendly_errors
from cifar10_fgs.cli.main import cli
from cifar10_fgs.config import AttackConfig
from cifar10_fgs.dataset.folder import folder_lock
from cifar10_fgs.dataset.manifest import FILE as MANIFEST
from cifar10_fgs.dataset.shards import decode_images, read_shard
from cifar10_fgs.errors import ConfigError, OutputError
from cifar10_fgs.generate.core import AttackFailuresError, GenerateOptions, generate_dataset
from cifar10_fgs.models.inference import predict_logits

from helpers import (
    disk_full_at_shard_write,
    folder_bytes,
    generate_cli,
    labels_the_model_gets_right,
    synthetic_images,
    tiny_model,
    write_image_folder,
)

CFG = AttackConfig(batch_size=32)
OPTS = GenerateOptions(rows_per_shard=25)


@pytest.fixture(scope="module")
def generated(tmp_path_factory, tiny_keras_path, image_folder_source):
    root, _ = image_folder_source
    out = tmp_path_factory.mktemp("gen") / "ds"
    result = generate_dataset(out, tiny_keras_path, replace(OPTS, cifar10=root, attack=CFG))
    return out, result


def test_layout_manifest_and_stored_images_are_misclassified(generated, tiny_keras_path, image_folder_source):
    import keras

    out, result = generated
    _, data = image_folder_source
    names = sorted(p.name for p in (out / "data").iterdir())
    assert names == [
        "test-00000-of-00002.arrow",
        "test-00001-of-00002.arrow",
        "train-00000-of-00003.arrow",
        "train-00001-of-00003.arrow",
        "train-00002-of-00003.arrow",
    ]
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["complete"] is True
    assert manifest["config"]["attack"]["step"] == 0.01
    model = keras.saving.load_model(tiny_keras_path, compile=False)
    for split, (images, labels) in data.items():
        summ = manifest["summary"][split]
        assert summ["num_rows"] == len(labels) and summ["fooled_percent"] == 100.0
        assert summ["already_misclassified"] == 5
        shards = sorted((out / "data").glob(f"{split}-*.arrow"))
        tables = [read_shard(p) for p in shards]
        idx = np.concatenate([t.column("index").to_numpy() for t in tables])
        assert np.array_equal(idx, np.arange(len(labels)))
        adv = np.concatenate([decode_images(t.column("image").to_pylist()) for t in tables])
        pred = predict_logits(model, adv, CFG.batch_size).argmax(axis=1)
        assert np.all(pred != labels), "every stored image is misclassified, re-decoded from the shards"
        iters = np.concatenate([t.column("iterations").to_numpy() for t in tables])
        linf = np.abs(adv.astype(int) - images.astype(int)).reshape(len(adv), -1).max(axis=1)
        assert np.all(linf <= 2.55 * iters + 0.5)
        assert np.array_equal(adv[iters == 0], images[iters == 0])
    assert result.images_attacked == 100


def test_load_dataset_reads_the_folder(generated):
    import datasets

    out, _ = generated
    ds = datasets.load_dataset(str(out))
    assert set(ds) == {"train", "test"} and ds["train"].num_rows == 60 and ds["test"].num_rows == 40
    assert ds["train"].features["label"].names[0] == "airplane"
    row = ds["test"][0]
    assert row["image"].size == (32, 32) and row["image"].mode == "RGB"
    streamed = next(iter(datasets.load_dataset(str(out), streaming=True)["train"]))
    assert streamed["index"] == 0 and streamed["label"] == ds["train"][0]["label"]


def test_rerun_is_a_no_op_and_deterministic(generated, tiny_keras_path, image_folder_source, tmp_path):
    out, _ = generated
    root, _ = image_folder_source
    before = folder_bytes(out)
    again = generate_dataset(out, tiny_keras_path, replace(OPTS, cifar10=root, attack=CFG))
    assert again.images_attacked == 0
    assert folder_bytes(out) == before
    fresh = tmp_path / "fresh"
    generate_dataset(fresh, tiny_keras_path, replace(OPTS, cifar10=root, attack=CFG))
    assert folder_bytes(fresh) == before


def test_resume_after_a_crash_is_byte_identical(generated, tiny_keras_path, image_folder_source, tmp_path, monkeypatch):
    out, _ = generated
    root, _ = image_folder_source
    target = tmp_path / "crashed"
    with disk_full_at_shard_write(monkeypatch, 3), pytest.raises(OSError):
        generate_dataset(target, tiny_keras_path, replace(OPTS, cifar10=root, attack=CFG))
    kept = sorted(p.name for p in (target / "data").iterdir())
    assert 2 <= len(kept) < 5  # finished shards kept (one queued behind the failure may finish too)
    assert all(p.endswith(".arrow") for p in kept)  # no partial shard visible
    resumed = generate_dataset(target, tiny_keras_path, replace(OPTS, cifar10=root, attack=CFG))
    assert 0 < resumed.images_attacked < 100
    assert folder_bytes(target) == folder_bytes(out)


def test_other_settings_refused_unless_overwrite(generated, tiny_keras_path, image_folder_source, tmp_path):
    out, _ = generated
    root, _ = image_folder_source
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    before = folder_bytes(copy)
    with pytest.raises(OutputError, match="other settings"):
        generate_dataset(
            copy, tiny_keras_path, replace(OPTS, cifar10=root, attack=AttackConfig(step=0.02, batch_size=32))
        )
    assert folder_bytes(copy) == before
    generate_dataset(
        copy,
        tiny_keras_path,
        replace(OPTS, cifar10=root, attack=AttackConfig(step=0.02, batch_size=32)),
        overwrite=True,
    )
    assert json.loads((copy / MANIFEST).read_text())["config"]["attack"]["step"] == 0.02


def test_foreign_folder_and_lock_are_refused(tiny_keras_path, image_folder_source, tmp_path):
    root, _ = image_folder_source
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="not empty"):
        generate_dataset(foreign, tiny_keras_path, replace(OPTS, cifar10=root, attack=CFG))
    assert (foreign / "notes.txt").read_text() == "mine"
    locked = tmp_path / "locked"
    locked.mkdir()
    with folder_lock(locked), pytest.raises(OutputError, match="another generate"):
        generate_dataset(locked, tiny_keras_path, replace(OPTS, cifar10=root, attack=CFG))
    generate_dataset(
        locked, tiny_keras_path, GenerateOptions(cifar10=root, attack=CFG, rows_per_shard=25, splits=("test",))
    )
    assert (locked / MANIFEST).exists()  # the lock is released with its holder


def test_limit_larger_than_split_and_failures(tiny_keras_path, image_folder_source, tmp_path):
    root, _ = image_folder_source
    with pytest.raises(ConfigError, match="larger than the test split"):
        generate_dataset(
            tmp_path / "x", tiny_keras_path, GenerateOptions(cifar10=root, attack=CFG, splits=("test",), limit=41)
        )
    assert not (tmp_path / "x").exists()
    out = tmp_path / "fail"
    with pytest.raises(AttackFailuresError, match="not fooled within 1 iterations"):
        generate_dataset(
            out,
            tiny_keras_path,
            GenerateOptions(
                cifar10=root, attack=AttackConfig(max_iterations=1, batch_size=32), splits=("test",), rows_per_shard=25
            ),
        )
    manifest = json.loads((out / MANIFEST).read_text())
    failures = manifest["summary"]["test"]["failures"]
    assert failures and manifest["summary"]["test"]["num_rows"] + len(failures) == 40
    stored = np.concatenate([read_shard(p).column("index").to_numpy() for p in sorted((out / "data").iterdir())])
    assert not set(stored) & set(failures)


def test_with_originals_column(tiny_keras_path, image_folder_source, tmp_path):
    root, data = image_folder_source
    out = tmp_path / "orig"
    generate_dataset(
        out,
        tiny_keras_path,
        GenerateOptions(cifar10=root, attack=CFG, splits=("test",), rows_per_shard=25, with_originals=True),
    )
    tables = [read_shard(p) for p in sorted((out / "data").iterdir())]
    originals = np.concatenate([decode_images(t.column("original_image").to_pylist()) for t in tables])
    assert np.array_equal(originals, data["test"][0])


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--step", "0"], "step"),
        (["--step", "1"], "step"),
        (["--max-iterations", "0"], "max-iterations"),
        (["--split", "valid"], "is not one of"),
        (["--limit", "1000"], "larger than"),
    ],
)
def test_cli_bad_settings_are_one_line_exit_2(args, needle, tiny_keras_path, image_folder_source, tmp_path, capsys):
    root, _ = image_folder_source
    code = run_with_friendly_errors(
        cli,
        generate_cli(tiny_keras_path, root, tmp_path / "o", *args),
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o" / "data").exists()


def test_cli_refuses_a_model_of_the_wrong_shape(image_folder_source, tmp_path, capsys):
    import keras

    root, _ = image_folder_source
    bad = tmp_path / "mnist.keras"
    keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]).save(bad)
    code = run_with_friendly_errors(
        cli, ["generate", "--source-model", str(bad), "--cifar10", str(root), "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "expected a 32x32x3 -> 10" in err and len(err.splitlines()) == 1


def test_disk_full_is_one_line_and_keeps_finished_shards(
    tiny_keras_path, image_folder_source, tmp_path, monkeypatch, capsys
):
    import cifar10_fgs.generate.writer as gen

    root, _ = image_folder_source
    real = gen.write_table_atomic
    calls = {"n": 0}

    def full(table, path, tmp_dir):
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(28, "No space left on device", str(path))
        return real(table, path, tmp_dir)

    monkeypatch.setattr(gen, "write_table_atomic", full)
    out = tmp_path / "full"
    code = run_with_friendly_errors(
        cli,
        generate_cli(tiny_keras_path, root, out, "--rows-per-shard", "25", "--batch-size", "32"),
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no space left" in err and len(err.splitlines()) == 1
    assert len(list((out / "data").iterdir())) == 1


def _kill_and_resume_source(tmp_path: Path) -> tuple[Path, Path]:
    model = tiny_model(seed=5, hidden=16)
    images, _ = synthetic_images(1500, seed=11)
    labels = labels_the_model_gets_right(model, images, wrong=50)
    root = write_image_folder(tmp_path / "src", "test", images, labels)
    model_path = tmp_path / "m.keras"
    model.save(model_path)
    return root, model_path


def test_sigkill_at_random_moments_then_resume_is_byte_identical(tmp_path):
    root, model_path = _kill_and_resume_source(tmp_path)
    cmd = [
        sys.executable,
        "-m",
        "cifar10_fgs.cli.main",
        "generate",
        "--source-model",
        str(model_path),
        "--cifar10",
        str(root),
        "--split",
        "test",
        "--rows-per-shard",
        "100",
        "--batch-size",
        "64",
        "-q",
    ]
    reference = tmp_path / "ref"
    subprocess.run([*cmd, "--out", str(reference)], check=True, capture_output=True)
    target = tmp_path / "killed"
    rng = random.Random(1234)
    kills = 0
    for _ in range(3):
        proc = subprocess.Popen([*cmd, "--out", str(target)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        seen = len(list((target / "data").glob("*.arrow"))) if (target / "data").exists() else 0
        while time.time() < deadline and proc.poll() is None:
            have = len(list((target / "data").glob("*.arrow"))) if (target / "data").exists() else 0
            if have > seen:
                time.sleep(rng.uniform(0.0, 0.2))
                break
            time.sleep(0.01)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        visible = list((target / "data").glob("*")) if (target / "data").exists() else []
        assert all(p.suffix == ".arrow" for p in visible), "no partial shard is ever visible under data/"
    assert kills >= 2
    subprocess.run([*cmd, "--out", str(target)], check=True, capture_output=True)
    assert folder_bytes(target) == folder_bytes(reference)


def test_two_workers_combine_into_the_single_machine_folder(generated, tiny_keras_path, image_folder_source, tmp_path):
    from cifar10_fgs.generate.combine import combine_workers
    from cifar10_fgs.validate import validate_dataset

    out, _ = generated
    root, _ = image_folder_source
    parts = []
    for i in range(2):
        part = tmp_path / f"worker{i}"
        generate_dataset(
            part,
            tiny_keras_path,
            GenerateOptions(cifar10=root, attack=CFG, rows_per_shard=25, num_workers=2, worker_index=i),
        )
        assert json.loads((part / MANIFEST).read_text())["complete"] is False  # a part alone is not publishable
        parts.append(part)
    with pytest.raises(OutputError, match="in no part"):
        combine_workers(tmp_path / "half", parts[:1])
    combined = tmp_path / "combined"
    combine_workers(combined, parts)
    assert {k: v for k, v in folder_bytes(combined).items() if k != MANIFEST} == {
        k: v for k, v in folder_bytes(out).items() if k != MANIFEST
    }
    merged, single = (json.loads((d / MANIFEST).read_text()) for d in (combined, out))
    assert merged["shards"] == single["shards"] and merged["summary"] == single["summary"]
    assert validate_dataset(combined, tiny_keras_path).ok


def test_kill_between_shard_rename_and_manifest_write(
    generated, tiny_keras_path, image_folder_source, tmp_path, monkeypatch
):
    """A shard renamed into data/ but not yet in the manifest is an extra file until the resume rewrites it."""
    import cifar10_fgs.dataset.manifest as mf
    from cifar10_fgs.validate import validate_dataset

    out, _ = generated
    root, _ = image_folder_source
    real = mf.write_json
    calls = {"n": 0}

    def dies_on_first_shard_entry(path, obj):
        if isinstance(obj, dict) and obj.get("shards"):
            calls["n"] += 1
            raise KeyboardInterrupt  # the process dies right after the first shard's rename
        return real(path, obj)

    monkeypatch.setattr(mf, "write_json", dies_on_first_shard_entry)
    target = tmp_path / "between"
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(target, tiny_keras_path, replace(OPTS, cifar10=root, attack=CFG))
    monkeypatch.setattr(mf, "write_json", real)
    assert calls["n"] >= 1 and len(list((target / "data").glob("*.arrow"))) >= 1
    report = validate_dataset(target)
    assert not report.ok  # the unlisted shard (and the incomplete manifest) are named
    generate_dataset(target, tiny_keras_path, replace(OPTS, cifar10=root, attack=CFG))
    assert folder_bytes(target) == folder_bytes(out)
    assert validate_dataset(target, tiny_keras_path).ok


def test_read_only_output_folder_is_one_line_exit_2(tiny_keras_path, image_folder_source, tmp_path, capsys):
    """Uses an immutable folder (chattr +i), which even root cannot write into; skipped where chattr is unavailable."""
    root, _ = image_folder_source
    ro = tmp_path / "readonly"
    ro.mkdir()
    if subprocess.run(["chattr", "+i", str(ro)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        code = run_with_friendly_errors(
            cli,
            generate_cli(tiny_keras_path, root, ro / "ds"),
        )
        err = capsys.readouterr().err.strip()
        assert code == 2 and "not writable" in err and len(err.splitlines()) == 1
        assert list(ro.iterdir()) == []
    finally:
        subprocess.run(["chattr", "-i", str(ro)], capture_output=True)
