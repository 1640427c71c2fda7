"""Train a target tokenizer and save it as a folder ``AutoTokenizer`` loads.

Orchestration only: the algorithms live in ``hf_train`` (BPE, Unigram via HF
``tokenizers``), ``superbpe`` (stage 2) and ``conventions`` (what the base lends).

>>> tok = train_tokenizer(["hello world"] * 50, TrainOptions(vocab_size=300, show_progress=False))
>>> tok.decode(tok("hello world")["input_ids"])
'hello world'
"""
from __future__ import annotations

import json
import logging
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from transformers import PreTrainedTokenizerFast

from tokengraft.errors import TokengraftError
from tokengraft.tokenizer.conventions import Conventions, conventions_from_base, default_conventions
from tokengraft.tokenizer.hf_train import finalize, reserved_size, train_bpe, train_unigram
from tokengraft.tokenizer.options import TrainOptions
from tokengraft.tokenizer.superbpe import Progress
from tokengraft.tokenizer.superbpe_train import train_superbpe

logger = logging.getLogger(__name__)


def read_tokenizer(spec: str, what: str = "base tokenizer") -> Any:
    """A tokenizer from ``tokengraft.assets.load_tokenizer`` (built-in name, folder, file),
    or a one-line error naming the spec."""
    from tokengraft.assets import load_tokenizer

    try:
        return load_tokenizer(spec)
    except TokengraftError:
        raise
    except Exception as exc:  # any reader failure is the user's spec, not our bug
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise TokengraftError(f"cannot read {what} {spec!r} ({reason}); pass a built-in tokenizer name "
                              "or a folder with tokenizer.json") from exc


def resolve_conventions(options: TrainOptions, base_tokenizer: Any = None) -> Conventions:
    if base_tokenizer is None and options.base is None:
        return default_conventions()
    if base_tokenizer is None:
        base_tokenizer = read_tokenizer(options.base)  # type: ignore[arg-type]
    return conventions_from_base(base_tokenizer, options.base or "base", options.keep_unused_specials)


def check_options(texts: Sequence[str], options: TrainOptions, conv: Conventions) -> None:
    """Refuse impossible requests before spending minutes on them."""
    options.validate()
    if not any(t.strip() for t in texts):
        raise TokengraftError("the training corpus is empty or only whitespace (no text); check the --corpus specs")
    floor = reserved_size(conv)
    if options.vocab_size < floor:
        raise TokengraftError(f"vocab size {options.vocab_size} is smaller than the 256-byte alphabet plus "
                              f"{len(conv.specials)} special tokens ({floor}); pass --vocab-size {floor} or more")
    if options.kind == "superbpe":
        t = options.transition_size()
        if not floor <= t < options.vocab_size:
            raise TokengraftError(f"transition {t} must be at least {floor} and below the vocab size "
                                  f"{options.vocab_size}; pass --transition between them")
        if options.max_words < 1:
            raise TokengraftError(f"max words per token must be at least 1, got {options.max_words}")


def sample_texts(texts: Sequence[str], max_bytes: int | None, seed: int) -> list[str]:
    """Non-empty documents; with ``max_bytes``, a seeded random sample of about that size."""
    docs = [t for t in texts if t]
    if max_bytes is None:
        return docs
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    out, total = [], 0
    for i in order:
        if total >= max_bytes:
            break
        out.append(docs[i])
        total += len(docs[i].encode("utf-8"))
    return out


def train_tokenizer(texts: Sequence[str], options: TrainOptions | None = None, *, base_tokenizer: Any = None,
                    progress: Progress | None = None) -> PreTrainedTokenizerFast:
    """Train a tokenizer on ``texts`` (documents); returns a fast tokenizer with the
    base's specials, roles, conventions and chat template (see ``TrainOptions``)."""
    options = options or TrainOptions()
    options.validate()
    conv = resolve_conventions(options, base_tokenizer)
    texts = sample_texts(texts, options.max_bytes, options.seed)
    check_options(texts, options, conv)
    logger.info("training %s, vocab %d, on %d documents (%.1f MB)", options.kind, options.vocab_size, len(texts),
             sum(len(t.encode("utf-8")) for t in texts) / 1e6)
    if options.kind == "bpe":
        data = train_bpe(texts, conv, options.vocab_size, options.min_frequency, options.show_progress)
    elif options.kind == "unigram":
        data = train_unigram(texts, conv, options.vocab_size, options.show_progress)
    else:
        data, _ = train_superbpe(texts, conv, options, progress)
    if progress is not None:
        progress("trained", options.vocab_size, options.vocab_size)
    tokenizer = wrap(finalize(data, conv), conv)
    if len(tokenizer) < options.vocab_size:
        logger.warning("the corpus supports only %d of the %d tokens asked for (%s)", len(tokenizer),
                       options.vocab_size, shortfall_reason(options))
    return tokenizer


def shortfall_reason(options: TrainOptions) -> str:
    """Why a trainer stopped short of ``options.vocab_size``, in the words of its algorithm."""
    if options.kind == "unigram":
        return ("HF's Unigram trainer keeps no more pieces than its seed substrings and pruning leave on this "
                "text; give it more text or ask for fewer tokens")
    return (f"no pair left seen {options.min_frequency}+ times; give it more text, lower --min-frequency or ask "
            "for fewer tokens")


def wrap(tokenizer: Any, conv: Conventions) -> PreTrainedTokenizerFast:
    """A transformers fast tokenizer around a ``tokenizers.Tokenizer`` with the base's roles."""
    kwargs: dict[str, Any] = {f"{role}_token": content for role, content in conv.roles.items()}
    if conv.model_max_length is not None:
        kwargs["model_max_length"] = conv.model_max_length
    extra = [s for s in conv.specials if s not in conv.roles.values()]
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, clean_up_tokenization_spaces=False,
                                   additional_special_tokens=extra, **kwargs)
    if conv.chat_template:
        fast.chat_template = conv.chat_template
    return fast


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, out: str | Path, overwrite: bool = False,
                   metadata: dict | None = None) -> Path:
    """Write the tokenizer folder whole or not at all (temporary sibling, then rename), after
    loading it back from the temporary folder and checking it against ``tokenizer``."""
    from tokengraft.assets.outputs import output_dir
    from tokengraft.assets.tokenizer_checks import verify_saved_tokenizer

    out = Path(out)
    with output_dir(out, overwrite=overwrite) as tmp:
        tokenizer.save_pretrained(str(tmp))
        roles = {f"{r}_token": getattr(tokenizer, f"{r}_token") for r in ("bos", "eos", "pad", "unk", "mask")
                 if getattr(tokenizer, f"{r}_token", None) is not None}
        specials = [t.content for t in tokenizer.backend_tokenizer.get_added_tokens_decoder().values() if t.special]
        roles["additional_special_tokens"] = [s for s in specials if s not in roles.values()]
        (tmp / "special_tokens_map.json").write_text(json.dumps(roles, indent=2, ensure_ascii=False) + "\n")
        if metadata is not None:
            (tmp / "tokengraft_train.json").write_text(json.dumps(metadata, indent=2, ensure_ascii=False) + "\n")
        verify_saved_tokenizer(tmp, tokenizer)
    logger.info("saved tokenizer to %s", out)
    return out


def check_output(out: str | Path, overwrite: bool) -> None:
    """Refuse an output folder that exists or cannot be written, before minutes of loading and training."""
    from tokengraft.assets.outputs import check_output_dir

    check_output_dir(out, overwrite=overwrite)


def train_to_folder(texts: Sequence[str], options: TrainOptions, out: str | Path, overwrite: bool = False, *,
                    corpus_names: Sequence[str] = (), base_tokenizer: Any = None,
                    progress: Progress | None = None) -> Path:
    """Train and save; an existing ``out`` is refused before any training starts."""
    check_output(out, overwrite)
    tokenizer = train_tokenizer(texts, options, base_tokenizer=base_tokenizer, progress=progress)
    meta = {"options": asdict(options), "corpora": list(corpus_names), "vocab_size": len(tokenizer)}
    return save_tokenizer(tokenizer, out, overwrite, meta)
