"""Benchmarks distributed as Hub datasets with embedded images (Winoground, BiVLC, SPEC, ...): reading the Hub
dataset itself, or a local copy of it (a `save_to_disk` folder, or the dataset's parquet files), into rows and
image references that are decoded only when encoded."""

from __future__ import annotations

import glob
import os

from ..encoder import DatasetImageRef
from .common import EvalDataError, check_path


def parquet_files(path: str) -> list[str]:
    return sorted(glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True))


def is_saved_dataset(path: str) -> bool:
    return any(os.path.isfile(os.path.join(path, n)) for n in ("dataset_info.json", "state.json", "dataset_dict.json"))


def has_local_copy(path: str) -> bool:
    return is_saved_dataset(path) or bool(parquet_files(path))


def split_of(loaded, source: str, split: str = "test"):
    """A DatasetDict's `split`, or the Dataset itself."""
    import datasets

    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise ValueError(f"{source}: no `{split}` split (splits: {list(loaded)})")
        return loaded[split]
    return loaded


def load_local_copy(path: str, image_columns: tuple[str, ...], split: str = "test"):
    """(dataset, source name) of a `save_to_disk` folder or of parquet files (their image columns decoded as
    images); `None` when the folder holds neither."""
    import datasets

    if is_saved_dataset(path):
        return split_of(datasets.load_from_disk(path), path, split), f"local://{path}"
    files = parquet_files(path)
    if not files:
        return None
    ds = datasets.load_dataset("parquet", data_files=files, split="train")
    for column in image_columns:
        if column in ds.column_names:
            ds = ds.cast_column(column, datasets.Image())
    return ds, f"local://{path}"


def load_hub(hub_id: str, split: str = "test"):
    import datasets

    return datasets.load_dataset(hub_id, split=split), f"hf://{hub_id}/{split}"


def require_columns(ds, columns: tuple[str, ...], source: str, hub_id: str) -> None:
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise ValueError(f"{source}: the dataset lacks column(s) {missing} (has {ds.column_names}; expected the "
                         f"columns of {hub_id}: {list(columns)})")


def image_refs(ds, source: str, column: str) -> list[DatasetImageRef]:
    """One reference per row to the image in `column` (a stable key `<source>/<row>/<column>`)."""
    fingerprint = getattr(ds, "_fingerprint", "") or source
    return [DatasetImageRef(f"{source}/{i}/{column}", dataset=ds, index=i, column=column, fingerprint=fingerprint)
            for i in range(len(ds))]


def check_options(local_dir: str | None, hub_id: str | None, option: str, hub_name: str) -> bool:
    """A task's `check` for its `--<option>_dir` (a local copy) / `--<option>_hub_id` pair: False when neither is
    given; an `EvalDataError` for both, or for a folder that holds no copy."""
    if local_dir and hub_id:
        raise EvalDataError(f"pass one of --{option}_dir and --{option}_hub_id, not both")
    if hub_id:
        return True
    if not check_path(local_dir, f"{option}_dir"):
        return False
    if not has_local_copy(local_dir):
        raise EvalDataError(f"--{option}_dir {local_dir} holds no data of {hub_name}: expected a datasets "
                            "save_to_disk folder or parquet files")
    return True


def load_from_options(local_dir: str | None, hub_id: str | None, option: str, hub_name: str,
                      columns: tuple[str, ...], image_columns: tuple[str, ...]):
    """(dataset, source name) from `--<option>_hub_id` or `--<option>_dir`, with the Hub dataset's `columns`."""
    if hub_id:
        ds, source = load_hub(hub_id)
    else:
        copy = load_local_copy(local_dir, image_columns)
        if copy is None:
            raise EvalDataError(f"--{option}_dir {local_dir} holds no data of {hub_name}: expected a datasets "
                                "save_to_disk folder or parquet files")
        ds, source = copy
    require_columns(ds, columns, source, hub_name)
    return ds, source
