"""Pretrain the shapes world's base CLIP from scratch (plain CLIP loss); see degla/world/pretrain.py.

    python scripts/pretrain_world_clip.py                                   # into runs/world_clip
    python scripts/pretrain_world_clip.py --output_dir degla/world/base_model --overwrite_output_dir  # the shipped one
"""

from degla import demo
from degla.cli import main
from degla.world.pretrain import PRETRAINING

if __name__ == "__main__":
    main(PRETRAINING.with_default(demo.PRETRAINING))
