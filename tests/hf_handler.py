"""The HTTP side of the local hub (tests/hf_server.py): one request handler, the endpoints below.

It answers the endpoints the unmodified ``huggingface_hub`` 2.x client uses (read from its
``hf_api.py``, ``_commit_api.py``, ``lfs.py``, ``_snapshot_download.py`` and ``file_download.py``).

Downloads (``snapshot_download`` / ``hf_hub_download``):

* ``GET /api/{models|datasets}/{repo_id}[/revision/{revision}]``: repo info with the resolved ``sha``;
* ``GET /api/{models|datasets}/{repo_id}/tree/{revision}?recursive=True``: the file listing (git blob
  sha1 as ``oid``; ``lfs`` with the sha256 for LFS files);
* ``HEAD`` / ``GET /[datasets/]{repo_id}/resolve/{revision}/{path}``: the file with ``ETag`` (sha256 for
  LFS files, the blob sha1 otherwise), ``X-Repo-Commit`` and ``Content-Length``.

Uploads (``create_repo``, ``create_branch``, ``get_paths_info``, ``upload_folder`` / ``create_commit``
on the LFS path, i.e. with ``HF_HUB_DISABLE_XET=1``: the server never advertises Xet):

* ``POST /api/repos/create``: a new repo whose first commit holds ``.gitattributes``, as the hub makes it
  (409 if it exists);
* ``POST /api/{type}s/{repo_id}/branch/{branch}`` (409 if it exists), ``.../paths-info/{revision}``;
* ``POST /api/validate-yaml``: the README's YAML front matter must parse;
* ``POST /api/{type}s/{repo_id}/preupload/{revision}``: ``uploadMode`` lfs for ``LFS_SUFFIXES``, files
  over 10 MiB and binary samples, regular otherwise, with the remote ``oid`` of files already there;
* ``POST /[datasets/]{repo_id}.git/info/lfs/objects/batch``: ``basic`` transfer, an upload action (a
  signed ``PUT /lfs-objects/{oid}`` on this server, no token needed, like a presigned URL) and a verify
  action, or no actions for an object already stored;
* ``PUT /lfs-objects/{oid}``: streamed to a temp file, size and sha256 checked, then renamed to its oid,
  so no half-written object is ever stored; ``POST .../objects/verify`` checks it;
* ``POST /api/{type}s/{repo_id}/commit/{revision}`` (NDJSON header / file / lfsFile / deletedFile /
  deletedFolder): every operation is checked before anything is applied (an ``lfsFile`` must be a stored
  object of that size; a binary ``file`` is refused as the hub does), then the new commit and the branch
  move appear together, so a commit is visible completely or not at all.

Writes need ``Authorization: Bearer <token>`` when the hub has a ``token`` (401 otherwise). Errors come as
the hub sends them: 404 with ``X-Error-Code: RepoNotFound | RevisionNotFound | EntryNotFound``.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import tempfile
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

if TYPE_CHECKING:
    from hf_server import LocalHub

LFS_SUFFIXES = (".arrow", ".keras", ".h5", ".png")
LFS_MIN_SIZE = 10 * 1024 * 1024  # the hub stores files above 10 MiB in LFS whatever their name
GITATTRIBUTES = "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in LFS_SUFFIXES).encode()
HOLD_TIMEOUT = 60.0  # seconds a held LFS upload waits for the test before it goes on anyway


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


def is_lfs(path: str, size: int, sample: bytes) -> bool:
    """How the hub decides: LFS by name (.gitattributes), by size, or for binary content (a NUL byte)."""
    return path.endswith(LFS_SUFFIXES) or size > LFS_MIN_SIZE or b"\0" in sample[:512]


def _is_lfs_data(path: str, data: bytes) -> bool:
    return is_lfs(path, len(data), data)


def _entry(path: str, data: bytes) -> dict:
    entry = {"type": "file", "path": path, "size": len(data), "oid": git_blob_sha1(data)}
    if _is_lfs_data(path, data):
        entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
    return entry


def _remote_oid(path: str, data: bytes) -> str:
    """What preupload reports for a file already there: sha256 for LFS files, the git blob sha1 otherwise."""
    return hashlib.sha256(data).hexdigest() if _is_lfs_data(path, data) else git_blob_sha1(data)


class HttpError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, commit: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.commit = status, message, code, commit


class Handler(http.server.BaseHTTPRequestHandler):
    hub: LocalHub

    def log_message(self, *args):
        pass

    # ------------------------------------------------------------------ plumbing

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, *, head: bool = False):
        self.send_response(status)
        for k, v in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, body, status: int = 200, head: bool = False):
        self._send(status, json.dumps(body).encode(), {"Content-Type": "application/json"}, head=head)

    def _body_chunks(self, piece: int = 1 << 16):
        """The request body in pieces of at most ``piece`` bytes (Content-Length or chunked encoding).

        ConnectionError if the body ends early (the client went away).
        """
        chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked"
        left = 0 if chunked else int(self.headers.get("Content-Length") or 0)
        while True:
            if chunked and left == 0:
                size = int(self.rfile.readline(1 << 16).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1 << 16) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                left = size
            if left == 0:
                return
            data = self.rfile.read(min(left, piece))
            if not data:
                raise ConnectionError("the request body ended early")
            left -= len(data)
            yield data
            if chunked and left == 0:
                self.rfile.readline(1 << 16)

    def _body(self) -> bytes:
        return b"".join(self._body_chunks())

    def _base(self) -> str:
        return f"http://{self.headers.get('Host')}"

    def _authorize(self):
        if self.hub.token and self.headers.get("Authorization") != f"Bearer {self.hub.token}":
            raise HttpError(401, "Invalid credentials in Authorization header")

    def _repo(self, repo_type: str, repo_id: str, revision: str | None = None) -> tuple[dict, str | None]:
        repo, sha = self.hub.resolve(repo_type, repo_id, revision or "main")
        if repo is None:
            raise HttpError(404, "Repository not found", "RepoNotFound")
        if revision is not None and sha is None:
            raise HttpError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo, sha

    def _dispatch(self, head: bool = False):
        url = urlsplit(self.path)
        self.hub.requests.append((self.command, url.path))
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        try:
            self._route(parts, parse_qs(url.query), head)
        except HttpError as e:
            headers = {"X-Error-Message": e.message, "Content-Type": "application/json"}
            if e.code:
                headers["X-Error-Code"] = e.code
            if e.commit:
                headers["X-Repo-Commit"] = e.commit
            self._send(e.status, json.dumps({"error": e.message}).encode(), headers, head=head)
        except ConnectionError:
            self.close_connection = True

    def _route(self, parts: list[str], query: dict, head: bool):
        method = self.command
        if parts[0] == "api":
            if method == "POST" and parts[1:] == ["repos", "create"]:
                return self._create_repo()
            if method == "POST" and parts[1:] == ["validate-yaml"]:
                return self._validate_yaml()
            if len(parts) >= 4 and parts[1] in ("models", "datasets"):
                repo_type, repo_id = parts[1][:-1], f"{parts[2]}/{parts[3]}"
                action, revision, rest = (parts[4:5] or [None])[0], (parts[5:6] or [None])[0], "/".join(parts[6:])
                if method in ("GET", "HEAD") and action in (None, "revision", "tree"):
                    return self._read_api(repo_type, repo_id, action, revision or "main", rest, head)
                if method == "POST" and action in ("branch", "paths-info", "preupload", "commit") and revision:
                    self._authorize()
                    return getattr(self, "_" + action.replace("-", "_"))(repo_type, repo_id, revision)
        elif method == "PUT" and parts[0] == "lfs-objects" and len(parts) == 2:
            return self._lfs_put(parts[1], (query.get("sig") or [""])[0])
        else:
            repo_type = "dataset" if parts[0] == "datasets" else "model"
            rest = parts[1:] if repo_type == "dataset" else parts
            if (
                method == "POST"
                and len(rest) == 6
                and rest[1].endswith(".git")
                and rest[2:5] == ["info", "lfs", "objects"]
            ):
                self._authorize()
                repo_id = f"{rest[0]}/{rest[1][:-4]}"
                return self._lfs_batch(repo_type, repo_id) if rest[5] == "batch" else self._lfs_verify()
            if method in ("GET", "HEAD") and len(rest) >= 5 and rest[2] == "resolve":
                return self._resolve(repo_type, f"{rest[0]}/{rest[1]}", rest[3], "/".join(rest[4:]), head)
        raise HttpError(404, f"no such endpoint: {method} {self.path}")

    # ------------------------------------------------------------------ downloads

    def _read_api(self, repo_type, repo_id, action, revision, rest, head):
        repo, sha = self._repo(repo_type, repo_id, revision)
        tree = repo["commits"][sha]
        if action == "tree":
            body = [_entry(p, d) for p, d in sorted(tree.items()) if not rest or p.startswith(rest.rstrip("/") + "/")]
        else:
            siblings = [{"rfilename": p} for p in sorted(tree)]
            body = {"id": repo_id, "sha": sha, "private": repo["private"], "siblings": siblings}
        self._json(body, head=head)

    def _resolve(self, repo_type, repo_id, revision, path, head):
        repo, sha = self._repo(repo_type, repo_id, revision)
        data = repo["commits"][sha].get(path)
        if data is None:
            raise HttpError(404, f"{path} does not exist on {revision}", "EntryNotFound", commit=sha)
        etag = _remote_oid(path, data)
        headers = {"ETag": f'"{etag}"', "X-Repo-Commit": sha, "Content-Type": "application/octet-stream"}
        self._send(200, data, headers, head=head)

    # ------------------------------------------------------------------ repos, branches, listings

    def _create_repo(self):
        self._authorize()
        body = json.loads(self._body())
        self.hub.created.append(body)
        repo_type = body.get("type") or "model"
        repo_id = f"{body['organization']}/{body['name']}"
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"{self._base()}/{prefix}{repo_id}"
        if (repo_type, repo_id) in self.hub.repos:
            return self._json({"error": "You already created this repo", "url": url}, 409)
        self.hub.create(repo_id, repo_type, private=body.get("visibility") == "private")
        self.hub.commit(repo_id, {".gitattributes": GITATTRIBUTES}, repo_type=repo_type, message="initial commit")
        self._json({"url": url, "name": repo_id})

    def _branch(self, repo_type, repo_id, branch):
        repo, _ = self._repo(repo_type, repo_id)
        start = json.loads(self._body() or b"{}").get("startingPoint") or "main"
        if branch in repo["branches"]:
            raise HttpError(409, "Reference already exists")
        _, sha = self._repo(repo_type, repo_id, start)
        with self.hub._lock:
            repo["branches"][branch] = sha
        self._json({})

    def _paths_info(self, repo_type, repo_id, revision):
        form = parse_qs(self._body().decode())
        repo, sha = self._repo(repo_type, repo_id, revision)
        tree = repo["commits"][sha]
        out = []
        for p in form.get("paths", []):
            if p in tree:
                out.append(_entry(p, tree[p]))
            elif any(q.startswith(p.rstrip("/") + "/") for q in tree):
                out.append({"type": "directory", "path": p, "oid": hashlib.sha1(p.encode()).hexdigest()})
        self._json(out)

    def _validate_yaml(self):
        import yaml

        content = json.loads(self._body()).get("content", "")
        if content.startswith("---"):
            try:
                yaml.safe_load(content.split("---", 2)[1])
            except yaml.YAMLError as e:
                return self._json({"errors": [{"message": str(e).splitlines()[0]}], "warnings": []}, 400)
        self._json({"errors": [], "warnings": []})

    # ------------------------------------------------------------------ uploads

    def _preupload(self, repo_type, repo_id, revision):
        files = json.loads(self._body())["files"]
        repo, sha = self._repo(repo_type, repo_id, revision)
        tree = repo["commits"][sha]
        out = []
        for f in files:
            lfs = is_lfs(f["path"], f["size"], base64.b64decode(f["sample"]))
            there = tree.get(f["path"])
            oid = _remote_oid(f["path"], there) if there is not None else None
            out.append(
                {"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid}
            )
        self._json({"files": out, "commitOid": sha})

    def _lfs_batch(self, repo_type, repo_id):
        body = json.loads(self._body())
        self._repo(repo_type, repo_id)
        if body.get("operation") != "upload" or "basic" not in body.get("transfers", ["basic"]):
            raise HttpError(400, "only basic uploads are served here")
        base, prefix = self._base(), "" if repo_type == "model" else f"{repo_type}s/"
        objects = []
        for obj in body["objects"]:
            oid, size = obj["oid"], obj["size"]
            entry = {"oid": oid, "size": size, "authenticated": True}
            stored = self.hub.lfs_object(oid)
            if stored is None or stored.stat().st_size != size:
                sig = hashlib.sha256(f"{oid}:{size}:{self.hub.lfs_dir}".encode()).hexdigest()
                entry["actions"] = {
                    "upload": {"href": f"{base}/lfs-objects/{oid}?sig={sig}&size={size}", "header": {}},
                    "verify": {"href": f"{base}/{prefix}{repo_id}.git/info/lfs/objects/verify", "header": {}},
                }
            objects.append(entry)
        self._send(
            200,
            json.dumps({"transfer": "basic", "objects": objects}).encode(),
            {"Content-Type": "application/vnd.git-lfs+json"},
        )

    def _lfs_put(self, oid: str, sig: str):
        size = int((parse_qs(urlsplit(self.path).query).get("size") or ["-1"])[0])
        if sig != hashlib.sha256(f"{oid}:{size}:{self.hub.lfs_dir}".encode()).hexdigest():
            raise HttpError(403, "bad or missing upload signature")
        if self.hub.refuse_lfs_puts:
            self._body()
            raise HttpError(self.hub.refuse_lfs_puts, "Request has expired")
        hold = self.hub.holds.pop(oid, None)
        fd, tmp = tempfile.mkstemp(dir=self.hub.lfs_dir, prefix=f".{oid}.", suffix=".incomplete")
        h, received = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as f:
                stop_at = max(1, int(size * hold.after)) if hold else None
                for chunk in self._body_chunks(max(1, stop_at // 2) if hold else 1 << 16):
                    f.write(chunk)
                    f.flush()
                    h.update(chunk)
                    received += len(chunk)
                    if hold is not None and not hold.reached.is_set() and received >= stop_at:
                        hold.received = received
                        hold.reached.set()
                        hold.release.wait(HOLD_TIMEOUT)
            if received != size or h.hexdigest() != oid:
                raise HttpError(400, f"object {oid}: got {received} bytes hashing to {h.hexdigest()}")
            os.replace(tmp, self.hub.lfs_dir / oid)
            self._send(200)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
            if hold is not None:
                hold.stored = self.hub.lfs_object(oid) is not None
                hold.done.set()

    def _lfs_verify(self):
        body = json.loads(self._body())
        stored = self.hub.lfs_object(body["oid"])
        if stored is None or stored.stat().st_size != body["size"]:
            raise HttpError(404, f"object {body['oid']} of {body['size']} bytes was not uploaded")
        self._json({"message": "ok"})

    def _commit(self, repo_type, repo_id, revision):
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        repo, parent = self._repo(repo_type, repo_id, revision)
        header = lines[0]["value"] if lines and lines[0]["key"] == "header" else {}
        changes: dict[str, bytes] = {}
        deleted: list[tuple[str, bool]] = []
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                data = base64.b64decode(value["content"])
                if _is_lfs_data(value["path"], data):
                    raise HttpError(400, f"{value['path']} is a binary file: upload it with LFS")
                changes[value["path"]] = data
            elif key == "lfsFile":
                stored = self.hub.lfs_object(value["oid"])
                if stored is None or ("size" in value and stored.stat().st_size != value["size"]):
                    raise HttpError(422, f"LFS object {value['oid']} for {value['path']} was not uploaded")
                changes[value["path"]] = stored.read_bytes()
            elif key in ("deletedFile", "deletedFolder"):
                deleted.append((value["path"].rstrip("/"), key == "deletedFolder"))
            else:
                raise HttpError(400, f"unknown commit operation {key!r}")
        with self.hub._lock:
            if repo["branches"].get(revision, revision) != parent:
                raise HttpError(412, "the branch moved while committing: retry")
            if header.get("parentCommit") not in (None, parent):
                raise HttpError(412, f"parent commit {header['parentCommit']} is not the head of {revision}")
            tree = dict(repo["commits"][parent])
            for path, folder in deleted:
                for p in [p for p in tree if p == path or (folder and p.startswith(path + "/"))]:
                    del tree[p]
            tree.update(changes)
            branch = revision if revision in repo["branches"] else None
            if branch is None:
                raise HttpError(400, f"cannot commit to {revision}: not a branch")
            message = header.get("summary", "") + ("\n\n" + header["description"] if header.get("description") else "")
            sha = self.hub._publish(repo, branch, parent, tree, message)
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        self._json({"success": True, "commitOid": sha, "commitUrl": f"{self._base()}/{prefix}{repo_id}/commit/{sha}"})

    # ------------------------------------------------------------------ verbs

    def do_GET(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch(head=True)

    def do_POST(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()
