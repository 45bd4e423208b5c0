"""Publishing and re-proving from the hub alone, through a real local HTTP hub (tests/hf_server.py).

A generated, carded folder is uploaded by ``cifar10-fgs upload`` with the real huggingface_hub client
over HTTP (LFS path, Xet off), then downloaded by the real ``huggingface_hub.snapshot_download``
(``HF_ENDPOINT`` pointed at the local server, an isolated cache per test) for ``validate hub:...``
and ``evaluate transfer hub:...``.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from cifar10_fgs.cli._errors import run_with_friendly_errors  # noqa: E402
from cifar10_fgs.cli.main import cli  # noqa: E402
from cifar10_fgs.config import AttackConfig  # noqa: E402
from cifar10_fgs.dataset.manifest import FILE as MANIFEST  # noqa: E402
from cifar10_fgs.errors import ConfigError, HubError  # noqa: E402
from cifar10_fgs.hub import parse_hub_ref  # noqa: E402
from cifar10_fgs.publish import upload  # noqa: E402
from cifar10_fgs.publish.card import write_card  # noqa: E402

from helpers import make_workspace  # noqa: E402
from hf_server import LocalHub, point_client_at  # noqa: E402

REPO = "someone/adv-cifar10"
NO_MODEL_REPO = "someone/adv-cifar10-data-only"
TOKEN = "hf_NotARealTokenForTheLocalHub0123456789"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_keras_path, image_folder_source):
    """A `run`-like workspace (helpers.make_workspace), carded for REPO."""
    return make_workspace(tmp_path_factory.mktemp("ws"), tiny_keras_path, image_folder_source[0], REPO)


@pytest.fixture(scope="module")
def hub(workspace, tmp_path_factory):
    """The local hub after `cifar10-fgs upload` over HTTP: REPO with, NO_MODEL_REPO without the model."""
    h = LocalHub(tmp_path_factory.mktemp("hub"), token=TOKEN)
    d = workspace / "dataset"
    with pytest.MonkeyPatch.context() as mp, h.serve() as endpoint:
        point_client_at(mp, endpoint, TOKEN)
        assert run_with_friendly_errors(cli, ["upload", str(d), "--repo-id", REPO]) == 0
        messages = list(h.repos[("dataset", REPO)]["messages"].values())
        assert messages[0] == "initial commit" and messages[2].startswith("Upload source model")
        data, with_model = list(h.repos[("dataset", REPO)]["commits"].values())[1:]
        assert set(with_model) - set(data) == {"source_model/tiny.keras", "source_model/tiny.json"}
        write_card(d, NO_MODEL_REPO)
        assert run_with_friendly_errors(cli, ["upload", str(d), "--repo-id", NO_MODEL_REPO, "--no-source-model"]) == 0
        write_card(d, REPO)
    return h


@pytest.fixture
def served(hub, tmp_path, monkeypatch):
    """The hub served over HTTP, HF_ENDPOINT at it, online, with an empty cache of this test's own."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with hub.serve() as endpoint:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        yield endpoint


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    return err


# --------------------------------------------------------------------------- references and upload


def test_hub_references_parse_and_bad_ones_are_one_line_errors():
    assert parse_hub_ref("hub:a/b").revision is None and str(parse_hub_ref("hub:a/b@v1")) == "hub:a/b@v1"
    ref = parse_hub_ref("hub:user/name@v1.0")
    assert (ref.repo_id, ref.revision, ref.repo_type) == ("user/name", "v1.0", "dataset")
    assert parse_hub_ref("hf://user/model", repo_type="model").repo_type == "model"
    for bad in ("hub:", "hub:noslash", "hub:a/b/c", "hub:a/b@", "a/b"):
        with pytest.raises(ConfigError) as info:
            parse_hub_ref(bad)
        assert "\n" not in str(info.value)


def test_upload_ships_the_model_by_default_and_the_card_shows_how_to_load_it(workspace, hub):
    files = hub.files(REPO)
    model = workspace / "models" / "tiny.keras"
    assert files["source_model/tiny.keras"] == model.read_bytes()
    assert files["source_model/tiny.json"] == model.with_suffix(".json").read_bytes()
    manifest = json.loads(files[MANIFEST])
    assert set(manifest["shards"]) <= set(files)
    assert not any(p.startswith("source_model/") for p in hub.files(NO_MODEL_REPO))
    card = files["README.md"].decode()
    assert "[`source_model/tiny.keras`](source_model/tiny.keras)" in card
    code = re.search(r"```python\n(import keras\n.*?)```", card, re.S).group(1)
    assert code.count("\n") == 3
    assert f'hf_hub_download("{REPO}", "source_model/tiny.keras", repo_type="dataset")' in code


def test_the_cards_three_lines_load_the_shipped_model(served, monkeypatch, workspace):
    from huggingface_hub import constants

    card = (workspace / "dataset" / "README.md").read_text()
    code = re.search(r"```python\n(import keras\n.*?)```", card, re.S).group(1)
    monkeypatch.setattr(constants, "ENDPOINT", served)  # the card's lines use the default endpoint
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", served + "/{repo_id}/resolve/{revision}/{filename}")
    scope: dict = {}
    exec(compile(code, "card", "exec"), scope)
    import numpy as np

    from helpers import tiny_model

    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(scope["model"].predict(x, verbose=0), tiny_model().predict(x, verbose=0))


def test_upload_refuses_a_missing_or_different_model_before_sending(workspace, tmp_path, monkeypatch, capsys):
    def refuse(*a, **k):
        raise AssertionError("the hub must not be contacted")

    monkeypatch.setattr(upload, "hub_api", refuse)
    alone = tmp_path / "elsewhere" / "dataset"
    shutil.copytree(workspace / "dataset", alone)
    assert run_with_friendly_errors(cli, ["upload", str(alone), "--repo-id", REPO, "--dry-run"]) == 2
    err = one_line_error(capsys)
    assert "tiny.keras" in err and "--no-source-model" in err
    other = tmp_path / "tiny.keras"
    other.write_bytes((workspace / "models" / "tiny.keras").read_bytes() + b"\0")
    with pytest.raises(ConfigError, match="sha256"):
        upload.upload_dataset(alone, REPO, source_model=other, token=TOKEN)
    with pytest.raises(ConfigError, match="contradict"):
        upload.upload_dataset(alone, REPO, source_model=other, ship_source_model=False, dry_run=True)
    result = upload.upload_dataset(alone, REPO, ship_source_model=False, dry_run=True)
    assert not any(f.path_in_repo.startswith("source_model/") for f in result.files)


# --------------------------------------------------------------------------- validate hub:


def test_validate_hub_reproves_the_published_copy_and_names_the_commit(served, hub, image_folder_source, capsys):
    commit = hub.repos[("dataset", REPO)]["branches"]["main"]
    assert run_with_friendly_errors(cli, ["validate", f"hub:{REPO}", "-q"]) == 0
    out = capsys.readouterr().out
    assert f"checked commit {commit}" in out
    assert f"hub:{REPO}@{commit}: all " in out

    root, data = image_folder_source
    assert run_with_friendly_errors(cli, ["validate", f"hub:{REPO}@main", "--cifar10", str(root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["commit"] == commit and report["directory"] == f"hub:{REPO}@{commit}"
    checks = {c["name"]: c for c in report["checks"]}
    stored = sum(s["stored_rows"] for s in report["splits"].values())
    assert stored > 0
    for name in ("shard_integrity", "misclassified", "adversarial_prediction", "perturbation", "source_fingerprint"):
        assert checks[name]["status"] == "passed", name
    assert checks["misclassified"]["checked"] == stored  # every stored image went through the shipped model
    assert "snapshots" in report["model"] and report["model"].endswith("source_model/tiny.keras")
    assert f"{commit}" in report["model"]  # the usual cache: .../snapshots/<commit>/source_model/tiny.keras
    assert ("GET", f"/api/datasets/{REPO}/revision/main") in hub.requests


def test_validate_hub_works_from_the_cache_when_offline_and_fails_cleanly_when_nothing_is_cached(
    served, hub, monkeypatch, capsys
):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert run_with_friendly_errors(cli, ["validate", f"hub:{REPO}", "-q"]) == 2
    err = one_line_error(capsys)
    assert "HF_HUB_OFFLINE is set" in err and f"hub:{REPO}" in err

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    assert run_with_friendly_errors(cli, ["validate", f"hub:{REPO}", "-q"]) == 0  # fills the cache
    capsys.readouterr()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    before = len(hub.requests)
    assert run_with_friendly_errors(cli, ["validate", f"hub:{REPO}", "-q"]) == 0
    assert len(hub.requests) == before  # answered from the cache alone
    assert hub.repos[("dataset", REPO)]["branches"]["main"] in capsys.readouterr().out


def test_a_tampered_shard_is_named_and_a_pinned_revision_still_passes(served, hub, capsys):
    good = hub.repos[("dataset", REPO)]["branches"]["main"]
    files = hub.files(REPO)
    shard = sorted(p for p in files if p.startswith("data/test-"))[0]
    data = bytearray(files[shard])
    data[len(data) // 2] ^= 0xFF
    bad = hub.commit(REPO, {shard: bytes(data)}, branch="tampered")

    assert run_with_friendly_errors(cli, ["validate", f"hub:{REPO}@tampered", "-q"]) == 1
    captured = capsys.readouterr()
    assert f"[shard_integrity] {shard}" in captured.out
    assert f"checked commit {bad}" in captured.out
    assert captured.err.count("\n") == 1 and shard in captured.err and f"hub:{REPO}@{bad}" in captured.err

    assert run_with_friendly_errors(cli, ["validate", f"hub:{REPO}@{good}", "-q"]) == 0
    assert f"checked commit {good}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "ref, needle",
    [
        (f"hub:{REPO}@no-such-branch", "revision 'no-such-branch' does not exist"),
        ("hub:someone/no-such-repo", "dataset repo someone/no-such-repo was not found"),
        (f"hub:{NO_MODEL_REPO}", "holds no source_model/tiny.keras"),
    ],
)
def test_wrong_revision_missing_repo_and_missing_model_are_one_line_errors(served, ref, needle, capsys):
    assert run_with_friendly_errors(cli, ["validate", ref, "-q"]) == 2
    assert needle in one_line_error(capsys)


def test_a_copy_without_the_model_validates_against_a_given_model(served, workspace, capsys):
    model = workspace / "models" / "tiny.keras"
    assert (
        run_with_friendly_errors(cli, ["validate", f"hub:{NO_MODEL_REPO}", "--source-model", str(model), "--json"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["model"] == str(model)
    assert {c["name"]: c["status"] for c in report["checks"]}["misclassified"] == "passed"


def test_unreachable_hub_is_a_one_line_error(hub, tmp_path, monkeypatch, capsys):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(HubError, match="cannot reach the hub at http://127.0.0.1:9"):
        from cifar10_fgs.validate.hub import validate_hub

        validate_hub(f"hub:{REPO}")


# --------------------------------------------------------------------------- evaluate transfer: a leaderboard


@pytest.fixture(scope="module")
def candidates(tmp_path_factory, hub):
    """A local .keras model and a Keras hf:// model repo (config.json + model.weights.h5) on the local hub."""
    from helpers import tiny_model

    d = tmp_path_factory.mktemp("candidates")
    local = d / "wide.keras"
    tiny_model(seed=1, hidden=16).save(local)
    folder = d / "narrow"
    tiny_model(seed=2, hidden=4).save(folder, zipped=False)
    commit = hub.commit_folder("someone/narrow", folder, repo_type="model")
    return local, "hf://someone/narrow", commit


def test_leaderboard_from_the_hub_scores_every_model_like_evaluate_transfer(
    served, hub, workspace, candidates, tmp_path, capsys
):
    import hashlib

    import keras

    from cifar10_fgs.evaluate import evaluate_transfer

    local, uri, model_commit = candidates
    source_model = workspace / "models" / "tiny.keras"
    commit = hub.repos[("dataset", REPO)]["branches"]["main"]
    out = tmp_path / "board"
    args = [
        "evaluate",
        "transfer",
        f"hub:{REPO}",
        "--model",
        str(local),
        "--model",
        uri,
        "--model",
        str(source_model),
        "--out",
        str(out),
        "--json",
    ]
    assert run_with_friendly_errors(cli, args) == 0
    board = json.loads(capsys.readouterr().out)
    assert board["dataset"] == f"hub:{REPO}@{commit}" and board["commit"] == commit
    entries = board["entries"]
    assert [e["rank"] for e in entries] == [1, 2, 3]
    adv = [e["adversarial_acc"] for e in entries]
    assert adv == sorted(adv, reverse=True)
    by = {e["model"]: e for e in entries}
    assert set(by) == {str(local), uri, str(source_model)}

    assert by[str(local)]["sha256"] == hashlib.sha256(local.read_bytes()).hexdigest()
    assert by[str(local)]["parameters"] == keras.saving.load_model(local, compile=False).count_params()
    assert by[uri]["commit"] == model_commit and by[uri]["name"] == "someone/narrow"
    assert by[uri]["parameters"] < by[str(local)]["parameters"]  # 4 vs 16 filters
    assert all(e["images_per_second"] > 0 for e in entries)
    # the model that made the dataset misclassifies every stored image: white-box accuracy 0
    assert by[str(source_model)]["generated_the_dataset"] is True and by[str(source_model)]["adversarial_acc"] == 0.0
    assert not by[str(local)]["generated_the_dataset"]

    # the same numbers as the paper's single-model transfer evaluation on a local copy
    copy = tmp_path / "copy"
    shutil.copytree(workspace / "dataset", copy)
    single = evaluate_transfer(copy, local)
    assert by[str(local)]["clean_acc"] == pytest.approx(single.original.accuracy)
    assert by[str(local)]["adversarial_acc"] == pytest.approx(single.adversarial.accuracy)
    assert by[str(local)]["accuracy_drop"] == pytest.approx(single.accuracy_drop)
    assert by[str(local)]["random_sign_control_drop"] == pytest.approx(single.control_accuracy_drop)

    assert (
        run_with_friendly_errors(
            cli, ["evaluate", "transfer", str(copy), "--model", str(local), "--leaderboard", "--json"]
        )
        == 0
    )  # one local model, on request
    alone = json.loads(capsys.readouterr().out)
    assert alone["json_path"] == str(copy / "results" / "leaderboard.json") and alone["commit"] is None
    assert alone["entries"][0]["adversarial_acc"] == by[str(local)]["adversarial_acc"]

    written = json.loads((out / "leaderboard.json").read_text())
    assert [m["model"] for m in written["models"]] == [e["model"] for e in entries]
    assert written["rows"]["num_rows_used"] == board["num_rows_used"] > 0
    md = (out / "leaderboard.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [r.split(" | ")[1].split("`")[1] for r in rows] == [e["name"] for e in entries]
    assert f"{commit}" in md

    # rerun with the same settings replaces it; other models need --overwrite
    assert run_with_friendly_errors(cli, args[:-1] + ["-q"]) == 0
    capsys.readouterr()
    assert (
        run_with_friendly_errors(
            cli, ["evaluate", "transfer", f"hub:{REPO}", "--model", str(local), "--out", str(out), "-q"]
        )
        == 2
    )
    assert "--overwrite" in one_line_error(capsys)


def test_leaderboard_refusals_are_one_line_errors(served, hub, candidates, tmp_path, capsys):
    import keras

    from helpers import tiny_model

    local, _, _ = candidates
    lam = tmp_path / "lambda"
    keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.Lambda(lambda x: x / 255.0), *tiny_model().layers[1:]]
    ).save(lam, zipped=False)
    hub.commit_folder("someone/with-lambda", lam, repo_type="model")
    manifest = json.loads(hub.files(REPO)[MANIFEST])
    manifest["data_source"]["source"] = "/nowhere/cifar-10-python.tar.gz"
    hub.commit(REPO, {MANIFEST: json.dumps(manifest).encode()}, branch="moved")
    cases = [
        ([f"hub:{REPO}", "--model", "hf://someone/with-lambda"], "Lambda layer"),
        (
            [f"hub:{REPO}", "--model", "hf://someone/no-such-model"],
            "model repo someone/no-such-model was not found",
        ),
        ([f"hub:{REPO}@v9", "--model", str(local)], "revision 'v9' does not exist"),
        ([f"hub:{REPO}@moved", "--model", str(local)], "not on this machine: pass --cifar10"),
        ([f"hub:{REPO}", "--model", str(local), "--model", str(local)], "given twice"),
    ]
    for args, needle in cases:
        code = run_with_friendly_errors(cli, ["evaluate", "transfer", *args, "--out", str(tmp_path / "b"), "-q"])
        assert code == 2 and needle in one_line_error(capsys), args
    assert not (tmp_path / "b").exists()  # nothing written by a refused run


def test_run_upload_ships_the_source_model_and_the_copy_reproves(
    tiny_keras_path, image_folder_source, tmp_path, monkeypatch, capsys
):
    from huggingface_hub import constants

    from cifar10_fgs.pipeline import RunOptions, run_pipeline

    from helpers import tiny_model

    root, _ = image_folder_source
    target = tmp_path / "target.keras"
    tiny_model(seed=9, hidden=4).save(target)
    h = LocalHub(tmp_path / "hub", token=TOKEN)
    options = RunOptions(
        cifar10=str(root),
        source_model=str(tiny_keras_path),
        target_model=str(target),
        retrain_epochs=1,
        attack=AttackConfig(batch_size=32),
        upload="someone/run-copy",
    )
    with h.serve() as endpoint:
        point_client_at(monkeypatch, endpoint, TOKEN)
        result = run_pipeline(tmp_path / "ws", options)
    assert {s.stage: s.status for s in result.stages}["upload"] == "done"
    files = h.files("someone/run-copy")
    assert files["source_model/tiny.keras"] == tiny_keras_path.read_bytes()
    assert (
        "results/transfer.json" in files and "cifar10-fgs validate hub:someone/run-copy" in files["README.md"].decode()
    )

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    with h.serve() as endpoint:
        point_client_at(monkeypatch, endpoint)
        assert run_with_friendly_errors(cli, ["validate", "hub:someone/run-copy", "--cifar10", str(root), "-q"]) == 0
    out = capsys.readouterr().out
    assert f"checked commit {h.repos[('dataset', 'someone/run-copy')]['branches']['main']}" in out
