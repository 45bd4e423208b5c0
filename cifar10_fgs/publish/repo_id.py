"""Hub repository ids (``USER/NAME``), checked before anything is written or sent."""

from __future__ import annotations

from cifar10_fgs.errors import ConfigError


def check_repo_id(repo_id: str) -> str:
    """``USER/NAME`` as the hub accepts it, else a one-line ConfigError."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        repo_id_ok = False
    else:
        repo_id_ok = repo_id.count("/") == 1
    if not repo_id_ok:
        raise ConfigError(f"--repo-id {repo_id!r} is not a hub repo id: expected USER/NAME (letters, digits, -, _, .)")
    return repo_id
