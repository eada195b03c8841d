"""The paper's central claim in miniature: table 7's ablation, figure 5's trade-off and the EMA time constant on
the shapes world, over five seeds, with every comparison decided by the rule written in docs/world.md.

    python scripts/reproduce_miniature.py                                   # ~90 min on 2 cores, into runs/miniature
    python scripts/reproduce_miniature.py --output_dir results/miniature    # update the committed results
    python scripts/reproduce_miniature.py --quick --seeds 0 --only negclip degla   # a smoke run

Prints a line per finished run with its time; an interrupted study started again skips the finished runs.
Writes results.json (every run, the means, the 95 % intervals and the claims), results.md and tradeoff.png.
"""

from degla.cli import main
from degla.world.study import STUDY

if __name__ == "__main__":
    main(STUDY)
