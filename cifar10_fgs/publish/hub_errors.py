"""Hub failures as one-line ``HubError`` messages that never contain the token (``upload``'s one error mapper)."""

from __future__ import annotations

from contextlib import contextmanager

from cifar10_fgs.errors import HubError


def _scrub(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


@contextmanager
def hub_errors(repo_id: str, endpoint: str, revision: str | None, token: str | None):
    """Turn huggingface_hub / network failures into one-line HubErrors that never contain the token."""
    from huggingface_hub import errors as E

    try:
        yield
    except HubError:
        raise
    except E.OfflineModeIsEnabled:
        raise HubError(
            "HF_HUB_OFFLINE is set, so the hub cannot be reached: unset it to upload (or use --dry-run)"
        ) from None
    except E.RevisionNotFoundError:
        raise HubError(
            f"revision {revision!r} does not exist in dataset repo {repo_id}: pass an existing branch or omit --revision"
        ) from None
    except E.RepositoryNotFoundError:
        raise HubError(
            f"dataset repo {repo_id} was not found or is not visible with this token: check --repo-id and the token's account"
        ) from None
    except E.HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status == 401:
            msg = "the hub rejected the token (401): log in again with `hf auth login` or set a valid HF_TOKEN"
        elif status == 403:
            msg = (
                f"the token may not write to dataset repo {repo_id} (403): use a token with write access to "
                f"{repo_id.split('/')[0]}"
            )
        else:
            detail = (getattr(exc, "server_message", None) or "").strip().splitlines()
            detail = f": {detail[0][:200]}" if detail else ""
            msg = (
                f"the hub refused the request for {repo_id} (HTTP {status}{detail}): "
                f"retry later or check the repo on {endpoint}"
            )
        raise HubError(_scrub(msg, token)) from None
    except RuntimeError as exc:  # huggingface_hub wraps a failed LFS transfer: "Error while uploading 'x' to the Hub."
        cause = exc.__cause__
        if not isinstance(cause, (E.HTTPError, ConnectionError, TimeoutError)):
            raise
        status = getattr(getattr(cause, "response", None), "status_code", None)
        why = f"HTTP {status}" if status else type(cause).__name__
        what = str(exc).removeprefix("Error while uploading ").removesuffix(" to the Hub.")
        raise HubError(
            _scrub(
                f"uploading {what} to dataset repo {repo_id} failed ({why}): rerun the same command to resume "
                "(files already on the hub are not sent again)",
                token,
            )
        ) from None
    except (E.HTTPError, ConnectionError, TimeoutError) as exc:
        raise HubError(
            f"cannot reach the hub at {endpoint} ({type(exc).__name__}): check the network connection (and HF_ENDPOINT)"
        ) from None
