"""``tokengraft export``: flags map one-to-one onto :class:`tokengraft.export.ExportOptions`."""
from __future__ import annotations

import argparse
from typing import Any

EPILOG = """examples:
  tokengraft export --model out/smollm2-fr --gguf out/smollm2-fr.gguf
  tokengraft export --model out/smollm2-fr --gguf out/smollm2-fr-q8.gguf --dtype q8_0
  llama-cli -m out/smollm2-fr.gguf -p "Pour insérer un tableau"      # llama.cpp
  ollama create smollm2-fr -f Modelfile   # Modelfile: FROM ./out/smollm2-fr.gguf

Supported architectures: llama, mistral, qwen2, qwen3, gemma2, gemma3 (text), phi3, gpt2; the
tokenizer (byte-level BPE, or SentencePiece-style BPE with byte fallback) travels in the file.
"""


def register(subparsers: Any) -> None:
    from tokengraft.cli.flags import add_option_flags
    from tokengraft.export.gguf import DTYPES, ExportOptions

    p = subparsers.add_parser(
        "export", help="write a model folder as a GGUF file for llama.cpp and Ollama",
        description="Write a (transplanted) model and its tokenizer as one GGUF file.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_option_flags(p, ExportOptions, required=("model", "gguf"), choices={"dtype": DTYPES},
                     metavars={"model": "DIR", "gguf": "OUT.gguf", "name": "TEXT"})
    p.set_defaults(func=run)


def options_from_args(args: argparse.Namespace) -> Any:
    from tokengraft.cli.flags import options_from_args as build
    from tokengraft.export.gguf import ExportOptions

    return build(args, ExportOptions)


def run(args: argparse.Namespace) -> int:
    from tokengraft.export import export_gguf

    out = export_gguf(options_from_args(args))
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MB)")
    return 0
