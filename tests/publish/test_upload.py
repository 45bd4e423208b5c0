"""`upload`: dry run, refusals, token handling, hub errors, and the requests the real client sends a local hub."""

from __future__ import annotations

import hashlib
import http.server
import json
import logging
import shutil
import threading
from pathlib import Path

import pytest

from cifar10_fgs.cli._errors import run_with_friendly_errors
from cifar10_fgs.cli.main import cli
from cifar10_fgs.config import AttackConfig
from cifar10_fgs.dataset.manifest import FILE as MANIFEST
from cifar10_fgs.errors import ConfigError, HubError, ValidationError
from cifar10_fgs.generate.core import GenerateOptions, generate_dataset
from cifar10_fgs.publish import upload
from cifar10_fgs.publish.card import write_card

from hf_server import GITATTRIBUTES, LocalHub, point_client_at

REPO = "someone/adv-cifar10"
SECRET = "hf_ThisIsNotARealTokenButMustNeverLeak123"


@pytest.fixture(scope="module")
def carded(tmp_path_factory, tiny_keras_path, image_folder_source):
    """A generated, carded folder with results and the junk a real folder may hold (.lock, .tmp/, temp files)."""
    root, _ = image_folder_source
    d = tmp_path_factory.mktemp("up") / "ds"
    generate_dataset(
        d,
        tiny_keras_path,
        GenerateOptions(cifar10=root, attack=AttackConfig(batch_size=32), rows_per_shard=25),
        allow_failures=True,
    )
    (d / "results").mkdir()
    (d / "results" / "transfer.json").write_text(json.dumps({"accuracy": 0.5}))
    write_card(d, REPO)
    (d / ".tmp").mkdir(exist_ok=True)
    (d / ".tmp" / "train-00000-of-00003.arrow.x.partial").write_bytes(b"partial")
    (d / "figures" / ".iterations.png.abc.tmp").write_bytes(b"tmp")
    (d / "notes.txt").write_text("not part of the dataset")
    assert (d / ".lock").exists()
    return d


def expected_files(d: Path) -> dict[str, int]:
    manifest = json.loads((d / MANIFEST).read_text())
    names = ["README.md", MANIFEST, *manifest["shards"], "figures/iterations.png", "results/transfer.json"]
    return {n: (d / n).stat().st_size for n in names}


def copy_folder(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "ds"
    shutil.copytree(src, dst)
    return dst


@pytest.fixture
def no_hub(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the hub must not be contacted")

    monkeypatch.setattr(upload, "hub_api", refuse)


@pytest.fixture
def no_saved_token(monkeypatch, tmp_path):
    from huggingface_hub import constants

    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))


@pytest.fixture
def online(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


# --------------------------------------------------------------------------- dry run and refusals


def test_dry_run_lists_exactly_the_dataset_files(carded, no_hub, no_saved_token, capsys):
    result = upload.upload_dataset(carded, REPO, dry_run=True, ship_source_model=False)
    assert {f.path_in_repo: f.bytes for f in result.files} == expected_files(carded)
    assert result.total_bytes == sum(expected_files(carded).values())
    assert result.uploaded == () and result.commits == () and result.warnings == ()
    assert result.url == f"https://huggingface.co/datasets/{REPO}"
    assert result.manifest_sha256 == hashlib.sha256((carded / MANIFEST).read_bytes()).hexdigest()
    assert result.manifest_sha256 in result.commit_message

    assert (
        run_with_friendly_errors(
            cli, ["upload", str(carded), "--repo-id", REPO, "--dry-run", "--revision", "v1", "--no-source-model"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"https://huggingface.co/datasets/{REPO}/tree/v1" in out
    listed = {line.split()[0] for line in out.splitlines()[3:] if line and not line[0].isdigit()}
    assert listed == set(expected_files(carded))
    for junk in (".lock", ".tmp", "notes.txt", ".iterations"):
        assert junk not in out


def test_refuses_a_folder_that_fails_the_fast_checks(carded, tmp_path, no_hub, capsys):
    d = copy_folder(carded, tmp_path)
    manifest = json.loads((d / MANIFEST).read_text())

    manifest["complete"] = False
    (d / MANIFEST).write_text(json.dumps(manifest))
    assert run_with_friendly_errors(cli, ["upload", str(d), "--repo-id", REPO, "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert "incomplete" in err and err.count("\n") == 1
    manifest["complete"] = True
    (d / MANIFEST).write_text(json.dumps(manifest))

    shard = d / sorted(manifest["shards"])[0]
    data = shard.read_bytes()
    shard.write_bytes(data[:-10])
    with pytest.raises(ValidationError, match="bytes"):
        upload.upload_dataset(d, REPO, dry_run=True)
    shard.write_bytes(data)

    readme = (d / "README.md").read_text()
    (d / "README.md").write_text(readme.replace("num_examples: ", "num_examples: 1", 1))
    with pytest.raises(ValidationError, match="does not describe the shards"):
        upload.upload_dataset(d, REPO, dry_run=True)
    (d / "README.md").unlink()
    with pytest.raises(ValidationError, match="no README.md"):
        upload.upload_dataset(d, REPO, dry_run=True)

    with pytest.raises(ConfigError, match="USER/NAME"):
        upload.upload_dataset(carded, "no-slash", dry_run=True)


def test_card_for_another_repo_gives_a_warning(carded, no_hub):
    result = upload.upload_dataset(carded, "other/name", dry_run=True, ship_source_model=False)
    assert len(result.warnings) == 1 and "--repo-id other/name" in result.warnings[0]


def test_the_shipped_model_must_be_the_source_model(carded, tiny_keras_path, tmp_path, no_hub):
    result = upload.upload_dataset(carded, REPO, dry_run=True, source_model=tiny_keras_path)
    assert f"source_model/{tiny_keras_path.name}" in {f.path_in_repo for f in result.files}
    other = tmp_path / "other.keras"
    other.write_bytes(tiny_keras_path.read_bytes() + b"\0")
    with pytest.raises(ConfigError, match="sha256"):
        upload.upload_dataset(carded, REPO, dry_run=True, source_model=other)


def test_contradicting_model_options_are_refused_before_the_folder_is_read(tmp_path, no_hub, capsys):
    missing = tmp_path / "no-such-folder"  # the options are checked first: the folder is never read or hashed
    with pytest.raises(ConfigError, match="--source-model and --no-source-model contradict"):
        upload.upload_dataset(missing, REPO, source_model="source.keras", ship_source_model=False)
    args = ["upload", str(missing), "--repo-id", REPO, "--source-model", "source.keras", "--no-source-model"]
    assert run_with_friendly_errors(cli, args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "contradict each other" in err


# --------------------------------------------------------------------------- token and network errors


def test_no_token_is_a_one_line_error(carded, no_saved_token, no_hub, capsys):
    with pytest.raises(HubError, match="no Hugging Face token"):
        upload.upload_dataset(carded, REPO, ship_source_model=False)
    assert run_with_friendly_errors(cli, ["upload", str(carded), "--repo-id", REPO, "--no-source-model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: no Hugging Face token") and err.count("\n") == 1


def test_unreachable_hub_is_a_one_line_error(carded, online, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    with pytest.raises(HubError, match="cannot reach the hub at http://127.0.0.1:9") as info:
        upload.upload_dataset(carded, REPO, endpoint="http://127.0.0.1:9", ship_source_model=False)
    assert SECRET not in str(info.value)


def test_offline_mode_is_a_one_line_error(carded, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubError, match="HF_HUB_OFFLINE"):
        upload.upload_dataset(carded, REPO, token=SECRET, ship_source_model=False)


class _Refusing(http.server.BaseHTTPRequestHandler):
    """A hub stand-in that answers every request with one status and records the Authorization headers."""

    status = 403
    seen: list = []

    def _answer(self):
        self.seen.append(self.headers.get("authorization"))
        body = json.dumps({"error": "You don't have the rights to create a dataset under this namespace"}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("status, needle", [(403, "403"), (401, "rejected the token")])
def test_permission_and_bad_token_errors_from_a_real_http_exchange(carded, online, monkeypatch, status, needle, capsys):
    handler = type("H", (_Refusing,), {"status": status, "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        monkeypatch.setenv("HF_TOKEN", SECRET)
        monkeypatch.setattr(upload, "hub_api", lambda endpoint=None, token=None: _real_api(endpoint, token))
        with pytest.raises(HubError, match=needle) as info:
            upload.upload_dataset(carded, REPO, endpoint=endpoint, ship_source_model=False)
    finally:
        server.shutdown()
        server.server_close()
    assert handler.seen and handler.seen[0] == f"Bearer {SECRET}"  # the saved token was used ...
    assert SECRET not in str(info.value) and "\n" not in str(info.value)  # ... and not shown


def _real_api(endpoint, token):
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint, token=token)


# --------------------------------------------------------------------------- requests made, reruns, no token leaks


@pytest.fixture
def local_hub(tmp_path, monkeypatch):
    """A local hub over HTTP that demands SECRET for writes; the real huggingface_hub client pointed at it."""
    h = LocalHub(tmp_path / "hub", token=SECRET)
    with h.serve() as endpoint:
        point_client_at(monkeypatch, endpoint, SECRET)
        yield h


def test_upload_requests_reruns_and_the_token_never_leaks(carded, tmp_path, tiny_keras_path, local_hub, capsys, caplog):
    d = copy_folder(carded, tmp_path)
    caplog.set_level(logging.DEBUG)
    model = f"source_model/{tiny_keras_path.name}"

    args = ["upload", str(d), "--repo-id", REPO]
    assert run_with_friendly_errors(cli, [*args, "--source-model", str(tiny_keras_path), "-v"]) == 0
    first = capsys.readouterr()
    calls = local_hub.calls()  # the token from HF_TOKEN reached the hub: it refuses writes without it
    assert calls[:2] == ["create", "paths-info"] and calls.count("commit") == 2
    assert calls.count("lfs-put") == sum(
        1 for p in [*expected_files(d), model] if p.endswith((".arrow", ".png", ".keras"))
    )
    assert local_hub.created == [
        {"name": REPO.split("/")[1], "organization": "someone", "visibility": "public", "type": "dataset"}
    ]
    want = expected_files(d)
    files = local_hub.files(REPO)
    assert set(files) == set(want) | {model, ".gitattributes"}
    for rel in want:
        assert files[rel] == (d / rel).read_bytes()
    assert files[model] == tiny_keras_path.read_bytes()
    history = list(local_hub.repos[("dataset", REPO)]["commits"].values())
    assert set(history[-1]) - set(history[-2]) == {model}  # the model in a commit of its own, after the data
    sha = hashlib.sha256((d / MANIFEST).read_bytes()).hexdigest()
    data_message = list(local_hub.repos[("dataset", REPO)]["messages"].values())[1]
    assert sha in data_message.splitlines()[0] and "Rows: " in data_message
    assert f"uploaded {len(want) + 1} files" in first.out

    # rerun: everything is already there, nothing is sent
    before = len(local_hub.requests)
    assert run_with_friendly_errors(cli, [*args, "--source-model", str(tiny_keras_path), "--json"]) == 0
    second = capsys.readouterr()
    assert local_hub.calls(before) == ["create", "paths-info"]
    assert json.loads(second.out)["uploaded"] == []

    # one changed file, to a new branch: only it is sent, inline (a small text file needs no LFS)
    (d / "results" / "transfer.json").write_text(json.dumps({"accuracy": 0.75}))
    before, main = len(local_hub.requests), local_hub.files(REPO)
    assert run_with_friendly_errors(cli, [*args, "--revision", "v2", "--no-source-model"]) == 0
    third = capsys.readouterr()
    calls = local_hub.calls(before)
    assert calls[:3] == ["create", "branch", "paths-info"] and calls[-1] == "commit" and "lfs-put" not in calls
    assert local_hub.requests[before + 2][1].endswith("/paths-info/v2")
    assert local_hub.requests[-1][1] == f"/api/datasets/{REPO}/commit/v2"
    v2 = local_hub.files(REPO, "v2")
    assert v2["results/transfer.json"] == (d / "results" / "transfer.json").read_bytes()
    assert {p for p in v2 if v2[p] != main.get(p)} == {"results/transfer.json"}
    assert local_hub.files(REPO) == main  # main untouched
    assert "uploaded 1 files" in third.out and "unchanged" in third.out

    # the token appears in no output, log record, file of the folder or anything the hub stores
    texts = [first.out, first.err, second.out, second.err, third.out, third.err, caplog.text]
    assert all(SECRET not in t for t in texts)
    for p in d.rglob("*"):
        if p.is_file():
            assert SECRET.encode() not in p.read_bytes(), p
    repo = local_hub.repos[("dataset", REPO)]
    assert not any(SECRET in m for m in repo["messages"].values())
    assert not any(SECRET.encode() in b for tree in repo["commits"].values() for b in tree.values())


def test_private_flag_refuses_an_existing_public_repo(carded, local_hub):
    local_hub.create(REPO, private=False)
    local_hub.commit(REPO, {".gitattributes": GITATTRIBUTES}, message="initial commit")
    with pytest.raises(HubError, match="public"):
        upload.upload_dataset(carded, REPO, private=True, ship_source_model=False)
    assert local_hub.calls() == ["create", "repo-info"]  # refused before anything was sent
    assert local_hub.created[0]["visibility"] == "private"
    assert list(local_hub.files(REPO)) == [".gitattributes"]

    new = "someone/adv-cifar10-private"  # a new repo is created private and filled
    result = upload.upload_dataset(carded, new, private=True, ship_source_model=False)
    assert set(result.uploaded) == set(expected_files(carded)) and result.private
    assert local_hub.repos[("dataset", new)]["private"] is True
    assert set(local_hub.files(new)) == set(expected_files(carded)) | {".gitattributes"}


def test_a_dataset_of_other_settings_in_the_repo_is_replaced_only_with_overwrite(
    carded, tmp_path, tiny_keras_path, image_folder_source, local_hub, capsys
):
    from cifar10_fgs.errors import ExistingOutputError

    upload.upload_dataset(carded, REPO, ship_source_model=False)
    first = local_hub.files(REPO)
    # the same dataset again, its manifest rewritten (a resumed run's timing): an update, not a replacement
    same = copy_folder(carded, tmp_path)
    manifest = json.loads((same / MANIFEST).read_text())
    manifest["timing"]["runs"] = 2
    (same / MANIFEST).write_text(json.dumps(manifest))
    upload.upload_dataset(same, REPO, ship_source_model=False)
    assert local_hub.files(REPO)[MANIFEST] == (same / MANIFEST).read_bytes()

    root, _ = image_folder_source  # another dataset: other shards (40 rows each), no results
    other = tmp_path / "other"
    options = GenerateOptions(cifar10=root, attack=AttackConfig(batch_size=32), rows_per_shard=40)
    generate_dataset(other, tiny_keras_path, options, allow_failures=True)
    write_card(other, REPO)
    before = local_hub.files(REPO)
    with pytest.raises(ExistingOutputError, match=f"dataset repo {REPO} holds a dataset generated with other settings"):
        upload.upload_dataset(other, REPO, ship_source_model=False)
    assert local_hub.files(REPO) == before
    args = ["upload", str(other), "--repo-id", REPO, "--no-source-model"]
    capsys.readouterr()  # the library uploads' progress bars
    assert run_with_friendly_errors(cli, args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pass --overwrite" in err and "another --repo-id" in err

    assert run_with_friendly_errors(cli, [*args, "--overwrite"]) == 0
    files = local_hub.files(REPO)
    ours = {f.path_in_repo for f in upload.upload_dataset(other, REPO, dry_run=True, ship_source_model=False).files}
    assert set(files) == ours | {".gitattributes"}  # the first dataset's shards and results are gone
    assert {p for p in first if p.startswith(("data/", "results/"))} - ours
    for rel in ours:
        assert files[rel] == (other / rel).read_bytes()
