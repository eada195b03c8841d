"""The shapes world: a procedural compositional world, its tokenizer, benchmarks and fine-tuning data."""
