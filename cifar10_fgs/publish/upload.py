"""``upload``: publish a finished dataset folder as a Hugging Face hub dataset repo.

Only the dataset's own files go up: ``README.md``, ``generation.json``, ``data/*.arrow`` (exactly the
shards the manifest lists), ``figures/*`` and ``results/*``; never ``.lock``, ``.tmp/`` or hidden
files. By default the source model travels with the data: ``source_model/<name>.keras``, its
provenance ``source_model/<name>.json`` and, when one lies beside the model, its input convention
``source_model/cifar10-fgs.json`` (checked against ``generation.json``), where ``<name>`` is the file name
``generation.json`` records, so ``cifar10-fgs validate hub:USER/NAME`` can re-prove the copy from the repo alone. The model is
found at the given path, else beside the dataset folder (``../models/<name>``, the ``run`` workspace,
or ``../<name>``); one whose sha256 differs from ``generation.json`` is refused before anything is sent.
Before uploading, the remote files are compared with the local ones (git blob sha1, or the
LFS sha256) and unchanged files are skipped, so a rerun uploads nothing twice; an interrupted
upload is resumed by rerunning. With ``hf_xet`` installed (the default) ``huggingface_hub.upload_folder``
splits very large folders into several commits on its own (``upload_large_folder`` no longer exists in
huggingface_hub 2.x); with ``HF_HUB_DISABLE_XET=1`` it sends LFS files and makes one commit.

What goes up is decided in ``upload_files``; this module compares it with the hub and sends what changed.
Every hub call goes through :func:`hub_api` (the one place an ``HfApi`` is made). The token
comes from huggingface_hub's usual places (``HF_TOKEN``, the token saved by ``hf auth login``) and is
never printed, logged or written; failures become one-line :class:`HubError` messages.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cifar10_fgs import __version__
from cifar10_fgs.dataset import manifest as mf
from cifar10_fgs.dataset.folder import MODEL_DIR
from cifar10_fgs.dataset.shards import DATA_DIR, FIGURES_DIR, RESULTS_DIR
from cifar10_fgs.errors import ConfigError, ExistingOutputError, HubError
from cifar10_fgs.provenance import read_json, sha256_file
from cifar10_fgs.publish.hub_errors import hub_errors
from cifar10_fgs.publish.repo_id import check_repo_id
from cifar10_fgs.publish.upload_files import check_upload_card, find_source_model, listed_files, model_files

log = logging.getLogger(__name__)

REPO_TYPE = "dataset"
IGNORE_PATTERNS = (".*", "*/.*", "*.tmp", "*.partial", "*.lock")


def hub_api(endpoint: str | None = None, token: str | None = None):
    """The one place an ``HfApi`` is made (tests replace this function)."""
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint, token=token, library_name="cifar10-fgs", library_version=__version__)


@dataclass(frozen=True)
class UploadFile:
    path_in_repo: str
    bytes: int


@dataclass(frozen=True)
class UploadResult:
    repo_id: str
    url: str
    revision: str | None
    private: bool
    dry_run: bool
    files: tuple[UploadFile, ...]  # everything the repo should hold from this folder
    uploaded: tuple[str, ...]  # sent in this run (empty for a dry run)
    unchanged: tuple[str, ...]  # already on the hub with the same content
    total_bytes: int
    manifest_sha256: str
    commit_message: str
    commits: tuple[str, ...]  # commit ids made in this run
    warnings: tuple[str, ...]


# --------------------------------------------------------------------------- comparing with the hub


def _git_blob_sha1(path: Path) -> tuple[str, str]:
    """(git blob sha1, sha256) of a file in one read."""
    size = path.stat().st_size
    g = hashlib.sha1(f"blob {size}\0".encode())
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            g.update(block)
            h.update(block)
    return g.hexdigest(), h.hexdigest()


def _same(remote, local: Path) -> bool:
    if remote is None or getattr(remote, "size", None) != local.stat().st_size:
        return False
    sha1, sha256 = _git_blob_sha1(local)
    lfs = getattr(remote, "lfs", None)
    if lfs is not None and getattr(lfs, "sha256", None):
        return lfs.sha256 == sha256
    return getattr(remote, "blob_id", None) == sha1


# --------------------------------------------------------------------------- upload


def upload_dataset(
    dataset_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    dry_run: bool = False,
    source_model: str | Path | None = None,
    ship_source_model: bool = True,
    endpoint: str | None = None,
    token: str | None = None,
    overwrite: bool = False,
) -> UploadResult:
    """Upload a finished, carded dataset folder to the dataset repo ``repo_id`` (created if needed).

    With ``dry_run`` nothing contacts the hub: the result lists the files, sizes and target.
    The source model (checked against the manifest's sha256) goes under ``source_model/`` unless
    ``ship_source_model`` is false; ``source_model`` is its path (default: found beside the folder, see
    :func:`find_source_model`). ``token`` defaults to huggingface_hub's (``HF_TOKEN`` or the saved login).
    A repo holding a dataset generated with other settings is replaced only with ``overwrite``, and then its
    dataset files this folder does not have are deleted in the same commit (the hub keeps the old commits).
    """
    from huggingface_hub import constants

    if not ship_source_model and source_model is not None:  # options first: before the folder is read or hashed
        raise ConfigError("--source-model and --no-source-model contradict each other: drop one of them")
    dataset_dir = Path(dataset_dir)
    check_repo_id(repo_id)
    if revision is not None and not revision.strip():
        raise ConfigError("--revision is empty: pass a branch name or omit it")
    manifest = mf.read(dataset_dir, complete=True)
    warnings = check_upload_card(dataset_dir, manifest, repo_id)
    manifest_sha = sha256_file(dataset_dir / mf.FILE)
    local = {p: dataset_dir / p for p in listed_files(dataset_dir, manifest)}
    model = (
        dict(model_files(find_source_model(dataset_dir, manifest, source_model), manifest)) if ship_source_model else {}
    )
    files = tuple(UploadFile(p, f.stat().st_size) for p, f in [*local.items(), *model.items()])
    total = sum(f.bytes for f in files)
    endpoint_url = (endpoint or constants.ENDPOINT).rstrip("/")
    splits = manifest.stored_rows()
    message = f"Upload adversarial CIFAR-10 (generation.json sha256 {manifest_sha})"
    description = (
        "Rows: " + ", ".join(f"{s} {n}" for s, n in splits.items()) + f". Written by cifar10-fgs {__version__}."
    )

    planned = UploadResult(
        repo_id=repo_id,
        url=f"{endpoint_url}/datasets/{repo_id}" + (f"/tree/{revision}" if revision else ""),
        revision=revision,
        private=private,
        dry_run=dry_run,
        files=files,
        uploaded=(),
        unchanged=(),
        total_bytes=total,
        manifest_sha256=manifest_sha,
        commit_message=message,
        commits=(),
        warnings=tuple(warnings),
    )
    if dry_run:
        return planned

    token = _resolve_token(token)
    api = hub_api(endpoint=endpoint, token=token)
    with hub_errors(repo_id, endpoint_url, revision, token):
        uploaded, commits = _send_changed(
            api, planned, dataset_dir, local, model, description, overwrite, manifest.source_model.sha256
        )
    unchanged = [p for p in [*local, *model] if p not in uploaded]
    if not uploaded:
        log.info("nothing to upload: %s already holds all %d files", repo_id, len(files))
    return dataclasses.replace(planned, uploaded=tuple(uploaded), unchanged=tuple(unchanged), commits=tuple(commits))


def _send_changed(
    api,
    planned: UploadResult,
    dataset_dir: Path,
    local: dict[str, Path],
    model: dict[str, Path],
    description: str,
    overwrite: bool,
    model_sha256: str | None,
) -> tuple[list[str], list[str]]:
    """Create the repo if needed and upload the files that differ from the remote ones: (uploaded, commits).

    ``local`` and ``model`` map repo paths to the dataset's files and the source model's; ``planned`` names the
    repo, revision, visibility and commit message.
    """
    repo_id, revision = planned.repo_id, planned.revision
    _prepare_repo(api, repo_id, planned.private, revision)
    remote = _remote_files(api, repo_id, [*local, *model], revision)
    stale = _replaced_files(api, repo_id, revision, remote, {**local, **model}, overwrite)
    changed = [p for p, f in local.items() if not _same(remote.get(p), f)]
    changed_model = [p for p, f in model.items() if not _same(remote.get(p), f)]
    commits = _push_data(
        api, dataset_dir, repo_id, revision, changed, len(local), planned.commit_message, description, delete=stale
    )
    commits += _push_model(api, repo_id, revision, {p: model[p] for p in changed_model}, model_sha256)
    return [*changed, *changed_model], commits


def _resolve_token(token: str | None) -> str:
    """``token``, else huggingface_hub's (``HF_TOKEN`` or the saved login); a HubError if there is none."""
    if token is None:
        from huggingface_hub import get_token

        token = get_token()
    if not token:
        raise HubError("no Hugging Face token found: run `hf auth login` or set HF_TOKEN to a token with write access")
    return token


def _prepare_repo(api, repo_id: str, private: bool, revision: str | None) -> None:
    """Create the dataset repo (and the branch ``revision``) if needed; refuse a public repo under ``private``."""
    api.create_repo(repo_id, repo_type=REPO_TYPE, exist_ok=True, private=private)
    if private:
        info = api.repo_info(repo_id, repo_type=REPO_TYPE)
        if getattr(info, "private", None) is not True:
            raise HubError(
                f"dataset repo {repo_id} already exists and is public: make it private on the hub first, or drop --private"
            )
    if revision and not revision.startswith("refs/"):
        api.create_branch(repo_id, branch=revision, repo_type=REPO_TYPE, exist_ok=True)


def _replaced_files(api, repo_id: str, revision: str | None, remote: dict, ours: dict[str, Path], overwrite: bool):
    """Refuse to replace a dataset of other settings in the repo (its ``generation.json`` ``config``) unless
    ``overwrite``; with it, the repo's dataset files this upload does not hold, to delete (another dataset's shards
    would be loaded with ours: the card's data files are ``data/<split>-*.arrow``). [] for the same dataset."""
    there = remote.get(mf.FILE)
    if there is None or _same(there, ours[mf.FILE]):
        return []
    with tempfile.TemporaryDirectory() as tmp:
        path = api.hf_hub_download(repo_id, mf.FILE, repo_type=REPO_TYPE, revision=revision, local_dir=tmp)
        try:
            config = json.loads(Path(path).read_text(encoding="utf-8")).get("config")
        except (OSError, ValueError, AttributeError):
            config = None
    if config == read_json(ours[mf.FILE]).get("config"):  # the same dataset (summary or timing rewritten)
        return []
    if not overwrite:
        where = repo_id + (f"@{revision}" if revision else "")
        raise ExistingOutputError(
            f"dataset repo {where}",
            "holds a dataset generated with other settings (its generation.json)",
            "upload to another --repo-id",
        )
    folders = (DATA_DIR, FIGURES_DIR, RESULTS_DIR, MODEL_DIR)
    files = api.list_repo_files(repo_id, repo_type=REPO_TYPE, revision=revision)
    return [p for p in files if p.split("/")[0] in folders and p not in ours]


def _push_data(
    api,
    dataset_dir: Path,
    repo_id: str,
    revision: str | None,
    changed: list[str],
    num_local: int,
    message: str,
    description: str,
    delete: Sequence[str] = (),
) -> list[str]:
    """Upload the ``changed`` dataset files in ``upload_folder`` (deleting the repo's files ``delete``); the commit
    ids made (none if nothing changed)."""
    if not changed:
        return []
    log.info("uploading %d of %d files to %s", len(changed), num_local, repo_id)
    if delete:
        log.info("deleting %d files of the dataset it replaces from %s", len(delete), repo_id)
    info = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(dataset_dir),
        repo_type=REPO_TYPE,
        revision=revision,
        commit_message=message,
        commit_description=description,
        allow_patterns=[glob.escape(p) for p in changed],
        ignore_patterns=list(IGNORE_PATTERNS),
        delete_patterns=[glob.escape(p) for p in delete] or None,
    )
    return [getattr(info, "oid", None) or ""]


def _push_model(
    api, repo_id: str, revision: str | None, changed: dict[str, Path], model_sha256: str | None
) -> list[str]:
    """Commit the ``changed`` source-model files (path in repo -> local file); the commit ids made."""
    if not changed:
        return []
    from huggingface_hub import CommitOperationAdd

    ops = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(f)) for p, f in changed.items()]
    info = api.create_commit(
        repo_id=repo_id,
        repo_type=REPO_TYPE,
        revision=revision,
        operations=ops,
        commit_message=f"Upload source model (sha256 {model_sha256})",
    )
    return [getattr(info, "oid", None) or ""]


def _remote_files(api, repo_id: str, paths: list[str], revision: str | None) -> dict:
    """Remote ``RepoFile``s by path ({} for a new repo/branch): used to skip files already uploaded."""
    from huggingface_hub import errors as E

    try:
        found = api.get_paths_info(repo_id, paths, repo_type=REPO_TYPE, revision=revision)
    except (E.EntryNotFoundError, E.RevisionNotFoundError):
        return {}
    return {f.path: f for f in found if hasattr(f, "blob_id")}
