"""Hard-negative caption generation (placeholder until the generation package lands)."""

RULES = ("reshuffle", "swap_nouns", "swap_adjectives", "replace_adjectives", "replace_nouns")
