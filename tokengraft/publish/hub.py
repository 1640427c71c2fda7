"""``--push-to-hub REPO``: upload an output folder, as written, to the Hugging Face Hub.

Private by default (``public=True`` publishes). The folder is always complete on disk before
the push starts, so a push that fails (no network, offline mode, no token, no permission)
loses nothing: the error says so, and how to push it later.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tokengraft.errors import TokengraftError

log = logging.getLogger(__name__)


def check_repo_id(repo: str) -> None:
    """Refuse a hub repository id that is not ``user/name``, before any work."""
    if repo.count("/") != 1 or not all(part.strip() for part in repo.split("/")) or any(c.isspace() for c in repo):
        raise TokengraftError(f"--push-to-hub expects a repository id like user/name, got {repo!r}")


def push_folder(folder: str | Path, repo: str, *, public: bool = False, api: Any = None) -> str:
    """Create ``repo`` (private unless ``public``) if needed, upload ``folder``; return the repo URL.

    ``api``: a ``huggingface_hub.HfApi`` (tests pass a stand-in).
    """
    folder = Path(folder)
    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise TokengraftError(f"{folder} is not a model folder; nothing was pushed")
    check_repo_id(repo)
    later = (f"the folder is complete at {folder}; push it later with: "
             f"hf upload {repo} {folder} .{'' if public else ' --private'}")
    if api is None:
        try:
            from huggingface_hub import HfApi
        except ImportError:
            raise TokengraftError(f"pushing needs huggingface_hub (pip install huggingface_hub); {later}") from None
        api = HfApi()
    visibility = "public" if public else "private"
    try:
        url = api.create_repo(repo, private=not public, exist_ok=True)
        api.upload_folder(repo_id=repo, folder_path=str(folder),
                          commit_message=f"tokengraft: upload {folder.name}")
    except Exception as exc:  # network, offline mode, auth, permissions: all end the same way for the user
        raise TokengraftError(f"could not push to the hub repository {repo} ({_reason(exc)}); {later}") from exc
    log.info("pushed %s to %s (%s)", folder, repo, visibility)
    return str(url)


def _reason(exc: BaseException) -> str:
    name = type(exc).__name__
    if name == "OfflineModeIsEnabled":
        return "offline mode is on: HF_HUB_OFFLINE=1"
    if name in ("LocalTokenNotFoundError",) or "401" in str(exc):
        return "not logged in: run `hf auth login` or set HF_TOKEN"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else name
    return f"{name}: {text[:160]}"
