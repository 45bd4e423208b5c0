"""Reading a published copy from the Hugging Face hub: ``hub:USER/NAME[@REVISION]`` and ``hf://`` models.

:func:`parse_hub_ref` reads the reference, :func:`download` brings the repo into huggingface_hub's
usual cache with ``snapshot_download`` (the revision pinned, default ``main``) and returns the
folder together with the exact commit it holds; every hub or network failure becomes a one-line
:class:`~cifar10_fgs.errors.HubError` (exit code 2). :mod:`cifar10_fgs.validate.hub` re-proves a
published copy with them.

The endpoint is ``HF_ENDPOINT`` (read when called, so tests can point it at a local server), the
token huggingface_hub's usual one; ``HF_HUB_OFFLINE=1`` serves only what is already cached.
"""

from __future__ import annotations

import logging
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cifar10_fgs.errors import ConfigError, HubError

log = logging.getLogger(__name__)

PREFIX = "hub:"
MODEL_URI_PREFIX = "hf://"
DEFAULT_REVISION = "main"
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class HubRef:
    """A repo on the hub: ``repo_id`` at ``revision`` (a branch, tag or commit; None means main)."""

    repo_id: str
    revision: str | None = None
    repo_type: str = "dataset"

    def __str__(self) -> str:
        prefix = PREFIX if self.repo_type == "dataset" else MODEL_URI_PREFIX
        return f"{prefix}{self.repo_id}" + (f"@{self.revision}" if self.revision else "")


@dataclass(frozen=True)
class HubSnapshot:
    """A downloaded repo: the cache folder holding it and the commit it was resolved to."""

    ref: HubRef
    path: str
    commit: str
    endpoint: str

    @property
    def label(self) -> str:
        """``hub:USER/NAME@<commit>``: names exactly what was read."""
        prefix = PREFIX if self.ref.repo_type == "dataset" else MODEL_URI_PREFIX
        return f"{prefix}{self.ref.repo_id}@{self.commit}"


def is_hub_ref(text: str | os.PathLike | None) -> bool:
    return isinstance(text, str) and text.startswith(PREFIX)


def is_model_uri(text: str | os.PathLike | None) -> bool:
    return isinstance(text, str) and text.startswith(MODEL_URI_PREFIX)


def parse_hub_ref(text: str, repo_type: str = "dataset") -> HubRef:
    """``hub:USER/NAME[@REVISION]`` (datasets) or ``hf://USER/NAME[@REVISION]`` (models) -> HubRef."""
    prefix = PREFIX if repo_type == "dataset" else MODEL_URI_PREFIX
    example = f"{prefix}USER/NAME or {prefix}USER/NAME@REVISION"
    if not text.startswith(prefix):
        raise ConfigError(f"{text!r} is not a hub reference: expected {example}")
    body = text[len(prefix) :]
    repo_id, at, revision = body.partition("@")
    if not _REPO_ID.match(repo_id):
        raise ConfigError(f"{text!r} names no valid repo (USER/NAME): expected {example}")
    if at and not revision.strip():
        raise ConfigError(f"{text!r} has an empty revision after '@': pass a branch, tag or commit, or drop the '@'")
    return HubRef(repo_id, revision or None, repo_type)


def endpoint() -> str:
    """The hub to talk to: ``HF_ENDPOINT`` if set now, else huggingface_hub's default."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


@contextmanager
def hub_errors(ref: HubRef, where: str):
    """Turn huggingface_hub / network failures while downloading into one-line HubErrors."""
    from huggingface_hub import constants
    from huggingface_hub import errors as E

    kind = "dataset" if ref.repo_type == "dataset" else "model"
    rev = ref.revision or DEFAULT_REVISION
    try:
        yield
    except HubError:
        raise
    except E.RevisionNotFoundError:
        raise HubError(
            f"revision {rev!r} does not exist in {kind} repo {ref.repo_id} on {where}: pass an existing "
            f"branch, tag or commit ({ref.repo_id}@REVISION) or drop @{rev}"
        ) from None
    except E.GatedRepoError:
        raise HubError(
            f"{kind} repo {ref.repo_id} is gated: accept its conditions on {where} and log in with `hf auth login`"
        ) from None
    except E.RepositoryNotFoundError:
        raise HubError(
            f"{kind} repo {ref.repo_id} was not found on {where} (or is private and this token cannot "
            "see it): check the name, or log in with `hf auth login`"
        ) from None
    except E.IncompleteSnapshotError:
        raise HubError(
            f"the cached copy of {ref} is incomplete and the hub cannot be reached: connect to {where} "
            "(and unset HF_HUB_OFFLINE) to finish the download"
        ) from None
    except (E.LocalEntryNotFoundError, E.OfflineModeIsEnabled):
        if constants.is_offline_mode():
            raise HubError(
                f"HF_HUB_OFFLINE is set and {ref} is not in the cache ({constants.HF_HUB_CACHE}): unset "
                "HF_HUB_OFFLINE to download it"
            ) from None
        raise HubError(
            f"cannot reach the hub at {where} and {ref} is not cached: check the network connection (and HF_ENDPOINT)"
        ) from None
    except E.HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        raise HubError(
            f"the hub at {where} refused to serve {ref} (HTTP {status}): retry later, or log in with "
            "`hf auth login` if the repo is private"
        ) from None
    except (ConnectionError, TimeoutError, OSError) as exc:
        raise HubError(
            f"cannot download {ref} from {where} ({type(exc).__name__}): check the network connection, "
            "the free disk space and HF_HOME"
        ) from None


@contextmanager
def _progress_bars(enabled: bool):
    """huggingface_hub's progress bars on or off for the duration (restored afterwards)."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    if not enabled and not was_disabled:
        disable_progress_bars()
    try:
        yield
    finally:
        if not enabled and not was_disabled:
            enable_progress_bars()


def download(ref: HubRef, *, allow_patterns: list[str] | None = None, progress: bool = False) -> HubSnapshot:
    """``snapshot_download`` of ``ref`` into the usual cache; the snapshot folder and its commit."""
    from huggingface_hub import snapshot_download

    where = endpoint()
    log.info("downloading %s from %s", ref, where)
    with hub_errors(ref, where), _progress_bars(progress):
        path = snapshot_download(
            ref.repo_id,
            repo_type=ref.repo_type,
            revision=ref.revision or DEFAULT_REVISION,
            endpoint=where,
            allow_patterns=allow_patterns,
        )
    commit = Path(path).name
    if not _COMMIT.match(commit):  # snapshot folders are named by commit: anything else is not the usual cache
        raise HubError(f"huggingface_hub returned {path} for {ref}, not a snapshot/<commit> folder: check HF_HUB_CACHE")
    log.info("%s is commit %s (%s)", ref, commit, path)
    return HubSnapshot(ref, str(path), commit, where)
