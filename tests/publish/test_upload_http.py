"""`upload` with the unmodified huggingface_hub client over real HTTP (tests/hf_server.py on 127.0.0.1).

The client takes the LFS path (``HF_HUB_DISABLE_XET=1``: with ``hf_xet`` installed huggingface_hub 2.x
always uses Xet otherwise, whatever the server says). One server carries the whole round trip
``upload`` -> ``validate hub:`` -> ``evaluate transfer hub:``; an upload killed (SIGKILL) half-way through
an LFS transfer and then run again leaves only complete files at every revision.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cifar10_fgs.cli._errors import run_with_friendly_errors
from cifar10_fgs.cli.main import cli
from cifar10_fgs.dataset.manifest import FILE as MANIFEST
from cifar10_fgs.publish.card import write_card

from helpers import make_workspace
from hf_server import GITATTRIBUTES, LocalHub, is_lfs, point_client_at

REPO = "someone/adv-cifar10"
TOKEN = "hf_NotARealTokenForTheLocalHub0123456789"
WAIT = 60.0  # seconds any wait on the client or the server may take at most


def _in_flight_limit() -> int:
    """The most bytes a killed client can still get to the server: its TCP send plus the server's receive buffer."""
    try:
        return sum(int(Path(f"/proc/sys/net/ipv4/tcp_{k}mem").read_text().split()[2]) for k in "wr")
    except (OSError, ValueError, IndexError):
        return 16 * 1024 * 1024


# The large file the kill test cuts short; the server stops after a quarter of it, so more than the
# buffers can hold is still to come when the client dies.
BIG_BYTES = max(24 * 1024 * 1024, 2 * _in_flight_limit()) // 4 * 4
HOLD_AFTER = 0.25


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_keras_path, image_folder_source):
    """A `run`-like workspace (helpers.make_workspace) whose dataset also holds a results file."""
    ws = make_workspace(tmp_path_factory.mktemp("ws"), tiny_keras_path, image_folder_source[0], REPO)
    d = ws / "dataset"
    (d / "results").mkdir()
    (d / "results" / "transfer.json").write_text(json.dumps({"accuracy": 0.5}))
    write_card(d, REPO, overwrite=True)
    return ws


def expected_repo(ws) -> dict[str, bytes]:
    """Path in repo -> bytes of everything `upload` should leave on the hub (and the hub's .gitattributes)."""
    d = ws / "dataset"
    names = ["README.md", MANIFEST, *json.loads((d / MANIFEST).read_text())["shards"]]
    names += [f"{sub}/{p.name}" for sub in ("figures", "results") for p in sorted((d / sub).iterdir())]
    files = {n: (d / n).read_bytes() for n in names}
    files["source_model/tiny.keras"] = (ws / "models" / "tiny.keras").read_bytes()
    files["source_model/tiny.json"] = (ws / "models" / "tiny.json").read_bytes()
    files[".gitattributes"] = GITATTRIBUTES
    return files


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A LocalHub demanding TOKEN for writes, served; this process's huggingface_hub pointed at it, online."""
    from huggingface_hub import constants

    h = LocalHub(tmp_path / "hub", token=TOKEN)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))
    with h.serve() as endpoint:
        point_client_at(monkeypatch, endpoint, TOKEN)
        yield h


def commits(h: LocalHub) -> list[str]:
    return list(h.repos[("dataset", REPO)]["commits"])


def head(h: LocalHub) -> str:
    return h.repos[("dataset", REPO)]["branches"]["main"]


def lfs_oids(files: dict[str, bytes]) -> dict[str, str]:
    """Path -> sha256 of the files the hub stores in LFS."""
    return {p: hashlib.sha256(b).hexdigest() for p, b in files.items() if is_lfs(p, len(b), b)}


# --------------------------------------------------------------------------- the round trip in one server


def _keras_candidate(tmp_path):
    from helpers import tiny_model

    path = tmp_path / "wide.keras"
    tiny_model(seed=1, hidden=16).save(path)
    return path


# The models `evaluate transfer hub:` scores after the upload, one `--model` each (maker: tmp_path -> file).
# TODO(onnx): add "onnx": a maker writing a tiny .onnx model, once `evaluate transfer` takes ONNX --model
# (the comparison below with evaluate_transfer on the local copy then needs it to read .onnx too).
CANDIDATES = {"keras": _keras_candidate}


def test_upload_validate_and_evaluate_hub_in_one_server(hub, workspace, tmp_path, capsys):
    from cifar10_fgs.evaluate import evaluate_transfer

    d = workspace / "dataset"
    want = expected_repo(workspace)
    assert run_with_friendly_errors(cli, ["upload", str(d), "--repo-id", REPO]) == 0
    assert "uploaded" in capsys.readouterr().out
    assert hub.files(REPO) == want
    assert hub.created == [
        {"name": "adv-cifar10", "organization": "someone", "visibility": "public", "type": "dataset"}
    ]
    # every LFS file went up as an LFS object (PUT to the batch API's href), the rest inline in the commit
    oids = lfs_oids(want)
    assert {p for p in oids if p.startswith("data/")} == set(json.loads(want[MANIFEST])["shards"])
    put = {path.rsplit("/", 1)[1] for method, path in hub.requests if method == "PUT"}
    assert put == set(oids.values())
    manifest_sha = hashlib.sha256(want[MANIFEST]).hexdigest()
    messages = hub.repos[("dataset", REPO)]["messages"]
    assert [m.splitlines()[0] for m in messages.values()] == [
        "initial commit",
        f"Upload adversarial CIFAR-10 (generation.json sha256 {manifest_sha})",
        f"Upload source model (sha256 {hashlib.sha256(want['source_model/tiny.keras']).hexdigest()})",
    ]

    # a rerun compares the remote files and sends nothing
    before, n_commits = len(hub.requests), len(commits(hub))
    assert run_with_friendly_errors(cli, ["upload", str(d), "--repo-id", REPO, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["uploaded"] == []
    assert len(commits(hub)) == n_commits
    assert hub.calls(before) == ["create", "paths-info"]

    assert run_with_friendly_errors(cli, ["validate", f"hub:{REPO}", "-q"]) == 0
    assert f"checked commit {head(hub)}" in capsys.readouterr().out

    models = [make(tmp_path) for make in CANDIDATES.values()]
    args = ["evaluate", "transfer", f"hub:{REPO}", "--out", str(tmp_path / "board"), "--json"]
    for m in models:
        args += ["--model", str(m)]
    assert run_with_friendly_errors(cli, args) == 0
    board = json.loads(capsys.readouterr().out)
    assert board["commit"] == head(hub) and board["dataset"] == f"hub:{REPO}@{head(hub)}"
    by = {e["model"]: e for e in board["entries"]}
    assert set(by) == {str(m) for m in models}
    copy = tmp_path / "copy"
    shutil.copytree(d, copy, ignore=shutil.ignore_patterns("results"))
    for m in models:  # the same numbers as on the local folder the upload came from
        local = evaluate_transfer(copy, m)
        assert by[str(m)]["clean_acc"] == pytest.approx(local.original.accuracy)
        assert by[str(m)]["adversarial_acc"] == pytest.approx(local.adversarial.accuracy)


def test_a_wrong_token_is_refused_by_the_hub_in_one_line(hub, workspace, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_SomeOtherTokenTheHubDoesNotKnow000000")
    assert run_with_friendly_errors(cli, ["upload", str(workspace / "dataset"), "--repo-id", REPO]) == 2
    err = capsys.readouterr().err
    assert "rejected the token (401)" in err and err.count("\n") == 1 and "hf_Some" not in err
    assert ("dataset", REPO) not in hub.repos


def test_a_refused_lfs_transfer_is_a_one_line_error_and_a_rerun_completes(hub, workspace, capsys):
    args = ["upload", str(workspace / "dataset"), "--repo-id", REPO]
    hub.refuse_lfs_puts = 403  # as storage answers an expired upload URL
    assert run_with_friendly_errors(cli, args) == 2
    err = capsys.readouterr().err  # huggingface_hub's progress bars, then the one error line
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and err.endswith(errors[0] + "\n") and TOKEN not in err
    assert errors[0].startswith("Error: uploading '") and f"to dataset repo {REPO} failed (HTTP 403)" in errors[0]
    assert "rerun the same command to resume" in errors[0]
    assert [hub.repos[("dataset", REPO)]["messages"][c] for c in commits(hub)] == ["initial commit"]

    hub.refuse_lfs_puts = None
    assert run_with_friendly_errors(cli, args) == 0
    assert hub.files(REPO) == expected_repo(workspace)


# --------------------------------------------------------------------------- killed mid-upload, run again


def _client_env(hub, tmp_path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HF_ENDPOINT=hub.endpoint,
        HF_TOKEN=TOKEN,
        HF_HUB_DISABLE_XET="1",
        HF_HUB_OFFLINE="0",
        HF_HOME=str(tmp_path / "client-hf-home"),
        HF_HUB_DISABLE_PROGRESS_BARS="1",
    )
    return env


def _upload_killed_at(hub, args, env, oid: str, size: int, after: float = 0.5):
    """Run `upload` in a subprocess, SIGKILL it while the server holds the LFS PUT of ``oid`` part-way."""
    hold = hub.hold_lfs_put(oid, after)
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + WAIT
        while not hold.reached.wait(0.1):
            if proc.poll() is not None:
                pytest.fail(f"upload ended ({proc.returncode}) before the held PUT: {proc.communicate()[1][-2000:]}")
            assert time.monotonic() < deadline, "the upload never reached the held LFS PUT"
        proc.kill()
        assert proc.wait(WAIT) == -9
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT)
        proc.communicate()
        hold.release.set()
    assert hold.done.wait(WAIT), "the server never finished the held PUT"
    assert 0 < hold.received < size  # it was killed mid-transfer
    return hold


def _assert_store_holds_only_whole_objects(hub) -> None:
    names = [p.name for p in hub.lfs_dir.iterdir()]
    assert not [n for n in names if n.startswith(".")], names  # no temp file left
    for p in hub.lfs_dir.iterdir():
        assert hashlib.sha256(p.read_bytes()).hexdigest() == p.name


def test_an_upload_killed_mid_transfer_and_run_again_leaves_only_complete_files(hub, workspace, tmp_path):
    import numpy as np

    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws)
    # a results file larger than the TCP buffers between client and server hold, so a kill cuts its transfer short
    big = "results/predictions.npy"
    np.save(ws / "dataset" / big, np.random.default_rng(0).random((BIG_BYTES // 4,), dtype=np.float32))
    want = expected_repo(ws)
    oids = lfs_oids(want)
    assert big in oids  # LFS by size, not by name
    env = _client_env(hub, tmp_path)
    args = [sys.executable, "-m", "cifar10_fgs.cli.main", "upload", str(ws / "dataset"), "--repo-id", REPO]
    data_files = {p: b for p, b in want.items() if not p.startswith("source_model/")}

    # 1. killed while the large file is half-way up: nothing but the repo's first commit exists, and the
    #    bytes of it that reached the hub were thrown away, not stored
    hold = _upload_killed_at(hub, args, env, oids[big], len(want[big]), HOLD_AFTER)
    assert hold.stored is False
    assert [hub.repos[("dataset", REPO)]["messages"][c] for c in commits(hub)] == ["initial commit"]
    _assert_store_holds_only_whole_objects(hub)

    # 2. run again, killed while the source model is half-way up: the data commit landed, whole
    stored = {p.name for p in hub.lfs_dir.iterdir()}
    before = len(hub.requests)
    model = "source_model/tiny.keras"
    _upload_killed_at(hub, args, env, oids[model], len(want[model]))
    assert hub.files(REPO) == data_files
    put = {p.rsplit("/", 1)[1] for m, p in hub.requests[before:] if m == "PUT"}
    assert put and not put & stored  # objects already stored were not sent again
    _assert_store_holds_only_whole_objects(hub)

    # 3. the same command once more completes the upload
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=WAIT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "uploaded 2 files" in done.stdout  # the model and its provenance; the data was already there
    assert hub.files(REPO) == want  # the head holds exactly the folder's files (and the hub's .gitattributes)

    # no revision ever showed a half-written file: each holds complete files of this folder
    history = commits(hub)
    assert len(history) == 3
    for sha in history:
        for path, data in hub.files(REPO, sha).items():
            assert data == want[path], (sha, path)
    _assert_store_holds_only_whole_objects(hub)

    assert run_with_friendly_errors(cli, ["validate", f"hub:{REPO}", "-q"]) == 0
