"""Export: a model folder as a GGUF file for llama.cpp and Ollama (``tokengraft export``)."""
from __future__ import annotations

from tokengraft.export.gguf import DTYPES, ExportOptions, export_gguf, write_gguf

__all__ = ["DTYPES", "ExportOptions", "export_gguf", "write_gguf"]
