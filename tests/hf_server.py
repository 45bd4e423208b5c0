"""A tiny Hugging Face hub for the tests: repos in memory, LFS objects on disk, served over real HTTP on 127.0.0.1.

:class:`LocalHub` holds the repos (every commit kept, so a test can check each revision) and serves them
with :class:`hf_handler.Handler`, which answers the endpoints the unmodified ``huggingface_hub`` 2.x client
uses to download and to upload (listed there). :func:`point_client_at` points this process's client at
it; :meth:`LocalHub.hold_lfs_put` stops one LFS upload half-way until the test releases it (kill tests);
:meth:`LocalHub.calls` names the endpoints a run hit.
"""

from __future__ import annotations

import hashlib
import http.server
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hf_handler import GITATTRIBUTES, Handler, git_blob_sha1, is_lfs

__all__ = [
    "GITATTRIBUTES",
    "Hold",
    "LocalHub",
    "git_blob_sha1",
    "is_lfs",
    "point_client_at",
    "request_kind",
]


@dataclass
class Hold:
    """One LFS upload stopped half-way: ``reached`` once the server holds it, ``release`` to let it go on."""

    oid: str
    after: float = 0.5  # the fraction of the object the server reads before it stops
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    received: int = 0  # bytes the server had read when it stopped
    stored: bool | None = None  # whether the object was complete (and stored) in the end


class LocalHub:
    """Repos keyed by (repo_type, repo_id): commits (sha -> {path: bytes}), branches (name -> sha), messages."""

    def __init__(self, root: str | Path | None = None, token: str | None = None):
        self.repos: dict[tuple[str, str], dict] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every HTTP request served
        self.created: list[dict] = []  # the JSON bodies of POST /api/repos/create
        self.token = token
        self.lfs_dir = Path(root or tempfile.mkdtemp(prefix="localhub-")) / "lfs"
        self.lfs_dir.mkdir(parents=True, exist_ok=True)
        self.holds: dict[str, Hold] = {}
        self.endpoint: str | None = None  # while serving: the URL it is served at
        self.refuse_lfs_puts: int | None = None  # an HTTP status every LFS PUT gets instead (e.g. 403, expired URL)
        self._lock = threading.Lock()

    def create(self, repo_id: str, repo_type: str = "dataset", private: bool = False) -> dict:
        return self.repos.setdefault(
            (repo_type, repo_id), {"commits": {}, "branches": {}, "messages": {}, "private": private}
        )

    def commit(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        repo_type: str = "dataset",
        branch: str = "main",
        replace: bool = False,
        delete: tuple[str, ...] = (),
        message: str = "",
    ) -> str:
        """A new commit on ``branch``: its parent's files updated with ``files`` (or only ``files`` if replace)."""
        with self._lock:
            repo = self.create(repo_id, repo_type)
            parent = repo["branches"].get(branch) or repo["branches"].get("main")
            tree = {} if replace or parent is None else dict(repo["commits"][parent])
            tree.update(files)
            for p in delete:
                tree.pop(p, None)
            return self._publish(repo, branch, parent, tree, message)

    @staticmethod
    def _publish(repo: dict, branch: str, parent: str | None, tree: dict[str, bytes], message: str) -> str:
        """Record ``tree`` as a new commit and move ``branch`` to it (caller holds the lock)."""
        h = hashlib.sha1(f"{parent}\n{len(repo['commits'])}\n".encode())
        for path in sorted(tree):
            h.update(f"{path} {git_blob_sha1(tree[path])}\n".encode())
        sha = h.hexdigest()
        repo["commits"][sha] = tree
        repo["messages"][sha] = message
        repo["branches"][branch] = sha
        return sha

    def commit_folder(self, repo_id: str, folder: Path, *, repo_type: str = "dataset", branch: str = "main") -> str:
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        return self.commit(repo_id, files, repo_type=repo_type, branch=branch)

    def resolve(self, repo_type: str, repo_id: str, revision: str) -> tuple[dict | None, str | None]:
        """(repo, commit sha) for a branch name or commit; (None, None) if no repo, (repo, None) if no revision."""
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            return None, None
        if revision in repo["commits"]:
            return repo, revision
        return repo, repo["branches"].get(revision)

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "dataset") -> dict[str, bytes]:
        repo, sha = self.resolve(repo_type, repo_id, revision)
        return dict(repo["commits"][sha])

    def calls(self, since: int = 0) -> list[str]:
        """What each request since ``since`` was, by the endpoint's name (``commit``, ``lfs-put``, ...)."""
        return [request_kind(method, path) for method, path in self.requests[since:]]

    def lfs_object(self, oid: str) -> Path | None:
        path = self.lfs_dir / oid
        return path if path.is_file() else None

    def hold_lfs_put(self, oid: str, after: float = 0.5) -> Hold:
        """Stop the next ``PUT`` of LFS object ``oid`` after reading that fraction of it, until ``release`` is set."""
        hold = self.holds[oid] = Hold(oid, after)
        return hold

    @contextmanager
    def serve(self):
        """Serve the repos on an ephemeral port; yields the endpoint URL (for HF_ENDPOINT)."""
        handler = type("Handler", (Handler,), {"hub": self})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            yield self.endpoint
        finally:
            self.endpoint = None
            for hold in self.holds.values():
                hold.release.set()
            server.shutdown()
            server.server_close()
            thread.join()


def point_client_at(monkeypatch, endpoint: str, token: str | None = None) -> None:
    """This process's huggingface_hub talks to ``endpoint``, online, on the LFS path (Xet off), with ``token``.

    ``HfApi()`` and ``hf_hub_url`` read ``constants.ENDPOINT`` / the URL template (fixed at import from
    ``HF_ENDPOINT``), :func:`cifar10_fgs.hub.endpoint` reads ``HF_ENDPOINT``: all three are set.
    """
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    if token is not None:
        monkeypatch.setenv("HF_TOKEN", token)


def request_kind(method: str, path: str) -> str:
    """``create``, ``validate-yaml``, ``repo-info``, ``revision``, ``tree``, ``branch``, ``paths-info``, ``preupload``,
    ``commit``, ``lfs-batch``, ``lfs-put``, ``lfs-verify`` or ``resolve`` for one request."""
    parts = path.strip("/").split("/")
    if method == "PUT":
        return "lfs-put"
    if parts[-3:-1] == ["lfs", "objects"]:
        return f"lfs-{parts[-1]}"
    if parts[:3] == ["api", "repos", "create"] or parts[:2] == ["api", "validate-yaml"]:
        return parts[-1]
    if parts[0] == "api":
        return parts[4] if len(parts) > 4 else "repo-info"
    return "resolve"
