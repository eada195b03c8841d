"""Score any CLIP checkpoint on the DeGLA paper's benchmarks and write results.json / results.md / run_info.json.

Usage:

```
python scripts/evaluate_clip.py --model_name_or_path openai/clip-vit-base-patch32 \
    --tasks sugarcrepe,aro,valse,zeroshot,linear_probe,retrieval \
    --sugarcrepe_dir sugar-crepe/data --coco_val2017_dir /data/coco/val2017 \
    --valse_dir VALSE/data --valse_visual7w_dir /data/visual7w/images --valse_swig_dir /data/swig/images \
    --valse_visdial_dir /data/visdial/images --valse_coco2014_dir /data/coco/val2014 \
    --aro_dir /data/aro --coco_karpathy_test_json /data/coco/coco_karpathy_test.json --coco_image_root /data/coco \
    --flickr30k_test_json /data/flickr30k/flickr30k_test.json --flickr30k_image_root /data/flickr30k/flickr30k-images \
    --zeroshot_datasets all --zeroshot_sources cifar10=/data/cifar10_folder \
    --output_dir eval/clip-vit-b32
```

Evaluation runs in one process (encoding is batched; use a GPU with `--device cuda`). Through accelerate, on one
machine: `accelerate launch --num_processes 1 scripts/evaluate_clip.py ...`. Every option is listed by `--help`;
docs/evaluation.md describes the data layout of each.
"""

from degla import demo
from degla.cli import main
from degla.eval.run import EVALUATION

if __name__ == "__main__":
    main(EVALUATION.with_default(demo.EVALUATION))
