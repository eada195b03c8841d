"""The Hugging Face Hub, in one place: uploading a finished folder, fetching one file of a Hub repository, and
the checks every stage makes before it loads anything named by an option.

Every stage that uploads (the CLIP export of a training run, a negatives dataset, a converted checkpoint)
goes through `push_folder`; files named by `hf://` addresses go through `download_hub_file`, which caches them
as the Hub client does (`~/.cache/huggingface/hub`, or `HF_HOME`). Before a stage loads a model it checks the
paths of its options (`check_local_path`, `check_data_source`, `check_folder`: cheap, before any expensive
load), and it loads the model inside `model_loading(option, name)`, which turns a model that cannot be loaded
(offline, a mistyped Hub id, a folder without the files) into one error naming the option.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from dataclasses import dataclass

from huggingface_hub import HfApi, constants, hf_hub_download
from huggingface_hub.errors import HFValidationError, RepositoryNotFoundError, RevisionNotFoundError
from huggingface_hub.file_download import repo_folder_name

from .errors import InputError, MissingPathError, ModelLoadError

REPO_TYPES = ("model", "dataset")
HUB_CHECK_TIMEOUT = 10.0  # seconds for the one request of `check_hub_repo` (connect or read)
_FOUND_ON_HUB: set[tuple] = set()  # (endpoint, repo id, type, revision) that `check_hub_repo` found


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
                                                 ".safetensors", ".gguf")


def check_local_path(name: str, option: str) -> None:
    """Raise naming `option` when `name` is meant as a local path (see `looks_like_local_path`) that is missing."""
    if looks_like_local_path(name) and not os.path.exists(os.path.expanduser(name)):
        raise MissingPathError(f"{option} {name!r}: no such file or folder (a Hub repository is named org/name)")


def check_folder(path: str | None, option: str) -> None:
    """Raise naming `option` when `path` is given and is not an existing folder."""
    if path is not None and not os.path.isdir(os.path.expanduser(path)):
        raise MissingPathError(f"{option} {path!r}: no such folder")


def check_data_source(name: str | None, option: str) -> None:
    """Before anything is loaded: a data source is an `hf://` file address, an existing local path, or a Hub
    dataset id `org/name`. A name without `/` that is no local path is taken for a mistyped path (a Hub dataset
    is named org/name), never looked up on the Hub."""
    if name is None:
        return
    if name.startswith("hf://"):
        try:
            hub_file = parse_hub_file(name)
        except ValueError as err:
            raise InputError(f"{option}: {err}") from None
        check_hub_repo(hub_file.repo_id, option, hub_file.repo_type, hub_file.revision, error=InputError,
                       use_cache=True)  # a cached file is read from the cache when the Hub cannot be reached
        return
    check_local_path(name, option)
    if "/" not in name and not os.path.exists(os.path.expanduser(name)):
        raise MissingPathError(f"{option} {name!r}: no such file or folder (a Hub dataset is named org/name)")
    check_hub_repo(name, option, "dataset", error=InputError)


def _first_sentence(err: BaseException) -> str:
    text = " ".join(str(err).split())
    cut = text.find(". ")
    return text[: cut + 1] if 0 < cut < 300 else text[:300]


def _in_hub_cache(repo_id: str, repo_type: str) -> bool:
    return os.path.isdir(os.path.join(constants.HF_HUB_CACHE, repo_folder_name(repo_id=repo_id, repo_type=repo_type),
                                      "snapshots"))


def check_hub_repo(repo_id: str, option: str, repo_type: str = "model", revision: str | None = None,
                   error: type[InputError] = ModelLoadError, use_cache: bool = False) -> bool:
    """Before anything named by `option` is loaded from the Hub: one request (`HUB_CHECK_TIMEOUT`, no retry) that
    the repository exists. A repository or revision the Hub does not have is one `error` naming the option; so is a
    Hub that cannot be reached (refused, timed out, a server error), unless `use_cache` and the Hub cache holds the
    repository: then True is returned and the caller loads from the cache, offline. False: the load may go to the
    Hub, or the Hub is off (`HF_HUB_OFFLINE`: huggingface_hub then reads its cache alone, with no request)."""
    if constants.HF_HUB_OFFLINE or os.path.exists(os.path.expanduser(repo_id)):
        return False
    key = (constants.ENDPOINT, repo_id, repo_type, revision)
    if key in _FOUND_ON_HUB:  # checked already in this process (a stage may check early, then load)
        return False
    what = f"{option} {repo_id!r}" + (f" (revision {revision!r})" if revision else "")
    try:
        HfApi().repo_info(repo_id, repo_type=repo_type, revision=revision, timeout=HUB_CHECK_TIMEOUT)
        _FOUND_ON_HUB.add(key)
        return False
    except HFValidationError as err:
        raise error(f"{what} is neither a local path nor a Hub repository id ({_first_sentence(err)})") from None
    except RevisionNotFoundError:
        raise error(f"{what}: the Hub {repo_type} repository has no such revision") from None
    except RepositoryNotFoundError:
        raise error(f"{what}: no such {repo_type} repository on the Hub, and no such local path (check the name; "
                    "a private or gated repository needs `hf auth login`)") from None
    except Exception as err:  # refused, timed out, DNS, TLS, a server error: the Hub cannot be reached now
        if use_cache and _in_hub_cache(repo_id, repo_type):
            return True
        cached = ("HF_HUB_OFFLINE=1 loads the copy in the Hub cache" if _in_hub_cache(repo_id, repo_type)
                  else "the Hub cache holds no copy of it")
        response = getattr(err, "response", None)
        reason = (f"HTTP {response.status_code} {response.reason_phrase}" if response is not None else
                  f"{type(err).__name__}: {_first_sentence(err)}")
        raise error(f"{what}: the Hub ({constants.ENDPOINT}) cannot be reached ({reason}); {cached}") from None


@contextmanager
def model_loading(option: str, name: str, revision: str | None = None):
    """Load the model or processor named by `option` (`--model_name_or_path`, `--model`) inside this block: a
    local-looking path that is missing is refused before the load, a Hub id is checked with one request
    (`check_hub_repo`; when the Hub cannot be reached and its cache holds the model, the block runs offline), and a
    load that fails for want of the files (offline, a mistyped Hub id, a folder without them) becomes one
    `ModelLoadError` naming the option."""
    check_local_path(name, option)
    offline = check_hub_repo(name, option, "model", revision, use_cache=True)
    try:
        if offline:
            with _hub_offline():
                yield
        else:
            yield
    except InputError:
        raise
    except (OSError, ValueError) as err:  # HFValidationError is a ValueError
        local = os.path.isdir(os.path.expanduser(name))
        if (type(err) is ValueError and not (local and str(err).startswith("Unrecognized"))):
            raise  # the load's own complaint, not transformers' "Unrecognized model/processing class" of a bare folder
        if local:
            where = "the local folder lacks what the load needs"
        else:
            where = ("it is not a local folder, and the Hub has no such repository or cannot be reached (check the "
                     "name; offline, a Hub model must be in the Hub cache)")
        raise ModelLoadError(f"{option} {name!r} could not be loaded: {where} ({type(err).__name__}: "
                             f"{_first_sentence(err)})") from err


@contextmanager
def _hub_offline():
    """huggingface_hub (and transformers, through `is_offline_mode`) read the cache alone inside this block."""
    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


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
