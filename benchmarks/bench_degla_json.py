"""Loading the authors' DeGLA.json: records/s and peak memory, on a generated file of the release's shape.

    python benchmarks/bench_degla_json.py                 # 200k records (the release has ~414k captions·5)
    python benchmarks/bench_degla_json.py --records 2000000 --output_json results/benchmarks/degla_json_2m.json

Writes a JSON array of `{"image_id", "original", "enhanced": [5 negatives]}` records built from real COCO
captions (the NegCLIP excerpt shipped with the tests) with words shuffled, then, each in a fresh process:
1. imports only (the floor of every Python process here),
2. the first load (streaming parse + conversion into the Arrow cache),
3. a second load (memory-mapped from the cache).
Prints records/s and peak RSS of each, and the peak RSS relative to the file's size.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CAPTIONS = os.path.join(HERE, "..", "tests", "fixtures", "negclip", "valid_neg_clip_excerpt.tsv")

CHILD = """
import json, resource, sys, time
start = time.perf_counter()
{imports}
loaded = time.perf_counter()
{work}
end = time.perf_counter()
print(json.dumps({{"seconds": end - loaded, "import_seconds": loaded - start,
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rows": rows}}))
"""


def write_file(path: str, n_records: int, seed: int = 0) -> None:
    with open(CAPTIONS, encoding="utf-8") as f:
        captions = [row["title"].strip() for row in csv.DictReader(f, delimiter="\t")]
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        f.write("[\n")
        for i in range(n_records):
            caption = rng.choice(captions)
            words = caption.split()
            negatives = []
            for _ in range(5):
                shuffled = words[:]
                rng.shuffle(shuffled)
                negatives.append(" ".join(shuffled))
            record = {"image_id": rng.randrange(1, 600_000), "original": caption, "enhanced": negatives}
            f.write(("  " if i == 0 else ",\n  ") + json.dumps(record))
        f.write("\n]\n")


def run_child(imports: str, work: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD.format(imports=imports, work=work)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--output_json", default=None, help="Also write the figures to this JSON file.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path, cache = os.path.join(tmp, "DeGLA.json"), os.path.join(tmp, "cache")
        start = time.perf_counter()
        write_file(path, args.records)
        size_mb = os.path.getsize(path) / 2**20
        print(f"generated {args.records:,} records, {size_mb:.1f} MB, in {time.perf_counter() - start:.1f} s")
        imports = "from degla.training.formats import read_degla_json"
        load = f"rows = len(read_degla_json({path!r}, cache_dir={cache!r}))"
        floor = run_child(imports, "rows = 0")
        first = run_child(imports, load)
        second = run_child(imports, load)
        plain = run_child(imports, f"rows = len(json.load(open({path!r})))")
        print(f"{'':28s} {'seconds':>8s} {'records/s':>10s} {'peak RSS MB':>12s} {'RSS - floor':>12s}")
        print(f"{'imports only':28s} {floor['import_seconds']:8.2f} {'':>10s} {floor['peak_rss_mb']:12.0f}")
        for name, result in (("first load (parse + cache)", first), ("second load (memory-mapped)", second),
                             ("for reference: json.load", plain)):
            rate = result["rows"] / result["seconds"]
            print(f"{name:28s} {result['seconds']:8.2f} {rate:10,.0f} {result['peak_rss_mb']:12.0f} "
                  f"{result['peak_rss_mb'] - floor['peak_rss_mb']:12.0f}")
        print(f"first load, peak RSS above the import floor: {first['peak_rss_mb'] - floor['peak_rss_mb']:.0f} MB = "
              f"{(first['peak_rss_mb'] - floor['peak_rss_mb']) / size_mb:.2f}x the file's size ({size_mb:.0f} MB); "
              f"json.load: {(plain['peak_rss_mb'] - floor['peak_rss_mb']) / size_mb:.2f}x")
        if args.output_json:
            from degla.atomic_io import write_json_atomic

            write_json_atomic(args.output_json, {"records": args.records, "file_mb": size_mb, "imports_only": floor,
                                                 "first_load": first, "second_load": second, "json_load": plain})


if __name__ == "__main__":
    main()
