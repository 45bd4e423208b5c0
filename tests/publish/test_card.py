"""`card`: README.md round-trips, its YAML matches the shards, load_dataset uses it, figures, determinism."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from cifar10_fgs.cli._errors import run_with_friendly_errors
from cifar10_fgs.cli.main import cli
from cifar10_fgs.config import AttackConfig
from cifar10_fgs.dataset import manifest as mf
from cifar10_fgs.dataset.manifest import FILE as MANIFEST
from cifar10_fgs.errors import Cifar10Error, ConfigError, OutputError, ValidationError
from cifar10_fgs.generate.core import GenerateOptions, generate_dataset
from cifar10_fgs.publish.card import README, write_card
from cifar10_fgs.publish.card_figures import FIGURES

from helpers import synthetic_images, write_image_folder

CFG = AttackConfig(batch_size=32)
OPTS = GenerateOptions(rows_per_shard=25)
REPO = "someone/adv-cifar10"


def shard_counts(d: Path) -> dict[str, int]:
    """Rows per split counted straight from the Arrow streams (independent of the card code)."""
    counts: dict[str, int] = {}
    for p in sorted((d / "data").glob("*.arrow")):
        with pa.memory_map(str(p)) as src:
            n = pa.ipc.open_stream(src).read_all().num_rows
        split = p.name.split("-")[0]
        counts[split] = counts.get(split, 0) + n
    return counts


def shard_column(d: Path, split: str, column: str) -> list:
    out = []
    for p in sorted((d / "data").glob(f"{split}-*.arrow")):
        with pa.memory_map(str(p)) as src:
            out += pa.ipc.open_stream(src).read_all().column(column).to_pylist()
    return out


def copy_folder(src: Path, tmp_path: Path, name: str = "ds") -> Path:
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, tiny_keras_path, image_folder_source):
    """A generated folder (no card yet); tests copy it before changing anything."""
    root, _ = image_folder_source
    out = tmp_path_factory.mktemp("card") / "ds"
    generate_dataset(out, tiny_keras_path, replace(OPTS, cifar10=root, attack=CFG), allow_failures=True)
    return out


@pytest.fixture(scope="module")
def carded(dataset, tmp_path_factory):
    """A copy of ``dataset`` with a card for REPO (written without --cifar10)."""
    d = tmp_path_factory.mktemp("carded") / "ds"
    shutil.copytree(dataset, d)
    result = write_card(d, REPO)
    return d, result


def test_card_round_trips_and_yaml_matches_the_shards(carded):
    import datasets
    from huggingface_hub import DatasetCard

    d, result = carded
    assert result.path == str(d / README)
    card = DatasetCard.load(d / README)
    meta = card.data.to_dict()
    assert meta["license"] == "unknown"
    assert meta["task_categories"] == ["image-classification"]
    assert {"adversarial", "fgsm", "cifar10"} <= set(meta["tags"])
    assert meta["size_categories"] == ["n<1K"]
    assert meta["source_datasets"] == ["uoft-cs/cifar10"]
    assert meta["pretty_name"]

    counts = shard_counts(d)
    info = meta["dataset_info"]
    assert {s["name"]: s["num_examples"] for s in info["splits"]} == counts
    files = sorted((d / "data").glob("*.arrow"))
    assert info["download_size"] == sum(p.stat().st_size for p in files)
    assert info["dataset_size"] == sum(s["num_bytes"] for s in info["splits"]) > 0
    with pa.memory_map(str(files[0])) as src:
        schema = pa.ipc.open_stream(src).schema
    assert datasets.Features._from_yaml_list(info["features"]) == datasets.Features.from_arrow_schema(schema)
    label = next(f for f in info["features"] if f["name"] == "label")
    assert list(label["dtype"]["class_label"]["names"].values())[:3] == ["airplane", "automobile", "bird"]

    # configs: one pattern per split, matching exactly that split's shards
    (config,) = meta["configs"]
    patterns = {f["split"]: f["path"] for f in config["data_files"]}
    assert set(patterns) == set(counts)
    for split, pattern in patterns.items():
        assert sorted(d.glob(pattern)) == sorted((d / "data").glob(f"{split}-*.arrow"))

    # saving the parsed card again gives back the same YAML
    assert DatasetCard(str(card)).data.to_dict() == meta


def test_body_shows_generation_statistics_and_citations(carded):
    d, _ = carded
    text = (d / README).read_text()
    manifest = json.loads((d / MANIFEST).read_text())
    assert f'load_dataset("{REPO}")' in text
    assert f'load_dataset("{REPO}", split="train", streaming=True)' in text
    assert manifest["source_model"]["sha256"] in text
    for entry in manifest["shards"].values():
        assert entry["sha256"] in text
    assert "| step | 0.01 of the pixel range = 2.55 levels per iteration |" in text
    assert f"| max iterations | {manifest['config']['attack']['max_iterations']} |" in text
    # overview row of the test split, against values counted from the shards
    it = np.asarray(shard_column(d, "test", "iterations"))
    n_test = manifest["config"]["splits"]["test"]["num_rows"]
    stats = text.split("## Statistics", 1)[1]
    row = next(line for line in stats.splitlines() if line.startswith("| test | "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:6] == [
        str(n_test),
        str(len(it)),
        str(int((it == 0).sum())),
        str(int((it > 0).sum())),
        str(n_test - len(it)),
    ]
    # the iteration table counts every stored row
    hist = re.search(r"\| iterations \| train \| test \|\n\|[-|]+\|\n((?:\|.*\|\n)+)", text).group(1)
    test_counts = [int(line.strip("|").split("|")[2]) for line in hist.strip().splitlines()]
    assert sum(test_counts) == len(it)
    linf_max = max(shard_column(d, "test", "linf"))
    assert f"{linf_max:.4f}" in text
    for needle in (
        "Sean Johnson",
        "Goodfellow",
        "Krizhevsky",
        "## Limitations",
        "## Licence",
        "license: unknown",
        "<details>",
        "label \\ adversarial",
    ):
        assert needle in text
    assert "## Evaluation results" not in text  # no results/ yet


def test_load_dataset_reads_both_splits_through_the_card_and_streams(carded, tmp_path):
    import datasets

    d, _ = carded
    ds = datasets.load_dataset(str(d), cache_dir=str(tmp_path / "cache"))
    counts = shard_counts(d)
    assert {s: ds[s].num_rows for s in ds} == counts
    assert ds["test"]["index"] == shard_column(d, "test", "index")
    img = ds["train"][0]["image"]
    assert img.size == (32, 32) and img.mode == "RGB"
    stream = datasets.load_dataset(str(d), streaming=True)
    for split in counts:
        first = next(iter(stream[split]))
        assert first["index"] == ds[split][0]["index"]
        assert first["label"] == ds[split][0]["label"]
        assert np.array_equal(np.asarray(first["image"]), np.asarray(ds[split][0]["image"]))


def test_load_dataset_obeys_the_cards_configs_and_split_sizes(carded, tmp_path):
    import datasets
    from huggingface_hub import DatasetCard

    d = copy_folder(carded[0], tmp_path)
    counts = shard_counts(d)
    card = DatasetCard.load(d / README)
    # wrong num_examples in dataset_info: load_dataset checks it, so the card is what it reads
    card.data.dataset_info["splits"][1]["num_examples"] += 1
    card.save(d / README)
    with pytest.raises(datasets.exceptions.NonMatchingSplitsSizesError):
        datasets.load_dataset(str(d), cache_dir=str(tmp_path / "c1"))
    # point the test split's data_files at the train shards: load_dataset follows the card's configs
    card = DatasetCard.load(d / README)
    card.data.configs[0]["data_files"][1]["path"] = "data/train-*.arrow"
    card.data.dataset_info["splits"][1]["num_examples"] = counts["train"]
    card.save(d / README)
    ds = datasets.load_dataset(str(d), cache_dir=str(tmp_path / "c2"))
    assert ds["test"]["index"] == shard_column(d, "train", "index")


def test_figures_from_the_source_images(dataset, tmp_path, image_folder_source):
    from PIL import Image

    root, _ = image_folder_source
    d = copy_folder(dataset, tmp_path)
    result = write_card(d, REPO, cifar10=root, examples=3)
    assert set(result.figures) == set(FIGURES.values())
    assert result.notes == ()
    text = (d / README).read_text()
    for rel in FIGURES.values():
        with Image.open(d / rel) as im:
            assert im.format == "PNG" and im.size[0] > 300
        assert f"]({rel})" in text
    with Image.open(d / FIGURES["examples"]) as im:
        assert im.size[1] > 3 * 150  # three example rows
    # rewritten without the source: the figures it cannot redraw are not left behind undescribed
    result = write_card(d, REPO)
    assert result.figures == (FIGURES["iterations"],)
    assert not (d / FIGURES["examples"]).exists() and not (d / FIGURES["perceptible"]).exists()


def test_a_one_pixel_dataset_is_described_as_such(dataset, tmp_path, image_folder_source):
    from huggingface_hub import DatasetCard

    root, _ = image_folder_source
    d = copy_folder(dataset, tmp_path)
    manifest = json.loads((d / MANIFEST).read_text())
    manifest["config"]["method"] = "onepixel"
    (d / MANIFEST).write_text(json.dumps(manifest))
    result = write_card(d, REPO, cifar10=root)
    assert set(result.figures) == {FIGURES["examples"], FIGURES["iterations"]}
    card = DatasetCard.load(d / README)
    assert "one-pixel" in card.data.pretty_name
    assert "one-pixel-attack" in card.data.tags and "fgsm" not in card.data.tags
    assert "differential evolution" in card.text and "0.01 × Noise" not in card.text


def test_figures_need_the_right_source(dataset, tmp_path):
    d = copy_folder(dataset, tmp_path)
    images, labels = synthetic_images(60, seed=99)
    other = write_image_folder(tmp_path / "other", "test", images, labels)
    with pytest.raises(Cifar10Error, match="fingerprint"):
        write_card(d, REPO, cifar10=other)
    assert not (d / README).exists()


def test_without_originals_the_image_figures_are_skipped_with_a_note(carded):
    d, result = carded
    assert result.figures == (FIGURES["iterations"],)
    assert not (d / FIGURES["examples"]).exists() and not (d / FIGURES["perceptible"]).exists()
    assert (d / FIGURES["iterations"]).stat().st_size > 1000
    assert any("--cifar10" in n for n in result.notes)
    assert "rerun `cifar10-fgs card DIR --cifar10 DATA`" in (d / README).read_text()


def test_original_image_column_is_used_for_figures(tmp_path, tiny_keras_path, image_folder_source):
    import datasets

    root, _ = image_folder_source
    out = tmp_path / "orig"
    generate_dataset(
        out,
        tiny_keras_path,
        GenerateOptions(cifar10=root, attack=CFG, splits=("test",), rows_per_shard=25, with_originals=True),
        allow_failures=True,
    )
    result = write_card(out, REPO)
    assert set(result.figures) == set(FIGURES.values())
    text = (out / README).read_text()
    assert "| `original_image` | Image (PNG bytes) |" in text
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert list(ds) == ["test"] and "original_image" in ds["test"].features


def test_same_inputs_give_byte_identical_card_and_figures(carded, tmp_path):
    d, _ = carded
    other = copy_folder(d, tmp_path / "elsewhere")  # same folder name, another parent
    write_card(other, REPO)
    for rel in (README, FIGURES["iterations"]):
        assert (other / rel).read_bytes() == (d / rel).read_bytes()


def test_results_are_rendered_generically(carded, tmp_path):
    import datasets

    d = copy_folder(carded[0], tmp_path)
    res = d / "results"
    res.mkdir()
    (res / "transfer.json").write_text(
        json.dumps(
            {
                "title": "Transfer to the simple CNN",
                "markdown": "| set | accuracy |\n|---|---|\n| adversarial | 0.7288 |",
                "accuracy": 0.5,
            }
        )
    )
    (res / "gaussian_filter.json").write_text(
        json.dumps({"best_sigma": 0.5, "accuracy": 0.74921, "ok": True, "per_sigma": {"0.5": 0.7}})
    )
    (res / "broken.json").write_text("{not json")
    write_card(d, REPO)
    text = (d / README).read_text()
    assert "## Evaluation results" in text
    assert "### Transfer to the simple CNN" in text and "| adversarial | 0.7288 |" in text
    assert "| accuracy | 0.5000 |" not in text  # markdown given: used instead of the numbers
    assert "| accuracy | 0.7492 |" in text and "| best_sigma | 0.5000 |" in text
    assert "| ok |" not in text and "per_sigma" not in text
    assert "not valid JSON" in text
    ds = datasets.load_dataset(str(d), cache_dir=str(tmp_path / "cache"))  # results/*.json are not data files
    assert {s: ds[s].num_rows for s in ds} == shard_counts(d)


def test_without_repo_id_the_local_path_form_is_shown(dataset, tmp_path):
    d = copy_folder(dataset, tmp_path, "my-adv")
    write_card(d)
    text = (d / README).read_text()
    assert 'load_dataset("path/to/my-adv")' in text
    assert 'load_dataset("someone' not in text


def test_refuses_incomplete_or_inconsistent_folders(dataset, tmp_path):
    d = copy_folder(dataset, tmp_path)
    manifest = json.loads((d / MANIFEST).read_text())
    manifest["complete"] = False
    (d / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ValidationError, match="incomplete"):
        write_card(d, REPO)
    manifest["complete"] = True
    (d / MANIFEST).write_text(json.dumps(manifest))
    mf.read(d, complete=True)
    shutil.copy(d / "data" / "test-00000-of-00002.arrow", d / "data" / "test-00000-of-00002-copy.arrow")
    with pytest.raises(ValidationError, match="not listed"):
        write_card(d, REPO)
    (d / "data" / "test-00000-of-00002-copy.arrow").unlink()
    (d / "data" / "test-00001-of-00002.arrow").unlink()
    with pytest.raises(ValidationError, match="missing"):
        write_card(d, REPO)
    assert not (d / README).exists()
    with pytest.raises(ValidationError, match="no generation.json"):
        write_card(tmp_path, REPO)


def test_a_foreign_readme_is_kept_unless_overwrite(dataset, tmp_path):
    d = copy_folder(dataset, tmp_path)
    (d / README).write_text("# my own notes\n")
    with pytest.raises(OutputError, match="--overwrite"):
        write_card(d, REPO)
    assert (d / README).read_text() == "# my own notes\n"
    write_card(d, REPO, overwrite=True)
    assert "cifar10-fgs card" in (d / README).read_text()
    write_card(d, REPO)  # our own card is replaced without --overwrite


def test_cli_card(dataset, tmp_path, capsys):
    d = copy_folder(dataset, tmp_path)
    assert run_with_friendly_errors(cli, ["card", str(d), "--repo-id", REPO]) == 0
    out = capsys.readouterr().out
    assert f"wrote {d / README}" in out and "note:" in out
    assert run_with_friendly_errors(cli, ["card", str(d), "--repo-id", "not a repo id"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: --repo-id") and "\n" not in err
    with pytest.raises(ConfigError):
        write_card(d, "a/b/c")
    assert run_with_friendly_errors(cli, ["card", str(tmp_path / "nope")]) == 2  # bad input, as validate
    assert capsys.readouterr().err.count("\n") == 1


def test_the_card_shows_the_recorded_attack_time(carded, tmp_path):
    """The card used to sum a key generate never wrote and printed 0.0 s for every dataset."""
    d, _ = carded
    seconds = json.loads((d / MANIFEST).read_text())["timing"]["seconds_total"]
    assert seconds > 0
    assert f"Total attack time {seconds:.1f} s" in (d / README).read_text()
    # a combined folder records its workers' total instead
    e = copy_folder(d, tmp_path)
    manifest = json.loads((e / MANIFEST).read_text())
    manifest["timing"] = {"workers_seconds_total": 123.45}
    (e / MANIFEST).write_text(json.dumps(manifest))
    write_card(e, REPO)
    assert "Total attack time 123.5 s" in (e / README).read_text()
