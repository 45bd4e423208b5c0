"""`upload`: dry run, refusals, token handling, hub errors, and the calls made (through a recording fake)."""

from __future__ import annotations

import hashlib
import http.server
import json
import logging
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from cifar10_fgs.cli._errors import run_with_friendly_errors
from cifar10_fgs.cli.main import cli
from cifar10_fgs.config import AttackConfig
from cifar10_fgs.dataset.manifest import FILE as MANIFEST
from cifar10_fgs.errors import ConfigError, HubError, ValidationError
from cifar10_fgs.generate.core import GenerateOptions, generate_dataset
from cifar10_fgs.publish import upload
from cifar10_fgs.publish.card import write_card

REPO = "someone/adv-cifar10"
SECRET = "hf_ThisIsNotARealTokenButMustNeverLeak123"


@pytest.fixture(scope="module")
def carded(tmp_path_factory, tiny_keras_path, image_folder_source):
    """A generated, carded folder with results and the junk a real folder may hold (.lock, .tmp/, temp files)."""
    root, _ = image_folder_source
    d = tmp_path_factory.mktemp("up") / "ds"
    generate_dataset(
        tiny_keras_path, root, d, AttackConfig(batch_size=32), GenerateOptions(rows_per_shard=25), allow_failures=True
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
    result = upload.upload_dataset(carded, REPO, dry_run=True, ship_model=False)
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
    result = upload.upload_dataset(carded, "other/name", dry_run=True, ship_model=False)
    assert len(result.warnings) == 1 and "--repo-id other/name" in result.warnings[0]


def test_include_model_must_be_the_source_model(carded, tiny_keras_path, tmp_path, no_hub):
    result = upload.upload_dataset(carded, REPO, dry_run=True, include_model=tiny_keras_path)
    assert f"source_model/{tiny_keras_path.name}" in {f.path_in_repo for f in result.files}
    other = tmp_path / "other.keras"
    other.write_bytes(tiny_keras_path.read_bytes() + b"\0")
    with pytest.raises(ConfigError, match="sha256"):
        upload.upload_dataset(carded, REPO, dry_run=True, include_model=other)


# --------------------------------------------------------------------------- token and network errors


def test_no_token_is_a_one_line_error(carded, no_saved_token, no_hub, capsys):
    with pytest.raises(HubError, match="no Hugging Face token"):
        upload.upload_dataset(carded, REPO, ship_model=False)
    assert run_with_friendly_errors(cli, ["upload", str(carded), "--repo-id", REPO, "--no-source-model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: no Hugging Face token") and err.count("\n") == 1


def test_unreachable_hub_is_a_one_line_error(carded, online, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    with pytest.raises(HubError, match="cannot reach the hub at http://127.0.0.1:9") as info:
        upload.upload_dataset(carded, REPO, endpoint="http://127.0.0.1:9", ship_model=False)
    assert SECRET not in str(info.value)


def test_offline_mode_is_a_one_line_error(carded, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubError, match="HF_HUB_OFFLINE"):
        upload.upload_dataset(carded, REPO, token=SECRET, ship_model=False)


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
            upload.upload_dataset(carded, REPO, endpoint=endpoint, ship_model=False)
    finally:
        server.shutdown()
        server.server_close()
    assert handler.seen and handler.seen[0] == f"Bearer {SECRET}"  # the saved token was used ...
    assert SECRET not in str(info.value) and "\n" not in str(info.value)  # ... and not shown


def _real_api(endpoint, token):
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint, token=token)


# --------------------------------------------------------------------------- calls made, reruns, no token leaks


class FakeApi:
    """Records every call and keeps the uploaded files, like a tiny hub (arrow files stored as LFS)."""

    def __init__(self, private_repo: bool = False):
        self.calls: list[tuple[str, tuple, dict]] = []
        self.files: dict[str, bytes] = {}
        self.private_repo = private_repo
        self.commits = 0

    def _rec(self, name, args, kwargs):
        self.calls.append((name, args, kwargs))

    def names(self):
        return [c[0] for c in self.calls]

    def create_repo(self, *args, **kwargs):
        self._rec("create_repo", args, kwargs)
        return f"https://hub.example/datasets/{args[0]}"

    def repo_info(self, *args, **kwargs):
        self._rec("repo_info", args, kwargs)
        return SimpleNamespace(private=self.private_repo)

    def create_branch(self, *args, **kwargs):
        self._rec("create_branch", args, kwargs)

    def get_paths_info(self, repo_id, paths, **kwargs):
        from huggingface_hub.hf_api import RepoFile

        self._rec("get_paths_info", (repo_id, tuple(paths)), kwargs)
        out = []
        for p in paths:
            if p in self.files:
                data = self.files[p]
                sha1 = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
                lfs = (
                    {"size": len(data), "oid": hashlib.sha256(data).hexdigest(), "pointerSize": 130}
                    if p.endswith((".arrow", ".keras"))
                    else None
                )
                out.append(RepoFile(path=p, size=len(data), oid=sha1, lfs=lfs))
        return out

    def upload_folder(self, **kwargs):
        from huggingface_hub.utils import filter_repo_objects

        self._rec("upload_folder", (), kwargs)
        root = Path(kwargs["folder_path"])
        local = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]
        for rel in filter_repo_objects(
            local, allow_patterns=kwargs["allow_patterns"], ignore_patterns=kwargs["ignore_patterns"]
        ):
            self.files[rel] = (root / rel).read_bytes()
        self.commits += 1
        return SimpleNamespace(oid=f"{self.commits:040x}")

    def create_commit(self, **kwargs):
        self._rec("create_commit", (), kwargs)
        for op in kwargs["operations"]:
            self.files[op.path_in_repo] = Path(op.path_or_fileobj).read_bytes()
        self.commits += 1
        return SimpleNamespace(oid=f"{self.commits:040x}")


def test_upload_calls_reruns_and_the_token_never_leaks(carded, tmp_path, tiny_keras_path, monkeypatch, capsys, caplog):
    d = copy_folder(carded, tmp_path)
    fake = FakeApi()
    made_with = []

    def factory(endpoint=None, token=None):
        made_with.append(token)
        return fake

    monkeypatch.setattr(upload, "hub_api", factory)
    monkeypatch.setenv("HF_TOKEN", SECRET)
    caplog.set_level(logging.DEBUG)

    args = ["upload", str(d), "--repo-id", REPO]
    assert run_with_friendly_errors(cli, [*args, "--source-model", str(tiny_keras_path), "-v"]) == 0
    first = capsys.readouterr()
    assert made_with == [SECRET]  # the token from HF_TOKEN reached the API object
    assert fake.names() == ["create_repo", "get_paths_info", "upload_folder", "create_commit"]
    name, args0, kw = fake.calls[0]
    assert args0 == (REPO,) and kw == {"repo_type": "dataset", "exist_ok": True, "private": False}
    up = fake.calls[2][2]
    sha = hashlib.sha256((d / MANIFEST).read_bytes()).hexdigest()
    assert up["repo_id"] == REPO and up["repo_type"] == "dataset" and up["folder_path"] == str(d)
    assert sha in up["commit_message"] and up["revision"] is None
    want = expected_files(d)
    assert set(fake.files) == set(want) | {f"source_model/{tiny_keras_path.name}"}
    for rel in want:
        assert fake.files[rel] == (d / rel).read_bytes()
    commit = fake.calls[3][2]
    assert [op.path_in_repo for op in commit["operations"]] == [f"source_model/{tiny_keras_path.name}"]
    assert f"uploaded {len(want) + 1} files" in first.out

    # rerun: everything is already there, nothing is sent
    fake.calls.clear()
    assert run_with_friendly_errors(cli, [*args, "--source-model", str(tiny_keras_path), "--json"]) == 0
    second = capsys.readouterr()
    assert fake.names() == ["create_repo", "get_paths_info"]
    assert json.loads(second.out)["uploaded"] == []

    # one changed file: only it is sent
    (d / "results" / "transfer.json").write_text(json.dumps({"accuracy": 0.75}))
    fake.calls.clear()
    assert run_with_friendly_errors(cli, [*args, "--revision", "v2", "--no-source-model"]) == 0
    third = capsys.readouterr()
    assert fake.names() == ["create_repo", "create_branch", "get_paths_info", "upload_folder"]
    assert fake.calls[1][2] == {"branch": "v2", "repo_type": "dataset", "exist_ok": True}
    assert fake.calls[3][2]["revision"] == "v2"
    assert fake.files["results/transfer.json"] == (d / "results" / "transfer.json").read_bytes()
    assert "uploaded 1 files" in third.out and "unchanged" in third.out

    # the token appears in no output, log record or file of the folder
    texts = [first.out, first.err, second.out, second.err, third.out, third.err, caplog.text]
    assert all(SECRET not in t for t in texts)
    for p in d.rglob("*"):
        if p.is_file():
            assert SECRET.encode() not in p.read_bytes(), p


def test_private_flag_refuses_an_existing_public_repo(carded, monkeypatch):
    fake = FakeApi(private_repo=False)
    monkeypatch.setattr(upload, "hub_api", lambda endpoint=None, token=None: fake)
    with pytest.raises(HubError, match="public"):
        upload.upload_dataset(carded, REPO, private=True, token=SECRET, ship_model=False)
    assert fake.names() == ["create_repo", "repo_info"]
    assert fake.calls[0][2]["private"] is True
    fake = FakeApi(private_repo=True)
    result = upload.upload_dataset(carded, REPO, private=True, token=SECRET, ship_model=False)
    assert set(result.uploaded) == set(expected_files(carded)) and result.private
