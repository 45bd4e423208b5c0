"""`evaluate`: transfer, retrain and gaussian, checked against direct numpy computations on a tiny folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cifar10_fgs.cli._errors import run_with_friendly_errors
from cifar10_fgs.cli.main import cli
from cifar10_fgs.config import AttackConfig, GaussianVariant
from cifar10_fgs.data import CLASS_NAMES, load_cifar10
from cifar10_fgs.dataset.shards import decode_images, read_shard, write_table_atomic
from cifar10_fgs.errors import Cifar10Error, ConfigError, OutputError, ValidationError
from cifar10_fgs.evaluate import (
    ALL_VARIANTS,
    GaussianOptions,
    RetrainOptions,
    TransferOptions,
    evaluate_gaussian,
    evaluate_retrain,
    evaluate_transfer,
)
from cifar10_fgs.evaluate.filters import blur, gaussian_blur
from cifar10_fgs.evaluate.metrics import Classification, confidence_split, linf_levels, random_sign_control
from cifar10_fgs.generate.core import GenerateOptions, generate_dataset
from cifar10_fgs.provenance import sha256_file

from helpers import tiny_model, write_image_folder

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def target_path(tmp_path_factory, tiny_keras_path) -> Path:
    """The source's weights plus a little noise: it gets most originals right and is fooled by some copies."""
    import keras

    base = keras.saving.load_model(tiny_keras_path, compile=False)
    model = tiny_model()
    rng = np.random.default_rng(1)
    model.set_weights([w + 0.05 * np.abs(w).mean() * rng.standard_normal(w.shape) for w in base.get_weights()])
    path = tmp_path_factory.mktemp("target") / "target.keras"
    model.save(path)
    return path


def load(path):
    import keras

    return keras.saving.load_model(path, compile=False)


def direct(folder: Path, source_root: Path, split: str = "test"):
    """Rows read straight from the Arrow shards (no datasets), joined by index by hand, sorted by index."""
    tables = [read_shard(p) for p in sorted((folder / "data").glob(f"{split}-*.arrow"))]
    index = np.concatenate([t.column("index").to_numpy() for t in tables]).astype(np.int64)
    adv = np.concatenate([decode_images(t.column("image").to_pylist()) for t in tables])
    order = np.argsort(index)
    original = load_cifar10(source_root, split)
    index = index[order]
    return index, original.images[index], adv[order], original.labels[index]


def numpy_metrics(logits: np.ndarray, labels: np.ndarray):
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    loss = -np.log(p[np.arange(len(labels)), labels])
    return {
        "accuracy": float((z.argmax(1) == labels).mean()),
        "loss": float(loss.mean()),
        "mean_confidence": float(p.max(1).mean()),
        "pred": z.argmax(1),
        "conf": p.max(1),
    }


def model_logits(model, images) -> np.ndarray:
    """Logits straight from the Keras model in one call (not through predict_logits)."""
    return np.asarray(model(images.astype(np.float32), training=False))


def assert_metrics(actual: dict, expected: dict):
    assert actual["accuracy"] == expected["accuracy"]
    assert actual["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert actual["mean_confidence"] == pytest.approx(expected["mean_confidence"], rel=1e-5)


# --------------------------------------------------------------------------- pure functions


def test_classification_numbers_are_those_of_the_logits():
    import keras

    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((300, 10)) * 4).astype(np.float32)
    labels = rng.integers(0, 10, 300)
    c = Classification(logits, labels)
    ref = numpy_metrics(logits, labels)
    assert c.accuracy == ref["accuracy"] and 0 < c.accuracy < 1
    assert c.loss == pytest.approx(ref["loss"], rel=1e-9)
    keras_loss = float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits))
    assert c.loss == pytest.approx(keras_loss, rel=1e-5)
    assert c.mean_confidence == pytest.approx(ref["mean_confidence"], rel=1e-9)
    assert np.array_equal(c.predictions, ref["pred"])


def test_confidence_split_partitions_rows_by_correctness():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 200)
    lo = rng.standard_normal((200, 10)).astype(np.float32) * 3
    la = lo + rng.standard_normal((200, 10)).astype(np.float32) * 2
    o, a = Classification(lo, labels), Classification(la, labels)
    split = confidence_split(o, a)
    oc, ac = lo.argmax(1) == labels, la.argmax(1) == labels
    conf = numpy_metrics(lo, labels)["conf"]
    for group, mask in {"fooled": oc & ~ac, "held": oc & ac, "recovered": ~oc & ac, "both_wrong": ~oc & ~ac}.items():
        assert mask.any(), "the random logits cover every group"
        assert split[group]["rows"] == mask.sum()
        assert split[group]["mean_original_confidence"] == pytest.approx(conf[mask].mean(), rel=1e-9)
    assert sum(g["rows"] for g in split.values()) == 200


def test_random_sign_control_has_the_requested_linf():
    rng = np.random.default_rng(2)
    mid = rng.integers(60, 196, size=(50, 32, 32, 3), dtype=np.uint8)
    linf = rng.integers(0, 60, size=50)
    ctrl = random_sign_control(mid, linf, seed=3)
    assert ctrl.dtype == np.uint8 and ctrl.shape == mid.shape
    assert np.array_equal(linf_levels(ctrl, mid), linf), "no clipping in mid-range images: exact L-inf"
    diff = ctrl.astype(int) - mid.astype(int)
    assert np.array_equal(np.abs(diff), np.broadcast_to(linf[:, None, None, None], diff.shape)), (
        "every pixel moves by +-L"
    )
    signs = np.sign(diff[linf > 0])
    assert 0.45 < (signs > 0).mean() < 0.55
    # full-range images: each pixel moves by exactly +-L or is clipped at 0/255
    full = rng.integers(0, 256, size=(50, 32, 32, 3), dtype=np.uint8)
    ctrl = random_sign_control(full, linf, seed=3)
    d = np.abs(ctrl.astype(int) - full.astype(int))
    L = np.broadcast_to(linf[:, None, None, None], d.shape)
    assert np.all((d == L) | ((d < L) & ((ctrl == 0) | (ctrl == 255))))
    assert np.all(linf_levels(ctrl, full) == linf)
    # fractional L-inf is rounded to whole levels; seeded; per-key noise independent of the other rows
    frac = random_sign_control(mid, linf + 0.4, seed=3)
    assert np.array_equal(frac, random_sign_control(mid, linf, seed=3))
    assert not np.array_equal(random_sign_control(mid, linf, seed=4), random_sign_control(mid, linf, seed=3))
    keys = np.arange(100, 150)
    whole = random_sign_control(mid, linf, seed=3, keys=keys)
    part = random_sign_control(mid[10:20], linf[10:20], seed=3, keys=keys[10:20])
    assert np.array_equal(whole[10:20], part)
    with pytest.raises(ConfigError):
        random_sign_control(mid, -linf - 1, seed=0)


def test_gaussian_blur_is_spatial_per_image_and_identity_at_zero():
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)
    assert np.array_equal(gaussian_blur(images, 0.0), images)
    for std in (0.5, 1.3):
        out = gaussian_blur(images, std)
        assert out.dtype == np.uint8 and not np.array_equal(out, images)
        for i in range(len(images)):
            for ch in range(3):
                ref = gaussian_filter(images[i, :, :, ch].astype(np.float64), std)
                assert np.abs(out[i, :, :, ch].astype(int) - np.clip(np.rint(ref), 0, 255)).max() <= 1
    # one bright pixel in one channel of one image: nothing leaks to other images or channels
    probe = np.zeros((3, 32, 32, 3), np.uint8)
    probe[1, 16, 16, 2] = 255
    out = gaussian_blur(probe, 1.0)
    assert out[0].max() == 0 and out[2].max() == 0 and out[1, :, :, :2].max() == 0
    assert out[1, 16, 16, 2] > 0 and out[1, 16, 17, 2] > 0 and out[1, 16, 16, 2] < 255
    with pytest.raises(ConfigError):
        gaussian_blur(images, -1.0)


def reflect_index(i: int, n: int) -> int:
    """scipy.ndimage's "reflect" extension (d c b a | a b c d | d c b a) of an axis of length n."""
    i %= 2 * n
    return i if i < n else 2 * n - 1 - i


def test_paper_scalar_float_differs_from_spatial_float_by_the_channel_blur_only():
    std = 0.5
    radius = int(4.0 * std + 0.5)  # scipy: truncate 4.0
    w = np.exp(-(np.arange(-radius, radius + 1) ** 2) / (2 * std**2))
    w /= w.sum()
    colour = np.array([0.0, 90.0, 255.0])
    expected = np.array(
        [sum(w[k + radius] * colour[reflect_index(c + k, 3)] for k in range(-radius, radius + 1)) for c in range(3)]
    )
    assert expected[2] == pytest.approx(
        255 * (w[2] + w[3]) + 90 * (w[1] + w[4]) + 0 * w[0], rel=1e-12
    )  # c b a | a b c | c b a
    flat = np.broadcast_to(colour.astype(np.uint8), (2, 8, 8, 3)).copy()  # every pixel the same colour
    spatial = blur(flat, std, "spatial-float")
    scalar = blur(flat, std, "paper-scalar-float")
    assert spatial.dtype == scalar.dtype == np.float32
    assert np.array_equal(spatial, flat.astype(np.float32)), "a constant image has nothing to blur spatially"
    assert np.allclose(scalar, np.broadcast_to(expected, scalar.shape), atol=1e-4), "only the colours mix"
    assert not np.allclose(scalar, spatial, atol=1.0)
    # on any image: paper-scalar-float = spatial-float followed by the same 1-D blur along the channel axis
    rng = np.random.default_rng(11)
    images = rng.integers(0, 256, size=(3, 16, 16, 3), dtype=np.uint8)
    channel_blur = np.einsum(
        "k,nhwkc->nhwc",
        w,
        np.stack(
            [
                blur(images, std, "spatial-float")[..., [reflect_index(c + k, 3) for c in range(3)]]
                for k in range(-radius, radius + 1)
            ],
            axis=3,
        ),
    )
    assert np.allclose(blur(images, std, "paper-scalar-float"), channel_blur, atol=1e-3)
    # rounding is the only difference between spatial-uint8 and spatial-float; std 0 is the identity for all
    s_float = blur(images, 1.3, "spatial-float")
    assert np.array_equal(blur(images, 1.3, "spatial-uint8"), np.clip(np.rint(s_float), 0, 255).astype(np.uint8))
    assert np.array_equal(gaussian_blur(images, 1.3), blur(images, 1.3, GaussianVariant.SPATIAL_UINT8))
    for v in ALL_VARIANTS:
        assert np.array_equal(blur(images, 0.0, v), images)
    with pytest.raises(ConfigError, match="unknown"):
        blur(images, 1.0, "temporal")


# --------------------------------------------------------------------------- transfer


@pytest.fixture(scope="module")
def transfer(folder, target_path, tiny_keras_path, image_folder_source):
    root, _ = image_folder_source
    return evaluate_transfer(folder, target_path, TransferOptions(cifar10=root, source_model=tiny_keras_path, seed=5))


def test_transfer_matches_a_direct_computation(transfer, folder, target_path, tiny_keras_path, image_folder_source):
    root, _ = image_folder_source
    index, orig, adv, labels = direct(folder, root)
    assert np.array_equal(index, np.arange(40))
    target, source = load(target_path), load(tiny_keras_path)
    lo, la = model_logits(target, orig), model_logits(target, adv)
    mo, ma = numpy_metrics(lo, labels), numpy_metrics(la, labels)
    t = transfer.report["results"]["target"]
    assert_metrics(t["original"], mo)
    assert_metrics(t["adversarial"], ma)
    assert transfer.num_rows_used == 40 and transfer.report["rows"]["test"]["num_rows_used"] == 40
    assert t["accuracy_drop"] == pytest.approx(mo["accuracy"] - ma["accuracy"])
    assert transfer.accuracy_drop > 0, "the fixture target is fooled by some adversarial copies"
    # confidence of the original classification: fooled (correct -> wrong) vs held (correct -> correct)
    oc, ac = mo["pred"] == labels, ma["pred"] == labels
    for group, mask in (("fooled", oc & ~ac), ("held", oc & ac)):
        assert mask.any()
        assert t["confidence"][group]["rows"] == mask.sum()
        assert t["confidence"][group]["mean_original_confidence"] == pytest.approx(mo["conf"][mask].mean(), rel=1e-5)
    # per class
    for c, name in enumerate(CLASS_NAMES):
        m = labels == c
        assert t["per_class_accuracy"][name]["rows"] == m.sum()
        expected = float((ma["pred"][m] == c).mean()) if m.any() else None
        assert t["per_class_accuracy"][name]["adversarial"] == expected
    # the control: same per-image L-inf as the adversarial copy, noise keyed by row index
    linf = np.abs(adv.astype(int) - orig.astype(int)).reshape(40, -1).max(1)
    ctrl = random_sign_control(orig, linf, seed=5, keys=index)
    assert np.array_equal(linf_levels(ctrl, orig), linf)
    assert_metrics(t["random_sign_control"], numpy_metrics(model_logits(target, ctrl), labels))
    # the source's own numbers: every stored copy fools it
    s = transfer.report["results"]["source"]
    assert_metrics(s["original"], numpy_metrics(model_logits(source, orig), labels))
    assert s["adversarial"]["accuracy"] == 0.0
    assert transfer.report["models"]["source"]["generated_the_dataset"] is True


def test_transfer_writes_json_markdown_and_plots(transfer, folder, target_path):
    report = json.loads((folder / "results" / "transfer.json").read_text())
    assert report["kind"] == "transfer" and report["title"] == "Transfer to the target model"
    assert report["models"]["target"]["sha256"] == sha256_file(target_path)
    assert report["library_versions"]["numpy"] == np.__version__
    assert report["results"] == json.loads(json.dumps(transfer.report["results"]))
    assert "| Accuracy |" in report["markdown"] and "Fooled (correct → wrong)" in report["markdown"]
    assert f"{transfer.original.accuracy:.4f}" in report["markdown"]
    assert report["markdown"] in (folder / "results" / "transfer.md").read_text()
    assert report["plots"] == ["results/transfer_per_class.png", "results/transfer_confidence.png"]
    for p in report["plots"]:
        assert (folder / p).read_bytes()[:8] == PNG_MAGIC
    assert "fooled" in report["definitions"]["confidence"]


def copy_with_rewritten_test_shards(folder: Path, dest: Path, edit) -> Path:
    """A copy of the folder whose test rows are ``edit(table)``, spread over the same shard files."""
    import pyarrow as pa

    shutil.copytree(folder, dest, ignore=shutil.ignore_patterns("results"))
    shards = sorted((dest / "data").glob("test-*.arrow"))
    table = edit(pa.concat_tables([read_shard(p) for p in shards]))
    size = -(-table.num_rows // len(shards))
    for k, p in enumerate(shards):
        write_table_atomic(table.slice(k * size, size), p, dest / ".tmp")
    return dest


def test_rows_join_by_index_whatever_their_order(
    transfer, folder, target_path, tiny_keras_path, image_folder_source, tmp_path
):
    root, _ = image_folder_source
    perm = np.random.default_rng(7).permutation(40)
    shuffled = copy_with_rewritten_test_shards(folder, tmp_path / "shuffled", lambda t: t.take(perm))
    first = read_shard(sorted((shuffled / "data").glob("test-*.arrow"))[0]).column("index").to_numpy()
    assert not np.array_equal(first, np.arange(len(first))), "the copy's rows really are out of order"
    again = evaluate_transfer(
        shuffled, target_path, TransferOptions(cifar10=root, source_model=tiny_keras_path, seed=5)
    )
    assert again.report["results"] == transfer.report["results"]


def test_altered_or_foreign_data_is_refused(folder, target_path, image_folder_source, tmp_path):
    import pyarrow as pa

    root, data = image_folder_source

    def relabel(t):
        labels = t.column("label").to_numpy().copy()
        labels[3] = (labels[3] + 1) % 10
        return t.set_column(t.schema.get_field_index("label"), t.schema.field("label"), pa.array(labels))

    bad = copy_with_rewritten_test_shards(folder, tmp_path / "relabelled", relabel)
    with pytest.raises(ValidationError, match="label"):
        evaluate_transfer(bad, target_path, TransferOptions(cifar10=root))
    short = copy_with_rewritten_test_shards(folder, tmp_path / "short", lambda t: t.slice(1))
    with pytest.raises(ValidationError, match="missing"):
        evaluate_transfer(short, target_path, TransferOptions(cifar10=root))
    other = tmp_path / "other_src"
    for split, (images, labels) in data.items():
        write_image_folder(other, split, 255 - images, labels)
    with pytest.raises(Cifar10Error, match="fingerprint .*pass --cifar10 the CIFAR-10 input the dataset was made from"):
        evaluate_transfer(folder, target_path, TransferOptions(cifar10=other, name="foreign"))
    assert not (folder / "results" / "foreign.json").exists()


def test_rows_the_attack_did_not_fool_are_excluded(tmp_path, tiny_keras_path, target_path, image_folder_source):
    root, _ = image_folder_source
    out = tmp_path / "failures"
    generate_dataset(
        out,
        tiny_keras_path,
        GenerateOptions(
            cifar10=root, attack=AttackConfig(batch_size=32, max_iterations=3), splits=("test",), rows_per_shard=25
        ),
        allow_failures=True,
    )
    failures = sorted(
        i for e in json.loads((out / "generation.json").read_text())["shards"].values() for i in e["failures"]
    )
    assert 0 < len(failures) < 40
    r = evaluate_transfer(out, target_path, TransferOptions(cifar10=root))
    index, orig, adv, labels = direct(out, root)
    assert np.array_equal(index, np.setdiff1d(np.arange(40), failures))
    assert r.num_rows_used == 40 - len(failures) and r.num_rows_split == 40
    assert r.report["rows"]["test"] == {
        "num_rows_split": 40,
        "num_rows_used": 40 - len(failures),
        "failures_absent": len(failures),
    }
    target = load(target_path)
    assert_metrics(r.report["results"]["target"]["adversarial"], numpy_metrics(model_logits(target, adv), labels))
    all_orig = load_cifar10(root, "test")
    assert_metrics(
        r.report["results"]["target"]["original_all_rows"],
        numpy_metrics(model_logits(target, all_orig.images), all_orig.labels),
    )
    assert f"{40 - len(failures)} of 40 test rows" in r.report["markdown"]
    with pytest.raises(Cifar10Error, match="no 'train' split"):
        evaluate_retrain(out, tmp_path / "r.keras", RetrainOptions(cifar10=root, epochs=1))


def test_a_limit_dataset_joins_cifar10_by_index(tmp_path, tiny_keras_path, target_path, image_folder_source):
    """Under --limit, index is the CIFAR-10 row: transfer scores CIFAR-10[index], the subset's rows in all."""
    root, _ = image_folder_source
    out = tmp_path / "limited"
    attack = AttackConfig(batch_size=32, max_iterations=3)
    options = GenerateOptions(cifar10=root, attack=attack, splits=("test",), limit=20, seed=4, rows_per_shard=8)
    generate_dataset(out, tiny_keras_path, options, allow_failures=True)
    subset = json.loads((out / "generation.json").read_text())["config"]["splits"]["test"]["subset"]
    failures = json.loads((out / "generation.json").read_text())["summary"]["test"]["failures"]
    assert 0 < len(failures) < 20 and subset["original_rows"] != list(range(20))
    r = evaluate_transfer(out, target_path, TransferOptions(cifar10=root, seed=2))
    index, orig, adv, labels = direct(out, root)  # joined by hand, original = CIFAR-10[index]
    assert sorted([*index.tolist(), *failures]) == subset["original_rows"]
    assert r.num_rows_used == 20 - len(failures) and r.num_rows_split == 20
    target, t = load(target_path), r.report["results"]["target"]
    assert_metrics(t["original"], numpy_metrics(model_logits(target, orig), labels))
    assert_metrics(t["adversarial"], numpy_metrics(model_logits(target, adv), labels))
    control = random_sign_control(orig, linf_levels(adv, orig), seed=2, keys=index)
    assert_metrics(t["random_sign_control"], numpy_metrics(model_logits(target, control), labels))
    subset_rows = load_cifar10(root, "test").take(np.asarray(subset["original_rows"]))
    expected = numpy_metrics(model_logits(target, subset_rows.images), subset_rows.labels)
    assert_metrics(t["original_all_rows"], expected)


def test_results_made_with_other_settings_are_kept(transfer, folder, target_path, tiny_keras_path, image_folder_source):
    root, _ = image_folder_source
    path = folder / "results" / "transfer.json"
    before = path.read_bytes()
    with pytest.raises(OutputError, match="other settings"):
        evaluate_transfer(folder, target_path, TransferOptions(cifar10=root, source_model=tiny_keras_path, seed=6))
    assert path.read_bytes() == before
    other = evaluate_transfer(folder, target_path, TransferOptions(cifar10=root, seed=6, name="transfer_seed6"))
    assert Path(other.json_path).name == "transfer_seed6.json" and path.read_bytes() == before
    same = evaluate_transfer(folder, target_path, TransferOptions(cifar10=root, source_model=tiny_keras_path, seed=5))
    assert same.report["results"] == transfer.report["results"], "same settings: recomputed, same numbers"
    with pytest.raises(ConfigError):
        evaluate_transfer(folder, target_path, TransferOptions(cifar10=root, name="../escape"))


# --------------------------------------------------------------------------- gaussian


def test_gaussian_matches_direct_computation(transfer, folder, target_path, tiny_keras_path, image_folder_source):
    root, _ = image_folder_source
    r = evaluate_gaussian(folder, [target_path, tiny_keras_path], GaussianOptions(cifar10=root, stds=(0, 0.5, 1.5)))
    assert r.models == ("target", "tiny") and r.stds == (0.0, 0.5, 1.5)
    t = transfer.report["results"]["target"]
    for s in ("original", "adversarial"):  # std 0 is the identity: the transfer numbers
        row = next(x for x in r.rows if (x.model, x.set, x.std) == ("target", s, 0.0))
        assert row.metrics.accuracy == t[s]["accuracy"] and row.metrics.loss == pytest.approx(t[s]["loss"], rel=1e-12)
    _, orig, adv, labels = direct(folder, root)
    target = load(target_path)
    from scipy.ndimage import gaussian_filter

    for set_name, images in (("original", orig), ("adversarial", adv)):
        blurred = np.stack(
            [np.clip(np.rint(gaussian_filter(im.astype(np.float32), (0.5, 0.5, 0))), 0, 255) for im in images]
        )
        expected = numpy_metrics(model_logits(target, blurred.astype(np.uint8)), labels)
        row = next(x for x in r.rows if (x.model, x.set, x.std) == ("target", set_name, 0.5))
        assert row.metrics.accuracy == expected["accuracy"]
        assert row.metrics.loss == pytest.approx(expected["loss"], rel=1e-5)
    assert len(r.rows) == 3 * 2 * 2
    assert all(v > 0 for v in r.ms_per_image_batched.values()) and all(v > 0 for v in r.ms_per_image_single.values())
    report = json.loads(Path(r.json_path).read_text())
    assert len(report["results"]["table"]) == 12 and "| No filter |" in report["markdown"]
    assert "`tiny` / adversarial" in report["markdown"]
    assert (folder / report["plots"][0]).read_bytes()[:8] == PNG_MAGIC


def test_gaussian_variants_in_one_sweep(transfer, folder, target_path, tiny_keras_path, image_folder_source):
    from scipy.ndimage import gaussian_filter

    root, _ = image_folder_source
    r = evaluate_gaussian(
        folder,
        [target_path, tiny_keras_path],
        GaussianOptions(
            cifar10=root, stds=(0, 0.6), variants=[v.value for v in ALL_VARIANTS], name="gaussian_variants"
        ),
    )
    assert r.variants == ("spatial-uint8", "spatial-float", "paper-scalar-float")
    assert len(r.rows) == 3 * 2 * 2 * 2
    t = transfer.report["results"]["target"]
    for v in r.variants:  # no filter: every variant gives the transfer numbers
        assert r.accuracy("target", "adversarial", 0.0, v) == t["adversarial"]["accuracy"]
    _, orig, adv, labels = direct(folder, root)
    target = load(target_path)
    paper = np.stack([gaussian_filter(im.astype(np.float32), 0.6) for im in adv])  # scalar sigma per (H, W, C) image
    expected = numpy_metrics(model_logits(target, paper), labels)
    assert r.accuracy("target", "adversarial", 0.6, "paper-scalar-float") == expected["accuracy"]
    report = json.loads(Path(r.json_path).read_text())
    per = report["results"]["variants"]
    for v in r.variants:
        rec = per[v]["recovered_on_adversarial"]["target"]["0.6"]
        assert rec == pytest.approx(r.accuracy("target", "adversarial", 0.6, v) - t["adversarial"]["accuracy"])
        assert f"**`{v}`**" in report["markdown"] and per[v]["ms_per_image_batched"]["0.6"] > 0
    assert report["plots"] == [f"results/gaussian_variants_{v}.png" for v in r.variants]
    for p in report["plots"]:
        assert (folder / p).read_bytes()[:8] == PNG_MAGIC


# --------------------------------------------------------------------------- retrain


@pytest.fixture(scope="module")
def retrained(folder, target_path, image_folder_source, tmp_path_factory):
    root, _ = image_folder_source
    out = tmp_path_factory.mktemp("retrain") / "retrained.keras"
    return out, evaluate_retrain(folder, out, RetrainOptions(cifar10=root, epochs=1, target_model=target_path))


def test_retrain_trains_and_writes(retrained, transfer, folder, image_folder_source):
    root, _ = image_folder_source
    out, r = retrained
    assert r.trained and out.is_file() and out.with_suffix(".json").is_file()
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["train_data"]["num_images"] == 60 and meta["arch"] == "target" and meta["epochs"] == 1
    assert meta["train_data"]["fingerprint"] == r.report["results"]["training"]["train_data_fingerprint"]
    _, orig, adv, labels = direct(folder, root)
    retrained_model = load(out)
    assert_metrics(dataclass_dict(r.retrained_original), numpy_metrics(model_logits(retrained_model, orig), labels))
    assert_metrics(dataclass_dict(r.retrained_adversarial), numpy_metrics(model_logits(retrained_model, adv), labels))
    assert r.drop_before == pytest.approx(transfer.accuracy_drop)
    assert r.drop_after == pytest.approx(r.retrained_original.accuracy - r.retrained_adversarial.accuracy)
    assert r.train_seconds > 0 and r.report["results"]["training"]["epochs"] == 1
    report = json.loads(Path(r.json_path).read_text())
    assert report["models"]["retrained"]["sha256"] == sha256_file(out)
    assert (
        "Retrained `retrained.keras`" in report["markdown"] and "Original target `target.keras`" in report["markdown"]
    )
    assert (folder / report["plots"][0]).read_bytes()[:8] == PNG_MAGIC


def test_retrain_splits(folder, image_folder_source, tmp_path):
    from cifar10_fgs.evaluate.joined import load_joined
    from cifar10_fgs.evaluate.retrain import retrain_split

    root, data = image_folder_source
    joined, _, _ = load_joined(folder, ["train"], root)
    tr = joined["train"]
    _, _, adv, labels = direct(folder, root, "train")
    adversarial = retrain_split(tr, "adversarial")
    assert np.array_equal(adversarial.images, adv) and np.array_equal(adversarial.labels, labels)
    mixed = retrain_split(tr, "mixed")
    assert len(mixed) == 120
    assert np.array_equal(mixed.images[:60], data["train"][0]) and np.array_equal(mixed.images[60:], adv)
    assert np.array_equal(mixed.labels, np.concatenate([data["train"][1], labels]))
    with pytest.raises(ConfigError):
        retrain_split(tr, "both")
    with pytest.raises(ConfigError):
        evaluate_retrain(folder, tmp_path / "x.h5", RetrainOptions(cifar10=root, epochs=1))


def resolve(folder: Path, source: str):
    """Follow a comparison row's ``<file>#<path/inside>`` into the results JSON (list items by number)."""
    name, _, path = source.partition("#")
    obj = json.loads((folder / "results" / name).read_text())
    for part in path.split("/"):
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    return obj


def test_retrain_keeps_a_model_it_did_not_make_before_reading_the_data(folder, tmp_path, capsys):
    from cifar10_fgs.errors import ExistingOutputError

    out = tmp_path / "retrained.keras"
    tiny_model(seed=4).save(out)  # a model of the user's at --out
    before = out.read_bytes()
    options = RetrainOptions(cifar10=str(tmp_path / "not-read"), epochs=1)
    with pytest.raises(ExistingOutputError, match=r"retrained\.keras was not retrained with this recipe and seed"):
        evaluate_retrain(folder, out, options)
    args = ["evaluate", "retrain", str(folder), "--out", str(out), "--epochs", "1", "-q"]
    assert run_with_friendly_errors(cli, args) == 2
    assert capsys.readouterr().err.count("\n") == 1 and out.read_bytes() == before


def test_the_paper_comparison_does_not_replace_other_results_named_paper(folder, tmp_path, capsys):
    from cifar10_fgs.errors import ExistingOutputError
    from cifar10_fgs.evaluate import write_paper_comparison

    d = tmp_path / "ds"
    shutil.copytree(folder, d)
    (d / "results").mkdir(exist_ok=True)
    theirs = d / "results" / "paper.json"  # e.g. `evaluate transfer --name paper`
    theirs.write_text(json.dumps({"kind": "transfer", "name": "paper", "results": {}}))
    with pytest.raises(ExistingOutputError, match=r"paper\.json holds other results than paper: pass --overwrite"):
        write_paper_comparison(d)
    assert run_with_friendly_errors(cli, ["evaluate", "paper", str(d), "-q"]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and json.loads(theirs.read_text())["kind"] == "transfer"
    assert run_with_friendly_errors(cli, ["evaluate", "paper", str(d), "-q", "--overwrite"]) == 0
    assert json.loads(theirs.read_text())["kind"] == "paper"
    write_paper_comparison(d)  # its own comparison is rewritten without asking


def test_paper_comparison_numbers_are_those_of_the_results_files(
    retrained, transfer, folder, target_path, image_folder_source
):
    from cifar10_fgs.evaluate import write_paper_comparison
    from cifar10_fgs.evaluate.paper import PAPER
    from cifar10_fgs.publish.card import write_card

    root, _ = image_folder_source
    out, rt = retrained
    g = evaluate_gaussian(
        folder,
        [target_path, out],
        GaussianOptions(
            cifar10=root, stds=(0, 0.25, 0.5, 0.6, 1.0), variants=list(ALL_VARIANTS), name="gaussian_paper"
        ),
    )
    c = write_paper_comparison(folder, {"gaussian": "gaussian_paper", "retrain": ("retrain",)})
    report = json.loads((folder / "results" / "paper.json").read_text())
    assert report["rows"] == json.loads(json.dumps([dataclass_dict(r) for r in c.rows]))
    assert report["markdown"] in (folder / "results" / "paper.md").read_text()
    results_rows = [r for r in c.rows if r.source and r.source != "generation.json"]
    assert len(results_rows) >= 7 + 7 + 4 * 3  # transfer, one retraining mode, four rows per Gaussian variant
    for r in c.rows:
        assert (r.paper, r.section) == (PAPER[r.key].value, PAPER[r.key].section) and r.section in (
            "II",
            "IV",
            "V",
            "VI",
        )
        if r.source and r.source != "generation.json":
            assert r.ours == resolve(folder, r.source), r
        if r.ours is not None and not PAPER[r.key].unit:
            assert f"{r.ours:.4f}" in report["markdown"], r
    ours = {(r.key, r.label): r.ours for r in c.rows}
    assert ours[("target_accuracy_drop", "")] == pytest.approx(transfer.accuracy_drop)
    assert ours[("retrained_adversarial_accuracy", "adversarial")] == rt.retrained_adversarial.accuracy
    assert ours[("fooled_percent", "")] == 100.0
    for v in g.variants:
        gain = g.accuracy("target", "adversarial", 0.5, v) - g.accuracy("target", "adversarial", 0.0, v)
        assert ours[("gaussian_gain_std_0.5", v)] == pytest.approx(gain)
    effects = {(e.key, e.label): e for e in c.effects}
    assert effects[("transfer_drop", "")].reproduced is (transfer.accuracy_drop > 0)
    assert effects[("retrain_narrows_drop", "adversarial")].reproduced is (rt.drop_after < rt.drop_before)
    for v in g.variants:  # the paper's two trends, recomputed here from the sweep
        never = all(
            g.accuracy("retrained", s, std, v) <= g.accuracy("retrained", s, 0.0, v)
            for std in (0.25, 0.5, 0.6, 1.0)
            for s in ("original", "adversarial")
        )
        below = all(
            g.accuracy("retrained", s, std, v) < g.accuracy("target", s, std, v)
            for std in (0.6, 1.0)
            for s in ("original", "adversarial")
        )
        e1 = effects[("trend_filter_never_helps_retrained", f"{v} / adversarial")]
        e2 = effects[("trend_retrained_below_after_0.5", f"{v} / adversarial")]
        assert (e1.reproduced, e2.reproduced) == (never, below)
        assert (e1.reason is None) == never and (e2.reason is None) == below, "a reason exactly where it differs"
        assert effects[("gaussian_gain", v)].reproduced is (ours[("gaussian_gain_std_0.5", v)] > 0)
    assert report["reproduced_gaussian_variants"] == sorted(
        v for v in g.variants if ours[("gaussian_gain_std_0.5", v)] > 0
    )
    card = write_card(folder, cifar10=root)
    text = Path(card.path).read_text()
    assert "[results/paper.md](results/paper.md)" in text and "Comparison with the paper" in text


def dataclass_dict(obj) -> dict:
    import dataclasses

    return dataclasses.asdict(obj)


# --------------------------------------------------------------------------- CLI


def test_cli_transfer_json_and_gaussian_table(transfer, folder, target_path, image_folder_source, capsys):
    root, _ = image_folder_source
    code = run_with_friendly_errors(
        cli,
        [
            "evaluate",
            "transfer",
            str(folder),
            "--model",
            str(target_path),
            "--cifar10",
            str(root),
            "--name",
            "cli_transfer",
            "--json",
        ],
    )
    out = capsys.readouterr().out
    assert code == 0
    result = json.loads(out)
    assert result["accuracy_drop"] == pytest.approx(transfer.accuracy_drop)
    assert result["json_path"].endswith("cli_transfer.json") and Path(result["json_path"]).is_file()
    # --cifar10 defaults to the one recorded in generation.json
    code = run_with_friendly_errors(
        cli,
        [
            "evaluate",
            "gaussian",
            str(folder),
            "--model",
            f"{target_path}",
            "--std",
            "0,1",
            "--name",
            "cli_gaussian",
            "-q",
        ],
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "target/adversarial" in out and "cli_gaussian.json" in out
    assert f"{transfer.adversarial.accuracy:.4f}" in out.splitlines()[2]


def test_cli_retrain_reuses_an_identical_model(retrained, folder, target_path, capsys):
    out, first = retrained
    stamp = out.stat().st_mtime_ns
    code = run_with_friendly_errors(
        cli,
        [
            "evaluate",
            "retrain",
            str(folder),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--target-model",
            str(target_path),
            "--json",
        ],
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result["trained"] is False and out.stat().st_mtime_ns == stamp, "same recipe, seed and data: not retrained"
    assert result["retrained_adversarial"] == dataclass_dict(first.retrained_adversarial)
    assert result["drop_before"] == pytest.approx(first.drop_before)
    code = run_with_friendly_errors(
        cli,
        [
            "evaluate",
            "retrain",
            str(folder),
            "--out",
            str(out),
            "--epochs",
            "2",
            "--target-model",
            str(target_path),
        ],
    )
    err = capsys.readouterr().err  # the 1-epoch model (and its results) are kept, refused before the data are read
    assert code == 2 and "was not retrained with this recipe and seed: pass --overwrite" in err
    assert out.stat().st_mtime_ns == stamp


def test_cli_paper_writes_the_comparison_and_fills_the_readme(transfer, folder, tmp_path, capsys):
    from cifar10_fgs.evaluate.comparison import README_BEGIN, README_END

    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{README_BEGIN}\nstale table\n{README_END}\nafter\n")
    code = run_with_friendly_errors(cli, ["evaluate", "paper", str(folder), "--readme", str(readme)])
    out = capsys.readouterr().out
    assert code == 0 and "the adversarial images lower the target's accuracy" in out
    report = json.loads((folder / "results" / "paper.json").read_text())
    text = readme.read_text()
    assert "stale table" not in text and report["markdown"].strip() in text
    assert text.startswith(f"# x\n\nbefore\n{README_BEGIN}") and text.endswith(f"{README_END}\nafter\n")
    assert f"{transfer.adversarial.accuracy:.4f}" in text
    bare = tmp_path / "bare.md"
    bare.write_text("# no markers\n")
    code = run_with_friendly_errors(cli, ["evaluate", "paper", str(folder), "--readme", str(bare)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "markers" in err and len(err.splitlines()) == 1
    assert bare.read_text() == "# no markers\n"


@pytest.mark.parametrize(
    "args, message",
    [
        (["gaussian", "{folder}", "--model", "m.keras", "--std", "0,-1"], "--std -1.0 is invalid"),
        (["transfer", "{missing}", "--model", "{target}"], "does not exist"),
        (["transfer", "{folder}", "--model", "{missing}/t.keras"], "does not exist"),
        (["retrain", "{folder}", "--out", "{missing}/r.h5"], "must end in .keras"),
        (["gaussian", "{folder}", "--model", "m.keras", "--std", "0,x"], "comma-separated"),
        (["transfer", "--model", "{target}"], "Missing argument 'DIR"),
        (["transfer", "{folder}", "--model", "{target}", "--out", "{missing}"], "--out applies to a leaderboard"),
    ],
)
def test_cli_errors_are_one_line_exit_2(folder, target_path, tmp_path, capsys, args, message):
    subs = {"folder": str(folder), "target": str(target_path), "missing": str(tmp_path / "missing")}
    code = run_with_friendly_errors(cli, ["evaluate", *(a.format(**subs) for a in args)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err
    assert len(err.splitlines()) == 1 and err.startswith("Error: ")  # click's usage errors too


def test_cli_group_registers_and_lists_every_evaluation(capsys):
    group = cli.commands["evaluate"]
    assert sorted(group.commands) == ["gaussian", "paper", "retrain", "transfer"]  # registered, not only named
    code = run_with_friendly_errors(cli, ["evaluate", "--help"])
    out = capsys.readouterr().out
    section = out.split("\nCommands:\n", 1)[1].split("\n\n", 1)[0]  # the subcommands click lists, one a line
    listed = [line.split()[0] for line in section.splitlines() if line.startswith("  ") and line[2] != " "]
    assert code == 0 and listed == ["gaussian", "paper", "retrain", "transfer"]
