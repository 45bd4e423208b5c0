"""A Keras model in keras.io's convention (x / 255 in, softmax out) as the source: generate, validate, the hub.

The model is a tiny real CNN trained a few epochs; its convention is declared in a ``cifar10-fgs.json``
beside it (or with the options). Every stored row must fool the model fed as it expects, and a folder
made with an undeclared model must stay what it was.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cifar10_fgs.cli._errors import run_with_friendly_errors
from cifar10_fgs.cli.main import cli
from cifar10_fgs.dataset.manifest import FILE as MANIFEST
from cifar10_fgs.dataset.shards import decode_images, read_shard
from cifar10_fgs.models.convention import SIDECAR
from cifar10_fgs.publish.card import write_card

from helpers import fed_as_keras_io, generate_cli, softmax_model, synthetic_images, write_image_folder

KERAS_IO = {"scale": 1, "output": "probabilities"}
FAST = ("--rows-per-shard", "25", "--batch-size", "32")
REPO = "someone/keras-io-source"
TOKEN = "hf_NotARealTokenForTheLocalHub0123456789"


@pytest.fixture(scope="module")
def keras_io(tmp_path_factory):
    """(model folder with m.keras + sidecar, the model, image folder, {split: (images, labels)})."""
    d = tmp_path_factory.mktemp("kio")
    model = softmax_model(seed=4)
    x, y = synthetic_images(300, seed=9)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x / 255.0, y, epochs=3, batch_size=50, verbose=0)
    (d / "models").mkdir()
    model.save(d / "models" / "m.keras")
    (d / "models" / SIDECAR).write_text(json.dumps(KERAS_IO))
    data = {}
    for split, n, seed in (("train", 50, 1), ("test", 40, 2)):
        images, _ = synthetic_images(n, seed)
        labels = fed_as_keras_io(model, images).argmax(axis=1)
        labels[:4] = (labels[:4] + 1) % 10  # four the model already gets wrong
        write_image_folder(d / "cifar", split, images, labels)
        data[split] = (images, labels)
    return d / "models", model, d / "cifar"


def run(args, capsys) -> tuple[int, str]:
    code = run_with_friendly_errors(cli, args)
    return code, capsys.readouterr().err


def stored(folder: Path):
    """(adversarial images, labels) of every stored row."""
    tables = [read_shard(p) for p in sorted((folder / "data").glob("*.arrow"))]
    images = np.concatenate([decode_images(t.column("image").to_pylist()) for t in tables])
    return images, np.concatenate([t.column("label").to_numpy() for t in tables])


def shard_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "data").glob("*.arrow"))}


@pytest.fixture(scope="module")
def generated(keras_io, tmp_path_factory):
    models, _, cifar = keras_io
    out = tmp_path_factory.mktemp("gen") / "ds"
    assert run_with_friendly_errors(cli, generate_cli(models / "m.keras", cifar, out, *FAST)) == 0
    return out


def test_every_stored_row_fools_the_model_fed_as_it_expects(generated, keras_io):
    _, model, _ = keras_io
    images, labels = stored(generated)
    assert len(images) == 90  # every image fooled (4 + 4 already wrong, stored unchanged)
    assert (fed_as_keras_io(model, images).argmax(axis=1) != labels).all()
    manifest = json.loads((generated / MANIFEST).read_text())
    recorded = manifest["config"]["input_convention"]
    assert recorded == {"layout": "NHWC", "scale": 1.0, "mean": None, "std": None, "output": "probabilities"}
    source = manifest["source_model"]
    assert source["outputs"] == "probabilities" and source["input_convention"]["logits"].startswith("pre-softmax")
    assert source["input_convention"]["declared_by"]["scale"] == SIDECAR
    write_card(generated, REPO)
    assert (
        "NHWC, pixels in [0, 1], probabilities out (declared by cifar10-fgs.json)"
        in (generated / "README.md").read_text()
    )


def test_validate_uses_the_recorded_convention_and_refuses_a_contrary_one(generated, keras_io, capsys):
    models, _, cifar = keras_io
    before = shard_bytes(generated)
    assert run(generate_cli(models / "m.keras", cifar, generated, *FAST), capsys)[0] == 0  # resumes: the same key
    assert shard_bytes(generated) == before
    args = ["validate", str(generated), "--source-model", str(models / "m.keras"), "--cifar10", str(cifar), "-q"]
    assert run(args, capsys)[0] == 0
    code, err = run([*args, "--input-scale", "255"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "cifar10-fgs.json declares scale 1 but the command line declares 255" in err


@pytest.fixture(scope="module")
def by_options(keras_io, tmp_path_factory):
    """(the model without a sidecar, the folder generate made from it with the convention given as options)."""
    models, _, cifar = keras_io
    bare = tmp_path_factory.mktemp("bare")
    shutil.copy(models / "m.keras", bare / "m.keras")  # no sidecar
    declared = ("--input-scale", "1", "--model-output", "probabilities")
    out = bare / "ds"
    assert run_with_friendly_errors(cli, generate_cli(bare / "m.keras", cifar, out, *FAST, *declared)) == 0
    return bare, out


def test_options_instead_of_a_sidecar_give_the_same_bytes(generated, by_options, keras_io, tmp_path, capsys):
    _, model, cifar = keras_io
    bare, out = by_options
    assert shard_bytes(out) == shard_bytes(generated)
    # validate needs no options: generation.json records the convention, and a contrary one is refused
    validate = ["validate", str(out), "--source-model", str(bare / "m.keras"), "-q"]
    assert run(validate, capsys)[0] == 0
    code, err = run([*validate, "--input-scale", "255"], capsys)
    assert code == 2 and "the command line declares scale 255 but generation.json says 1" in err
    # undeclared, the model is fed [0, 255] as if its probabilities were logits: what it sees is not attacked
    undeclared = tmp_path / "undeclared"
    code, _ = run(generate_cli(bare / "m.keras", cifar, undeclared, *FAST, "--allow-failures"), capsys)
    images, labels = stored(undeclared)
    assert code == 0 and (fed_as_keras_io(model, images).argmax(axis=1) == labels).any()


def test_the_generating_model_is_scored_as_it_was_attacked(by_options, tiny_keras_path, capsys):
    """evaluate transfer --source-model (and its leaderboard entry) feeds it as generation.json records."""
    bare, out = by_options
    args = ["evaluate", "transfer", str(out), "--model", str(tiny_keras_path), "--source-model", str(bare / "m.keras")]
    assert run([*args, "-q"], capsys)[0] == 0
    source = json.loads((out / "results" / "transfer.json").read_text())["results"]["source"]
    assert source["adversarial"]["accuracy"] == 0.0  # white-box: every stored image fools it
    assert source["agrees_with_stored_adversarial_prediction"] == 1.0
    assert run([*args, "--leaderboard", "-q"], capsys)[0] == 0
    entries = json.loads((out / "results" / "leaderboard.json").read_text())["models"]
    (entry,) = [e for e in entries if e["generated_the_dataset"]]
    assert entry["adversarial_acc"] == 0.0 and entry["input_convention"]["scale"] == 1.0


def test_an_undeclared_model_writes_what_it_always_wrote(tiny_keras_path, image_folder_source, tmp_path, capsys):
    """A sidecar declaring exactly this project's convention runs the model's own graph: the same bytes, no key."""
    root, _ = image_folder_source
    plain, declared = tmp_path / "plain", tmp_path / "declared"
    declared.mkdir()
    shutil.copy(tiny_keras_path, declared / "tiny.keras")
    (declared / SIDECAR).write_text(json.dumps({"layout": "NHWC", "scale": 255, "output": "logits"}))
    for model, out in ((tiny_keras_path, plain / "ds"), (declared / "tiny.keras", declared / "ds")):
        assert run(generate_cli(model, root, out, *FAST), capsys)[0] == 0
    assert shard_bytes(plain / "ds") == shard_bytes(declared / "ds")
    for out in (plain / "ds", declared / "ds"):
        assert "input_convention" not in json.loads((out / MANIFEST).read_text())["config"]


def test_a_folder_recording_the_old_pixel_range_still_resumes_and_validates(
    tiny_keras_path, image_folder_source, tmp_path, capsys
):
    root, _ = image_folder_source
    out = tmp_path / "ds"
    assert run(generate_cli(tiny_keras_path, root, out, *FAST), capsys)[0] == 0
    before = shard_bytes(out)
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["config"]["attack"].update(pixel_min=0.0, pixel_max=255.0)  # as every folder made before recorded
    (out / MANIFEST).write_text(json.dumps(manifest))
    assert run(generate_cli(tiny_keras_path, root, out, *FAST), capsys)[0] == 0  # resumed: nothing to do
    assert shard_bytes(out) == before
    assert json.loads((out / MANIFEST).read_text())["config"]["attack"]["pixel_max"] == 255.0  # kept as recorded
    assert run(["validate", str(out), "--source-model", str(tiny_keras_path), "-q"], capsys)[0] == 0
    manifest["config"]["attack"]["pixel_max"] = 1.0  # a range the stored uint8 bytes cannot have come from
    (out / MANIFEST).write_text(json.dumps(manifest))
    code = run_with_friendly_errors(cli, ["validate", str(out), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and any("pixel_max 1.0 is not supported" in f["message"] for f in report["failures"])


def test_a_model_that_is_not_a_10_class_classifier_is_one_line(image_folder_source, tmp_path, capsys):
    import keras

    root, _ = image_folder_source
    seven = tmp_path / "seven.keras"
    keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(7)]).save(seven)
    code, err = run(generate_cli(seven, root, tmp_path / "o"), capsys)
    assert code == 2 and err.count("\n") == 1 and "to (7,): expected a 32x32x3 -> 10 CIFAR-10 classifier" in err
    assert not (tmp_path / "o").exists()


def test_the_hub_copy_ships_the_sidecar_and_validates_from_its_repo_alone(generated, keras_io, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from hf_server import LocalHub, point_client_at

    models, _, _ = keras_io
    hub = LocalHub(tmp_path / "hub", token=TOKEN)
    with hub.serve() as endpoint:
        point_client_at(monkeypatch, endpoint, TOKEN)
        args = ["upload", str(generated), "--repo-id", REPO, "--source-model", str(models / "m.keras"), "-q"]
        assert run_with_friendly_errors(cli, args) == 0
        files = set(list(hub.repos[("dataset", REPO)]["commits"].values())[-1])
        assert {"source_model/m.keras", f"source_model/{SIDECAR}"} <= files
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))
        assert run_with_friendly_errors(cli, ["validate", f"hub:{REPO}", "-q"]) == 0
