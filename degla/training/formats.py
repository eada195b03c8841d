"""Reading training negatives as they are released, into the negatives schema (`degla.schema`).

Three formats, detected from the file (and named in the log) or given with `--train_format`:

| format | what | read as |
|---|---|---|
| `degla_dataset` | our schema: `generate_negatives.py` output, a `save_to_disk` folder, parquet files, a Hub dataset id | as is |
| `negclip_tsv` | NegCLIP's training TSV (`title`, `filepath`, `neg_caption` = a Python list literal) | `caption`, `image_path`, `negative_pool` |
| `degla_json` | the authors' `DeGLA.json`: a JSON array of `{"image_id", "original", "enhanced": [...]}` | `caption`, `image_id`, `image_path` (`COCO_train2014_%012d.jpg`), `slot_negatives` |

`DeGLA.json` (~2M records) is parsed once, streaming (memory: a read buffer and one batch of records), into an
Arrow file cached under `~/.cache/degla/datasets/degla_json-<sha256 of the file>/` (`DEGLA_CACHE` moves it);
later runs memory-map that file. Hub files (`hf://datasets/<org>/<name>/DeGLA.json`) are downloaded by
`huggingface_hub` into its own cache first.
"""  # noqa: E501

from __future__ import annotations

import ast
import hashlib
import json
import logging
import os
import shutil
import tempfile

import pyarrow as pa
from datasets import Dataset, load_dataset, load_from_disk
from datasets.data_files import EmptyDatasetError

from ..atomic_io import degla_cache_dir
from ..errors import InputError
from ..hub import check_local_path, download_hub_file, parse_hub_file
from ..schema import CAPTION, IMAGE_ID, IMAGE_PATH, NEGATIVE_POOL, SLOT_NEGATIVES, check_negatives_dataset

logger = logging.getLogger(__name__)

TRAIN_FORMATS = ("degla_dataset", "negclip_tsv", "degla_json")
NEGCLIP_COLUMNS = ("title", "filepath", "neg_caption")
DEGLA_JSON_FIELDS = ("image_id", "original", "enhanced")
COCO_TRAIN_IMAGE = "COCO_train2014_{:012d}.jpg"
DEFAULT_CACHE_DIR = degla_cache_dir("datasets")


class TrainDataError(InputError):
    """A training file that cannot be read as it is: the message names the file, the record and the field."""


# -- where the file is, and what it is ------------------------------------------------------------------------
def resolve_source(source: str) -> str:
    """A local path for `hf://` files (downloaded and cached by the Hub client); other sources unchanged.

    A local-looking path that does not exist is an error naming it, never a Hub lookup.
    """
    hub_file = parse_hub_file(source)
    if hub_file is not None:
        return download_hub_file(hub_file)
    check_local_path(source, "--train_file")
    return os.path.expanduser(source)


def _first_json_value_start(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        head = f.read(4096).lstrip("\ufeff \t\r\n")
    return head[:1]


def detect_format(path: str) -> str:
    """The format of a resolved `--train_file`, from its extension and its first bytes (never a silent guess)."""
    if os.path.isdir(path) or not os.path.exists(path):
        return "degla_dataset"
    extension = os.path.splitext(path)[1].lower()
    if extension in (".tsv", ".csv"):
        return "negclip_tsv"
    if extension == ".json":
        if _first_json_value_start(path) == "[":
            return "degla_json"
        raise TrainDataError(
            f"{path}: a JSON file that is not the authors' DeGLA.json (a JSON array of records with fields "
            f"{', '.join(DEGLA_JSON_FIELDS)}). A COCO captions file is an input of scripts/generate_negatives.py "
            "--captions, not training data.")
    if extension in (".parquet", ".arrow", ".jsonl"):
        return "degla_dataset"
    raise TrainDataError(f"{path}: unknown training file type {extension!r}; expected a negatives dataset folder "
                         "or parquet files (fields caption, image/image_path, neg_<rule>), NegCLIP's .tsv "
                         f"({', '.join(NEGCLIP_COLUMNS)}) or the authors' DeGLA.json ({', '.join(DEGLA_JSON_FIELDS)})")


# -- NegCLIP's TSV ----------------------------------------------------------------------------------------------
def read_negclip_tsv(path: str) -> Dataset:
    """NegCLIP's training TSV (`title`, `filepath`, `neg_caption` = a Python list literal) as our schema."""
    import pandas as pd

    frame = pd.read_csv(path, sep="\t" if path.endswith(".tsv") else ",", dtype=str, keep_default_na=False)
    missing = set(NEGCLIP_COLUMNS) - set(frame.columns)
    if missing:
        raise TrainDataError(f"{path}: not a NegCLIP TSV, missing columns {sorted(missing)} "
                             f"(expected {', '.join(NEGCLIP_COLUMNS)})")
    negatives = []
    for row, (caption, image_path, text) in enumerate(zip(frame["title"], frame["filepath"], frame["neg_caption"])):
        for name, value in (("title", caption), ("filepath", image_path)):
            if not value.strip():
                raise TrainDataError(f"{path}: row {row}: empty {name!r}; fix or remove the row")
        try:
            value = ast.literal_eval(text) if text.strip() else []
        except (ValueError, SyntaxError) as err:
            raise TrainDataError(f"{path}: row {row}: neg_caption is not a list literal "
                                 f"({err}): {text!r:.80}") from None
        if not isinstance(value, (list, tuple)):
            raise TrainDataError(f"{path}: row {row}: neg_caption must be a list of strings, got {text!r:.80}")
        negatives.append([v for v in value if isinstance(v, str) and v.strip()])
    return Dataset.from_dict({CAPTION: frame["title"].tolist(), IMAGE_PATH: frame["filepath"].tolist(),
                              NEGATIVE_POOL: negatives})


# -- the authors' DeGLA.json -------------------------------------------------------------------------------------
def iter_json_array(path: str, chunk_chars: int = 1 << 22):
    """Yield the elements of a top-level JSON array one by one, holding at most one chunk of text in memory."""
    decoder = json.JSONDecoder()
    with open(path, encoding="utf-8") as f:
        buffer, pos, index, done_reading = "", 0, 0, False

        def fill():
            nonlocal buffer, pos, done_reading
            more = f.read(chunk_chars)
            done_reading = not more
            buffer, pos = buffer[pos:] + more, 0

        def skip_space():
            nonlocal pos
            while True:
                while pos < len(buffer) and buffer[pos] in " \t\r\n\ufeff":
                    pos += 1
                if pos < len(buffer) or done_reading:
                    return
                fill()

        def truncated(what: str):
            return TrainDataError(f"{path}: truncated or malformed JSON after record {index} ({what}); "
                                  "download the file again")

        fill()
        skip_space()
        if buffer[pos:pos + 1] != "[":
            raise TrainDataError(f"{path}: not a JSON array (DeGLA.json is a list of records)")
        pos += 1
        skip_space()
        if buffer[pos:pos + 1] == "]":
            return
        while True:
            while True:
                try:
                    value, end = decoder.raw_decode(buffer, pos)
                    break
                except json.JSONDecodeError:
                    if done_reading:
                        raise truncated("a record does not end") from None
                    fill()
            pos = end
            yield index, value
            index += 1
            skip_space()
            separator = buffer[pos:pos + 1]
            pos += 1
            if separator == "]":
                return
            if separator != ",":
                raise truncated("the array does not end" if not separator else f"unexpected {separator!r}")
            skip_space()


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


DEGLA_JSON_SCHEMA = pa.schema([(CAPTION, pa.string()), (IMAGE_ID, pa.int64()), (IMAGE_PATH, pa.string()),
                               (SLOT_NEGATIVES, pa.list_(pa.string()))])


def _degla_json_record(path: str, index: int, record) -> tuple[str, int, str, list[str]]:
    where = f"{path}: record {index}"
    if not isinstance(record, dict):
        raise TrainDataError(f"{where}: expected an object with fields {', '.join(DEGLA_JSON_FIELDS)}, got "
                             f"{type(record).__name__}")
    missing = [name for name in DEGLA_JSON_FIELDS if name not in record]
    if missing:
        raise TrainDataError(f"{where}: missing field(s) {missing} (a DeGLA.json record has "
                             f"{', '.join(DEGLA_JSON_FIELDS)})")
    caption, image_id, negatives = record["original"], record["image_id"], record["enhanced"]
    if not isinstance(caption, str) or not caption.strip():
        raise TrainDataError(f"{where}: field 'original' must be a non-empty caption, got {caption!r:.80}")
    if isinstance(image_id, bool) or not isinstance(image_id, int) or image_id < 0:
        raise TrainDataError(f"{where}: field 'image_id' must be a COCO image id (integer), got {image_id!r:.40}")
    if not isinstance(negatives, list) or not all(isinstance(n, str) for n in negatives):
        raise TrainDataError(f"{where}: field 'enhanced' must be a list of negative captions, got "
                             f"{negatives!r:.80}")
    return caption, image_id, COCO_TRAIN_IMAGE.format(image_id), negatives


def convert_degla_json(path: str, destination: str, batch_size: int = 10_000) -> int:
    """Stream `DeGLA.json` into one Arrow file (`datasets`' format) at `destination`; returns the record count."""
    count = 0
    with pa.OSFile(destination, "wb") as sink, pa.ipc.new_stream(sink, DEGLA_JSON_SCHEMA) as writer:
        columns = [[], [], [], []]

        def flush():
            writer.write_batch(pa.record_batch([pa.array(c, type=f.type) for c, f in zip(columns, DEGLA_JSON_SCHEMA)],
                                               schema=DEGLA_JSON_SCHEMA))
            for c in columns:
                c.clear()

        for index, record in iter_json_array(path):
            for column, value in zip(columns, _degla_json_record(path, index, record)):
                column.append(value)
            count += 1
            if len(columns[0]) == batch_size:
                flush()
        if columns[0] or count == 0:
            flush()
    return count


def read_degla_json(path: str, cache_dir: str = DEFAULT_CACHE_DIR) -> Dataset:
    """The authors' `DeGLA.json` as a memory-mapped dataset, converted once per file content (sha256)."""
    folder = os.path.join(cache_dir, f"degla_json-{file_sha256(path)[:16]}")
    arrow = os.path.join(folder, "data.arrow")
    if not os.path.exists(arrow):
        os.makedirs(cache_dir, exist_ok=True)
        work = tempfile.mkdtemp(prefix=".degla_json-", dir=cache_dir)
        try:
            count = convert_degla_json(path, os.path.join(work, "data.arrow"))
            with open(os.path.join(work, "source.json"), "w") as f:
                json.dump({"file": os.path.basename(path), "records": count}, f)
            try:
                os.rename(work, folder)  # atomic: a killed conversion leaves no cache entry behind
            except OSError:  # another process finished first
                shutil.rmtree(work, ignore_errors=True)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        logger.info("converted %s into %s (once; later runs memory-map it)", path, folder)
    return Dataset.from_file(arrow)


def _load_with_datasets(path: str, source: str, split: str) -> Dataset:
    """Parquet/arrow/JSON-lines files, a folder of them, or a Hub dataset id, through `datasets`."""
    try:
        if os.path.isfile(path):
            builder = os.path.splitext(path)[1].lstrip(".").replace("jsonl", "json")
            return load_dataset(builder, data_files=path, split="train")
        return load_dataset(path, split=split)
    except EmptyDatasetError:
        raise TrainDataError(f"{source}: no data files (a negatives dataset folder holds parquet files or a "
                             "save_to_disk dataset)") from None
    except ValueError as err:
        if "corresponds to no data" in str(err):
            raise TrainDataError(f"{source}: the dataset has no rows") from None
        raise


# -- any of them ----------------------------------------------------------------------------------------------
def load_negatives_dataset(source: str, train_format: str = "auto", split: str = "train",
                           cache_dir: str = DEFAULT_CACHE_DIR) -> Dataset:
    """Load the negatives from a folder, parquet files, a Hub dataset id, NegCLIP's TSV or the authors' JSON."""
    path = resolve_source(source)
    detected = detect_format(path) if train_format == "auto" else train_format
    if detected not in TRAIN_FORMATS:
        raise ValueError(f"--train_format must be one of auto, {', '.join(TRAIN_FORMATS)}; got {train_format!r}")
    logger.info("--train_file %s: format %s%s", source, detected, " (detected)" if train_format == "auto" else "")
    if detected == "negclip_tsv":
        dataset = read_negclip_tsv(path)
    elif detected == "degla_json":
        dataset = read_degla_json(path, cache_dir)
    elif os.path.isdir(path) and os.path.exists(os.path.join(path, "state.json")):
        with open(os.path.join(path, "state.json")) as f:
            if not json.load(f).get("_data_files"):
                raise TrainDataError(f"{source}: the dataset has no rows")
        dataset = load_from_disk(path)
    else:
        dataset = _load_with_datasets(path, source, split)
    check_negatives_dataset(dataset, source)
    return dataset
