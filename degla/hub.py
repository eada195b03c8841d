"""The Hugging Face Hub, in one place: uploading a finished folder, and fetching one file of a Hub repository.

Every stage that uploads (the CLIP export of a training run, a negatives dataset, a converted checkpoint)
goes through `push_folder`; files named by `hf://` addresses go through `download_hub_file`, which caches them
as the Hub client does (`~/.cache/huggingface/hub`, or `HF_HOME`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from huggingface_hub import HfApi, hf_hub_download

from .errors import MissingPathError

REPO_TYPES = ("model", "dataset")


def push_folder(folder: str | os.PathLike, repo_id: str, repo_type: str = "model", token: str | None = None,
                private: bool | None = None, allow_patterns: list[str] | None = None,
                commit_message: str = "Upload with degla", api: HfApi | None = None) -> str:
    """Create `repo_id` if needed and upload `folder` (only `allow_patterns`, if given); returns the commit URL."""
    if repo_type not in REPO_TYPES:
        raise ValueError(f"repo_type must be one of {REPO_TYPES}, got {repo_type!r}")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder} does not exist: nothing to upload")
    api = api or HfApi(token=token)
    api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=repo_type,
                             allow_patterns=allow_patterns, commit_message=commit_message)
    return str(getattr(info, "commit_url", info))


def looks_like_local_path(name: str) -> bool:
    """A Hub repository is `org/name` (or a bare legacy `name`); a name with more separators, a leading `.`, `/`
    or `~`, a trailing separator or a file extension is a local path (a missing one is an error, not a Hub lookup)."""
    if name.startswith(("/", ".", "~")) or name.endswith(("/", os.sep)) or name.count("/") > 1:
        return True
    return os.path.splitext(name)[1].lower() in (".json", ".jsonl", ".tsv", ".csv", ".parquet", ".arrow", ".pt",
                                                 ".safetensors")


def check_local_path(name: str, option: str) -> None:
    """Raise naming `option` when `name` is meant as a local path (see `looks_like_local_path`) that is missing."""
    if looks_like_local_path(name) and not os.path.exists(os.path.expanduser(name)):
        raise MissingPathError(f"{option} {name!r}: no such file or folder (a Hub repository is named org/name)")


def public_name(name: str) -> str:
    """A Hub id as is; a local path by its last component (cards and logs carry no local absolute paths)."""
    if os.path.exists(os.path.expanduser(name)) or os.path.isabs(name):
        return os.path.basename(os.path.normpath(name))
    return name


@dataclass(frozen=True)
class HubFile:
    """A file in a Hub repository, addressed as `hf://[datasets/|models/]<org>/<name>[@<revision>]/<path>`."""

    repo_id: str
    filename: str
    repo_type: str = "dataset"
    revision: str | None = None


_HUB_FILE = re.compile(r"^hf://(?:(?P<kind>datasets|models)/)?(?P<repo>[^/@]+/[^/@]+)(?:@(?P<rev>[^/]+))?/(?P<path>.+)$")


def parse_hub_file(address: str) -> HubFile | None:
    """`hf://datasets/wsdwJohn1231/DeGLA/DeGLA.json` → `HubFile`; None when `address` is not an `hf://` address.

    Without `datasets/` or `models/`, the repository is a dataset (what training files come from).
    """
    if not address.startswith("hf://"):
        return None
    match = _HUB_FILE.match(address)
    if match is None:
        raise ValueError(f"{address!r} is not a Hub file address; write hf://datasets/<org>/<name>/<file> "
                         "(optionally <name>@<revision>)")
    repo_type = "model" if match["kind"] == "models" else "dataset"
    return HubFile(match["repo"], match["path"], repo_type, match["rev"])


def download_hub_file(hub_file: HubFile, token: str | None = None) -> str:
    """Download (or reuse from the Hub client's cache) one file; returns its local path."""
    return hf_hub_download(hub_file.repo_id, hub_file.filename, repo_type=hub_file.repo_type,
                           revision=hub_file.revision, token=token)
