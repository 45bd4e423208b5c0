"""A tiny Hugging Face hub for the tests: repos in memory, served over real HTTP on 127.0.0.1.

It answers exactly the endpoints ``huggingface_hub.snapshot_download`` / ``hf_hub_download`` use
(read from huggingface_hub 2.x's ``_snapshot_download.py`` and ``file_download.py``):

* ``GET /api/{models|datasets}/{repo_id}/revision/{revision}``: repo info with the resolved ``sha``;
* ``GET /api/{models|datasets}/{repo_id}/tree/{revision}?recursive=True``: the file listing (git blob
  sha1 as ``oid``; ``lfs`` with the sha256 for binary files, as the hub stores them);
* ``HEAD`` / ``GET /[datasets/]{repo_id}/resolve/{revision}/{path}``: the file with ``ETag`` (sha256 for
  LFS files, the blob sha1 otherwise), ``X-Repo-Commit`` and ``Content-Length``;
* errors as the hub sends them: 404 with ``X-Error-Code: RepoNotFound | RevisionNotFound | EntryNotFound``.

Uploads go through :class:`RecordingApi`, a stand-in for ``HfApi`` that records every call and turns
``upload_folder`` / ``create_commit`` into commits of the same in-memory repos.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".arrow", ".keras", ".h5", ".png")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


class LocalHub:
    """Repos keyed by (repo_type, repo_id): commits (sha -> {path: bytes}) and branches (name -> sha)."""

    def __init__(self):
        self.repos: dict[tuple[str, str], dict] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every HTTP request served
        self._lock = threading.Lock()

    def create(self, repo_id: str, repo_type: str = "dataset") -> dict:
        return self.repos.setdefault((repo_type, repo_id), {"commits": {}, "branches": {}})

    def commit(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        repo_type: str = "dataset",
        branch: str = "main",
        replace: bool = False,
        delete: tuple[str, ...] = (),
    ) -> str:
        """A new commit on ``branch``: its parent's files updated with ``files`` (or only ``files`` if replace)."""
        with self._lock:
            repo = self.create(repo_id, repo_type)
            parent = repo["branches"].get(branch) or repo["branches"].get("main")
            tree = {} if replace or parent is None else dict(repo["commits"][parent])
            tree.update(files)
            for p in delete:
                tree.pop(p, None)
            h = hashlib.sha1(f"{parent}\n{len(repo['commits'])}\n".encode())
            for path in sorted(tree):
                h.update(f"{path} {git_blob_sha1(tree[path])}\n".encode())
            sha = h.hexdigest()
            repo["commits"][sha] = tree
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

    @contextmanager
    def serve(self):
        """Serve the repos on an ephemeral port; yields the endpoint URL (for HF_ENDPOINT)."""
        handler = type("Handler", (_Handler,), {"hub": self})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join()


def _entry(path: str, data: bytes) -> dict:
    entry = {"type": "file", "path": path, "size": len(data), "oid": git_blob_sha1(data)}
    if path.endswith(LFS_SUFFIXES):
        entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
    return entry


def _etag(path: str, data: bytes) -> str:
    return hashlib.sha256(data).hexdigest() if path.endswith(LFS_SUFFIXES) else git_blob_sha1(data)


class _Handler(http.server.BaseHTTPRequestHandler):
    hub: LocalHub

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, *, head: bool = False):
        self.send_response(status)
        for k, v in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _error(self, code: str, message: str, head: bool, commit: str | None = None):
        headers = {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"}
        if commit:
            headers["X-Repo-Commit"] = commit
        self._send(404, json.dumps({"error": message}).encode(), headers, head=head)

    def _route(self, head: bool):
        url = urlsplit(self.path)
        self.hub.requests.append((self.command, url.path))
        parts = url.path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 6 and parts[1] in ("models", "datasets"):
            repo_type, repo_id, action = parts[1][:-1], f"{parts[2]}/{parts[3]}", parts[4]
            revision, rest = unquote(parts[5]), unquote("/".join(parts[6:]))
            if action in ("revision", "tree"):
                return self._api(repo_type, repo_id, action, revision, rest, head)
        repo_type = "dataset" if parts[0] == "datasets" else "model"
        if repo_type == "dataset":
            parts = parts[1:]
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._resolve(
                repo_type, f"{parts[0]}/{parts[1]}", unquote(parts[3]), unquote("/".join(parts[4:])), head
            )
        self._send(404, b"not found", head=head)

    def _lookup(self, repo_type, repo_id, revision, head):
        repo, sha = self.hub.resolve(repo_type, repo_id, revision)
        if repo is None:
            self._error("RepoNotFound", "Repository not found", head)
        elif sha is None:
            self._error("RevisionNotFound", f"Invalid rev id: {revision}", head)
        return repo, sha

    def _api(self, repo_type, repo_id, action, revision, rest, head):
        repo, sha = self._lookup(repo_type, repo_id, revision, head)
        if sha is None:
            return
        tree = repo["commits"][sha]
        if action == "revision":
            body = {"id": repo_id, "sha": sha, "private": False, "siblings": [{"rfilename": p} for p in sorted(tree)]}
        else:
            body = [_entry(p, d) for p, d in sorted(tree.items()) if not rest or p.startswith(rest.rstrip("/") + "/")]
        self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"}, head=head)

    def _resolve(self, repo_type, repo_id, revision, path, head):
        repo, sha = self._lookup(repo_type, repo_id, revision, head)
        if sha is None:
            return
        data = repo["commits"][sha].get(path)
        if data is None:
            return self._error("EntryNotFound", f"{path} does not exist on {revision}", head, commit=sha)
        self._send(
            200,
            data,
            {"ETag": f'"{_etag(path, data)}"', "X-Repo-Commit": sha, "Content-Type": "application/octet-stream"},
            head=head,
        )

    def do_GET(self):
        self._route(head=False)

    def do_HEAD(self):
        self._route(head=True)


class RecordingApi:
    """What ``cifar10_fgs.publish.upload.hub_api`` returns in the tests: records calls, commits into a LocalHub."""

    def __init__(self, hub: LocalHub):
        self.hub = hub
        self.calls: list[tuple[str, dict]] = []

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]

    def create_repo(self, repo_id, repo_type="model", exist_ok=False, private=False):
        self.calls.append(("create_repo", {"repo_id": repo_id, "repo_type": repo_type, "private": private}))
        self.hub.create(repo_id, repo_type)
        return f"hub://{repo_type}s/{repo_id}"

    def repo_info(self, repo_id, repo_type="model", **kwargs):
        self.calls.append(("repo_info", {"repo_id": repo_id}))
        return SimpleNamespace(private=False)

    def create_branch(self, repo_id, branch, repo_type="model", exist_ok=False):
        self.calls.append(("create_branch", {"repo_id": repo_id, "branch": branch}))
        repo = self.hub.create(repo_id, repo_type)
        if branch not in repo["branches"] and "main" in repo["branches"]:
            repo["branches"][branch] = repo["branches"]["main"]

    def get_paths_info(self, repo_id, paths, repo_type="model", revision=None):
        from huggingface_hub.hf_api import RepoFile

        self.calls.append(("get_paths_info", {"repo_id": repo_id, "paths": tuple(paths)}))
        repo, sha = self.hub.resolve(repo_type, repo_id, revision or "main")
        tree = repo["commits"][sha] if sha else {}
        return [RepoFile(**_entry(p, tree[p])) for p in paths if p in tree]

    def upload_folder(
        self, *, repo_id, folder_path, repo_type, revision=None, allow_patterns=None, ignore_patterns=None, **kwargs
    ):
        from huggingface_hub.utils import filter_repo_objects

        self.calls.append(("upload_folder", {"repo_id": repo_id, "revision": revision, **kwargs}))
        root = Path(folder_path)
        local = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
        chosen = filter_repo_objects(local, allow_patterns=allow_patterns, ignore_patterns=ignore_patterns)
        sha = self.hub.commit(
            repo_id, {p: (root / p).read_bytes() for p in chosen}, repo_type=repo_type, branch=revision or "main"
        )
        return SimpleNamespace(oid=sha)

    def create_commit(self, *, repo_id, repo_type, operations, revision=None, **kwargs):
        self.calls.append(("create_commit", {"repo_id": repo_id, "paths": [op.path_in_repo for op in operations]}))
        files = {op.path_in_repo: Path(op.path_or_fileobj).read_bytes() for op in operations}
        return SimpleNamespace(oid=self.hub.commit(repo_id, files, repo_type=repo_type, branch=revision or "main"))
