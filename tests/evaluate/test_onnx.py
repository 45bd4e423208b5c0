"""ONNX models scored forward: real graphs built with onnx.helper, run by the real onnxruntime, on a real dataset.

The graphs are the tiny Keras model's own weights written as ONNX ops, in two conventions: NCHW with
pixels in [0, 1] (PyTorch's) and NHWC with pixels in [0, 255] (this project's Keras models'). Their
leaderboard numbers are checked against onnxruntime called directly, and against the Keras model.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from cifar10_fgs.cli._errors import run_with_friendly_errors
from cifar10_fgs.cli.main import cli
from cifar10_fgs.data import load_cifar10
from cifar10_fgs.dataset.shards import decode_images, read_shard
from cifar10_fgs.errors import ConfigError, ModelError
from cifar10_fgs.evaluate import GaussianOptions, evaluate_gaussian
from cifar10_fgs.evaluate.leaderboard import LeaderboardOptions, evaluate_leaderboard
from cifar10_fgs.evaluate.metrics import classify, linf_levels, random_sign_control
from cifar10_fgs.models.convention import SIDECAR, Declared, Layout, Output, merge, parse_declared
from cifar10_fgs.models.forward import load_classifier
from cifar10_fgs.models.onnx_model import EXTRA, load_onnx

from helpers import tiny_model

# --------------------------------------------------------------------------- ONNX graphs of the tiny Keras model


def tiny_onnx(
    model,
    path: Path,
    *,
    layout="NCHW",
    scale=1.0,
    softmax=False,
    batch="N",
    name="tiny_onnx",
    shape=None,
    external=False,
) -> Path:
    """``helpers.tiny_model``'s network as an ONNX graph taking ``layout`` pixels in [0, ``scale``]."""
    from onnx import TensorProto, helper, numpy_helper

    kernel, bias, dense_w, dense_b = model.get_weights()
    inits = [
        numpy_helper.from_array(kernel.transpose(3, 2, 0, 1).copy(), "conv_w"),  # HWIO -> OIHW
        numpy_helper.from_array(bias, "conv_b"),
        numpy_helper.from_array(dense_w, "dense_w"),
        numpy_helper.from_array(dense_b, "dense_b"),
    ]
    nodes, x = [], "pixels"
    if scale == 255.0:  # Keras' Rescaling(1 / 255) inside the graph
        inits.append(numpy_helper.from_array(np.array(1.0 / 255.0, np.float32), "inv255"))
        nodes.append(helper.make_node("Mul", [x, "inv255"], ["scaled"]))
        x = "scaled"
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", [x], ["nchw"], perm=[0, 3, 1, 2]))
        x = "nchw"
    nodes += [
        helper.make_node("Conv", [x, "conv_w", "conv_b"], ["conv"], strides=[2, 2], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "dense_w", "dense_b"], ["scores" if softmax else "logits"]),
    ]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["scores"], ["logits"], axis=1))
    shape = shape or ([batch, 3, 32, 32] if layout == "NCHW" else [batch, 32, 32, 3])
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [shape[0], 10])],
        inits,
    )
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="onnx.helper", producer_version="test"
    )
    proto.ir_version = 9
    onnx.checker.check_model(proto)
    path.parent.mkdir(parents=True, exist_ok=True)
    if external:  # the weights in PATH.data, as torch.onnx.export writes them
        onnx.save(proto, str(path), save_as_external_data=True, location=f"{path.name}.data", size_threshold=0)
    else:
        onnx.save(proto, str(path))
    return path


def ort_logits(path: Path, x: np.ndarray) -> np.ndarray:
    """onnxruntime called directly on already-prepared float32 input."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]


def nchw01(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32).transpose(0, 3, 1, 2) / 255.0


def accuracy_and_loss(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Accuracy and mean cross-entropy, in float64 numpy."""
    z = logits.astype(np.float64)
    top = z.max(1)
    loss = np.log(np.exp(z - top[:, None]).sum(1)) + top - z[np.arange(len(z)), labels]
    return float((z.argmax(1) == labels).mean()), float(loss.mean())


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def nets(tmp_path_factory) -> dict[str, Path]:
    """A Keras transfer target (the source's weights plus noise: right on most originals, fooled by some copies)
    and its graph in ONNX: NCHW/[0, 1] (the defaults), NHWC/[0, 255] (a sidecar), NCHW with a softmax."""
    d = tmp_path_factory.mktemp("nets")
    model = tiny_model()
    rng = np.random.default_rng(1)
    model.set_weights([w + 0.05 * np.abs(w).mean() * rng.standard_normal(w.shape) for w in tiny_model().get_weights()])
    model.save(d / "target.keras")
    nhwc = tiny_onnx(model, d / "nhwc" / "target_nhwc.onnx", layout="NHWC", scale=255.0, name="tiny_nhwc")
    (nhwc.parent / SIDECAR).write_text(json.dumps({"scale": 255}))
    return {
        "keras": d / "target.keras",
        "nchw": tiny_onnx(model, d / "nchw" / "target_nchw.onnx", name="tiny_nchw"),
        "nhwc": nhwc,
        "softmax": tiny_onnx(model, d / "softmax" / "target_softmax.onnx", softmax=True),
    }


def rows(folder: Path, source_root: Path):
    """(original, adversarial, labels, index) of the test split, read from the shards, sorted by index."""
    tables = [read_shard(p) for p in sorted((folder / "data").glob("test-*.arrow"))]
    index = np.concatenate([t.column("index").to_numpy() for t in tables]).astype(np.int64)
    adv = np.concatenate([decode_images(t.column("image").to_pylist()) for t in tables])
    order = np.argsort(index)
    original = load_cifar10(source_root, "test")
    index = index[order]
    return original.images[index], adv[order], original.labels[index], index


def transfer_args(folder: Path, *rest: str) -> list[str]:
    """``evaluate transfer`` on ``folder`` (the one place that knows how the dataset folder is passed)."""
    return ["evaluate", "transfer", str(folder), *rest]


def run(args, capsys) -> tuple[int, str, str]:
    code = run_with_friendly_errors(cli, args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line(err: str) -> str:
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    return err


@pytest.fixture(scope="module")
def board(folder, nets, tiny_keras_path, tmp_path_factory):
    """One leaderboard of the Keras target, its two ONNX graphs and the (Keras) source model."""
    models = [str(nets["keras"]), str(nets["nchw"]), str(nets["nhwc"]), str(tiny_keras_path)]
    out = tmp_path_factory.mktemp("board")
    result = evaluate_leaderboard(folder, models, LeaderboardOptions(out_dir=out))
    return result, {e.model: e for e in result.entries}, json.loads(Path(result.json_path).read_text())


# --------------------------------------------------------------------------- the leaderboard


def test_onnx_entries_match_onnxruntime_called_directly(board, folder, nets, image_folder_source):
    _, by, written = board
    original, adversarial, labels, index = rows(folder, image_folder_source[0])
    control = random_sign_control(original, linf_levels(adversarial, original), 0, keys=index)
    for key, prepare in (("nchw", nchw01), ("nhwc", lambda x: x.astype(np.float32))):
        e = by[str(nets[key])]
        clean, clean_loss = accuracy_and_loss(ort_logits(nets[key], prepare(original)), labels)
        adv, adv_loss = accuracy_and_loss(ort_logits(nets[key], prepare(adversarial)), labels)
        ctrl, _ = accuracy_and_loss(ort_logits(nets[key], prepare(control)), labels)
        assert (e.clean_acc, e.adversarial_acc) == (clean, adv)
        assert clean > 0.5 and adv < clean  # a target worth scoring: right on most originals, fooled by copies
        assert (e.clean_loss, e.adversarial_loss) == (
            pytest.approx(clean_loss, rel=1e-5),
            pytest.approx(adv_loss, rel=1e-5),
        )
        assert e.random_sign_control_drop == pytest.approx(clean - ctrl)
        assert e.accuracy_drop == pytest.approx(clean - adv)
        assert e.sha256 == hashlib.sha256(nets[key].read_bytes()).hexdigest()
        assert (e.framework, e.opset, e.producer, e.provider) == (
            "onnx",
            17,
            "onnx.helper test",
            "CPUExecutionProvider",
        )
        assert e.parameters == 8 * 3 * 3 * 3 + 8 + 8 * 10 + 10 == int(tiny_model().count_params())
        assert e.runtime == f"onnxruntime {ort.__version__}" and not e.generated_the_dataset
    assert len(labels) == written["rows"]["num_rows_used"] > 0

    nchw, nhwc = by[str(nets["nchw"])].input_convention, by[str(nets["nhwc"])].input_convention
    assert (nchw["layout"], nchw["scale"], nchw["mean"], nchw["output"]) == ("NCHW", 1.0, None, "logits")
    assert nchw["declared_by"] == {
        "layout": "input shape",
        "scale": "default",
        "mean": "default",
        "std": "default",
        "output": "default",
    }
    assert (nhwc["layout"], nhwc["scale"]) == ("NHWC", 255.0)
    assert nhwc["declared_by"]["scale"] == SIDECAR  # the file name: no path of the machine it was read on
    assert nhwc["declared_by"]["layout"] == "input shape"


def test_keras_and_the_equivalent_onnx_graphs_score_the_same_to_the_image(board, nets, folder, tiny_keras_path):
    result, by, written = board
    k, a, b = by[str(nets["keras"])], by[str(nets["nchw"])], by[str(nets["nhwc"])]
    for e in (a, b):
        for field in ("clean_acc", "adversarial_acc", "accuracy_drop", "random_sign_control_drop"):
            assert getattr(e, field) == getattr(k, field), field
        assert e.clean_loss == pytest.approx(k.clean_loss, rel=1e-5, abs=1e-6)
        assert e.adversarial_loss == pytest.approx(k.adversarial_loss, rel=1e-5, abs=1e-6)
        assert e.parameters == k.parameters
    assert (k.framework, k.opset, k.input_convention["layout"], k.input_convention["scale"]) == (
        "keras",
        None,
        "NHWC",
        255.0,
    )
    assert k.producer.startswith("keras 3.") and k.provider == "tensorflow CPU"
    assert by[str(tiny_keras_path)].generated_the_dataset and by[str(tiny_keras_path)].adversarial_acc == 0.0
    frameworks = {m["model"]: m["framework"] for m in written["models"]}
    assert sorted(frameworks.values()) == ["keras", "keras", "onnx", "onnx"]  # one leaderboard for both kinds
    md = Path(result.markdown_path).read_text()
    assert md.count("| onnx |") == 2 and md.count("| keras |") == 2

    # the same prediction on every image, not only the same counts
    from cifar10_fgs.evaluate.joined import load_joined

    joined, _, _ = load_joined(folder, ["test"])
    j = joined["test"]
    keras_model = load_classifier(nets["keras"])
    for key in ("nchw", "nhwc"):
        onnx_model = load_classifier(nets[key])
        for images in (j.original, j.adversarial):
            ref = classify(keras_model, images, j.labels).predictions
            np.testing.assert_array_equal(classify(onnx_model, images, j.labels).predictions, ref)


def test_the_declared_convention_reaches_the_runtime(folder, nets, image_folder_source, tmp_path, capsys):
    """A wrong --input-scale (255 for a [0, 1] model) scores what onnxruntime gives on [0, 255] input."""
    original, adversarial, labels, _ = rows(folder, image_folder_source[0])
    scores = {}
    for scale in ("1", "255"):
        out = tmp_path / scale
        args = transfer_args(folder, "--model", str(nets["nchw"]), "--input-scale", scale, "--leaderboard")
        code, stdout, _ = run([*args, "--out", str(out), "--json"], capsys)
        assert code == 0
        (scores[scale],) = json.loads(stdout)["entries"]
    right, wrong = scores["1"], scores["255"]
    assert wrong["input_convention"]["scale"] == 255.0
    assert wrong["input_convention"]["declared_by"]["scale"] == "the command line"
    acc, loss = accuracy_and_loss(ort_logits(nets["nchw"], original.astype(np.float32).transpose(0, 3, 1, 2)), labels)
    assert (wrong["clean_acc"], wrong["clean_loss"]) == (acc, pytest.approx(loss, rel=1e-5))
    acc, loss = accuracy_and_loss(ort_logits(nets["nchw"], nchw01(original)), labels)
    assert (right["clean_acc"], right["clean_loss"]) == (acc, pytest.approx(loss, rel=1e-5))
    assert wrong["clean_loss"] != pytest.approx(right["clean_loss"], rel=0.01)

    # mean / std: (x / 255 - mean) / std per channel, fed to the same graph
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    out = tmp_path / "normalised"
    options = ["--input-mean", ",".join(map(str, mean)), "--input-std", ",".join(map(str, std))]
    code, stdout, _ = run(
        transfer_args(folder, "--model", str(nets["nchw"]), *options, "--leaderboard", "--out", str(out), "--json"),
        capsys,
    )
    assert code == 0
    (entry,) = json.loads(stdout)["entries"]
    x = (adversarial.astype(np.float32) / 255.0 - np.float32(mean)) / np.float32(std)
    acc, loss = accuracy_and_loss(ort_logits(nets["nchw"], x.transpose(0, 3, 1, 2)), labels)
    assert (entry["adversarial_acc"], entry["adversarial_loss"]) == (acc, pytest.approx(loss, rel=1e-5))
    assert entry["input_convention"]["mean"] == list(mean) and entry["input_convention"]["std"] == list(std)


def test_probabilities_are_declared_and_checked(folder, nets, board, tmp_path, capsys):
    _, by, _ = board
    logits_entry = by[str(nets["nchw"])]
    out = tmp_path / "p"
    args = transfer_args(folder, "--model", str(nets["softmax"]), "--model-output", "probabilities", "--leaderboard")
    code, stdout, _ = run([*args, "--out", str(out), "--json"], capsys)
    assert code == 0
    (p,) = json.loads(stdout)["entries"]
    assert (p["clean_acc"], p["adversarial_acc"]) == (logits_entry.clean_acc, logits_entry.adversarial_acc)
    assert p["clean_loss"] == pytest.approx(logits_entry.clean_loss, rel=1e-4)  # log(softmax(z)) is z up to a constant

    # a logits model declared to output probabilities is refused, in one line
    args = transfer_args(folder, "--model", str(nets["nchw"]), "--model-output", "probabilities", "--leaderboard")
    code, _, err = run([*args, "--out", str(tmp_path / "q")], capsys)
    assert code == 2 and "are not probabilities" in one_line(err) and "--model-output logits" in err


def test_gaussian_scores_onnx_models_like_the_keras_one(folder, nets):
    r = evaluate_gaussian(
        folder, [nets["keras"], nets["nhwc"], nets["nchw"]], GaussianOptions(stds=(0.0, 1.0), name="gaussian_onnx")
    )
    assert r.models == ("target", "target_nhwc", "target_nchw")
    for std in r.stds:
        for s in ("original", "adversarial"):
            assert r.accuracy("target_nhwc", s, std) == r.accuracy("target", s, std)
            assert r.accuracy("target_nchw", s, std) == r.accuracy("target", s, std)
    info = r.report["models"]
    assert info["target_nchw"]["framework"] == "onnx" and info["target"]["framework"] == "keras"
    assert info["target_nhwc"]["input_convention"]["scale"] == 255.0


def test_a_fixed_batch_model_runs_in_its_own_batch_size(nets, tmp_path):
    single = tiny_onnx(load_classifier(nets["keras"]).model, tmp_path / "b1.onnx", batch=1)
    images = np.random.default_rng(0).integers(0, 256, (7, 32, 32, 3)).astype(np.uint8)
    fixed, dynamic = load_onnx(single), load_onnx(nets["nchw"])
    assert fixed.fixed_batch == 1 and dynamic.fixed_batch is None
    np.testing.assert_allclose(fixed.predict_logits(images, 4), dynamic.predict_logits(images, 4), rtol=1e-5, atol=1e-6)


def test_weights_in_an_external_data_file_are_read_and_hashed(nets, tmp_path, capsys):
    model = load_classifier(nets["keras"]).model
    split = tiny_onnx(model, tmp_path / "split" / "m.onnx", external=True)
    data = split.parent / "m.onnx.data"
    assert data.stat().st_size > split.stat().st_size  # the weights are outside the graph file
    images = np.random.default_rng(0).integers(0, 256, (9, 32, 32, 3)).astype(np.uint8)
    loaded = load_onnx(split)
    np.testing.assert_array_equal(loaded.predict_logits(images, 4), load_onnx(nets["nchw"]).predict_logits(images, 4))
    lines = "".join(f"{p.name} {hashlib.sha256(p.read_bytes()).hexdigest()}\n" for p in (split, data))
    assert loaded.sha256 == hashlib.sha256(lines.encode()).hexdigest()  # a change to the weights changes it
    data.unlink()
    with pytest.raises(ModelError, match="keeps its weights in m.onnx.data, which is not beside it"):
        load_onnx(split)


# --------------------------------------------------------------------------- an ONNX model on the hub


def test_an_hf_onnx_repo_is_scored_with_its_sidecar(folder, nets, board, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from hf_server import LocalHub

    hub = LocalHub()
    commit = hub.commit(
        "someone/tiny-onnx",
        {"model.onnx": nets["nhwc"].read_bytes(), SIDECAR: b'{"layout": "NHWC", "scale": 255}'},
        repo_type="model",
    )
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with hub.serve() as endpoint:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        result = evaluate_leaderboard(folder, ["hf://someone/tiny-onnx"], LeaderboardOptions(out_dir=tmp_path / "b"))
    (e,) = result.entries
    local = board[1][str(nets["nhwc"])]
    assert (e.commit, e.name, e.framework) == (commit, "someone/tiny-onnx", "onnx")
    assert e.sha256 == local.sha256 and (e.clean_acc, e.adversarial_acc) == (local.clean_acc, local.adversarial_acc)
    assert e.input_convention["declared_by"]["layout"].endswith(SIDECAR)


# --------------------------------------------------------------------------- refusals: one line, exit 2, nothing written


def test_bad_models_and_conflicting_declarations_are_one_line_errors(folder, nets, tmp_path, capsys):
    garbage = tmp_path / "broken.onnx"
    garbage.write_bytes(b"this is not a protobuf \x00\xff" * 10)
    mnist = tiny_onnx(tiny_model(), tmp_path / "gray.onnx", shape=["N", 1, 28, 28])
    conflict = tmp_path / "conflict"
    conflict.mkdir()
    (conflict / "m.onnx").write_bytes(nets["nchw"].read_bytes())
    (conflict / SIDECAR).write_text('{"scale": 1}')
    typo = tmp_path / "typo"
    typo.mkdir()
    (typo / "m.onnx").write_bytes(nets["nchw"].read_bytes())
    (typo / SIDECAR).write_text('{"scael": 255}')
    cases = [
        ([str(garbage)], "is not a loadable ONNX model"),
        ([str(mnist)], "takes input of shape (N, 1, 28, 28): expected a batch of 32x32x3 images"),
        ([str(conflict / "m.onnx"), "--input-scale", "255"], "declares scale 1 but the command line declares 255"),
        ([str(typo / "m.onnx")], "unknown key 'scael'"),
        ([str(nets["nchw"]), "--input-layout", "NHWC"], "declares layout NHWC: declare NCHW"),
        ([str(nets["nchw"]), "--input-mean", "0.5,0.5,0.5"], "mean is declared without std"),
        ([str(nets["nchw"]), "--input-std", "1,0,1"], "--input-std [1.0, 0.0, 1.0] is invalid"),
        ([str(nets["keras"]), "--input-layout", "NCHW"], "declares layout NCHW: declare NHWC"),
        ([str(tmp_path / "model.pt")], "is neither a Keras (.keras, .h5) nor an .onnx file"),
    ]
    (tmp_path / "model.pt").write_bytes(b"\0")
    for model_args, needle in cases:
        for board_args in (["--leaderboard", "--out", str(tmp_path / "b")], ["--name", "refused"]):
            code, _, err = run(transfer_args(folder, "--model", *model_args, *board_args, "-q"), capsys)
            assert code == 2 and needle in one_line(err), (model_args, err)
    assert not (tmp_path / "b").exists() and not (folder / "results" / "refused.json").exists()


def test_keras_only_commands_name_what_onnx_models_can_do(folder, nets, tmp_path, capsys):
    args = ["evaluate", "retrain", str(folder), "--out", str(tmp_path / "r.keras")]
    code, _, err = run([*args, "--target-model", str(nets["nchw"]), "-q"], capsys)
    assert code == 2 and "is an ONNX model: this command needs a Keras model" in one_line(err)
    assert not (tmp_path / "r.keras").exists()


def test_a_missing_extra_is_named_in_one_line(folder, nets, tmp_path):
    """onnxruntime hidden from a real CLI process: the error names the extra that installs it."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "onnxruntime.py").write_text("raise ImportError(\"No module named 'onnxruntime'\", name='onnxruntime')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shim), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "b"
    args = transfer_args(folder, "--model", str(nets["nchw"]), "--leaderboard", "--out", str(out), "-q")
    proc = subprocess.run(
        [sys.executable, "-c", "from cifar10_fgs.cli.main import main; main()", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and EXTRA in proc.stderr and "onnxruntime is not installed" in proc.stderr
    assert not out.exists()


def test_onnx_models_are_scored_without_tensorflow(folder, nets, board, tmp_path):
    """A leaderboard of ONNX models alone never imports TensorFlow or Keras (a fresh process)."""
    code = (
        "import json, sys\n"
        "from cifar10_fgs.evaluate.leaderboard import LeaderboardOptions, evaluate_leaderboard\n"
        f"o = LeaderboardOptions(out_dir={str(tmp_path / 'b')!r})\n"
        f"b = evaluate_leaderboard({str(folder)!r}, [{str(nets['nchw'])!r}], o)\n"
        "print(json.dumps([b.entries[0].adversarial_acc, 'tensorflow' in sys.modules, 'keras' in sys.modules]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    accuracy, tensorflow, keras = json.loads(proc.stdout.splitlines()[-1])
    assert accuracy == board[1][str(nets["nchw"])].adversarial_acc and not tensorflow and not keras


# --------------------------------------------------------------------------- the convention, as data


def test_declarations_parse_merge_and_refuse_disagreements():
    cli = parse_declared({"layout": "nhwc", "scale": "255", "mean": "0.5, 0.5,0.5", "std": None}, "the command line")
    assert (cli.layout, cli.scale, cli.mean, cli.std, cli.output) == (Layout.NHWC, 255.0, (0.5,) * 3, None, None)
    side = parse_declared({"std": [1, 2, 4], "output": "probabilities", "scale": 255}, "x/cifar10-fgs.json")
    values, origin = merge([cli, side], "m.onnx")
    assert values == {
        "layout": Layout.NHWC,
        "scale": 255.0,
        "mean": (0.5,) * 3,
        "std": (1.0, 2.0, 4.0),
        "output": Output.PROBABILITIES,
    }
    assert origin["scale"] == "the command line" and origin["std"] == "x/cifar10-fgs.json"
    assert not Declared("nowhere") and merge([None, Declared("nowhere")], "m") == ({}, {})
    with pytest.raises(ConfigError, match="declares layout NHWC but b declares NCHW"):
        merge([Declared("a", layout=Layout.NHWC), Declared("b", layout=Layout.NCHW)], "m.onnx")
    for bad, needle in (
        ({"scale": 2}, "expected 1 (pixels in [0, 1]) or 255"),
        ({"scale": True}, "scale True is invalid"),
        ({"mean": [1, 2]}, "expected 3 numbers"),
        ({"layout": "CHW"}, "expected NCHW or NHWC"),
        ({"output": "softmax"}, "expected logits or probabilities"),
    ):
        with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
            parse_declared(bad, "f.json")


def test_an_unreadable_sidecar_is_a_model_error(nets, tmp_path):
    (tmp_path / "m.onnx").write_bytes(nets["nchw"].read_bytes())
    (tmp_path / SIDECAR).write_text("{not json")
    with pytest.raises(ModelError, match="is not readable JSON"):
        load_onnx(tmp_path / "m.onnx")
    (tmp_path / SIDECAR).write_text("[1, 2]")
    with pytest.raises(ModelError, match="holds list, not an object"):
        load_onnx(tmp_path / "m.onnx")
