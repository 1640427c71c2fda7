"""Auxiliary providers, registered by provider name: the names a method's ``Needs`` lists.

A provider computes what a method reads besides the old matrix: an auxiliary space
(``AuxVectors.new``/``old`` -> ``problem.aux_new``/``aux_old``) or results by name
(``AuxVectors.extras`` -> ``problem.extras``). Providers may load models and read text;
the methods stay pure tensor functions. Each provider declares what it reads, so that
:func:`tokengraft.transplant.plan.plan_inputs` knows, before anything is loaded, which
inputs a transplant needs: a corpus (none, optional or required, and how much of it), an
embedder (``--aux``), the base model. A new provider is one decorated function::

    @provider("hypernet", options=HypernetOptions, summary="rows predicted by a trained hypernetwork")
    def hypernet_aux(request: AuxRequest, options: HypernetOptions) -> AuxVectors: ...
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.auxiliary.bilingual import BilingualOptions
from tokengraft.transplant.auxiliary.static import StaticOptions
from tokengraft.transplant.auxiliary.strings import StringEmbedOptions

CORPUS_USES = ("none", "optional", "required")


@dataclass
class AuxRequest:
    old_bytes: list[bytes | None]               # (V_old) exact bytes of each old token
    new_bytes: list[bytes | None]               # (V_new) exact bytes of each new token
    old_tokenizer: Any = None                   # needed by bilingual and continuation
    new_tokenizer: Any = None                   # needed by static and bilingual
    target_texts: Sequence[str] | None = None   # the corpus: target-language text, cut to what the plan reads
    target_corpus: Any = None                   # the same corpus as a Corpus (document ids: align parallel pages)
    source_texts: Sequence[str] | None = None   # source-language text (bilingual); None = its default corpus
    embedder: str | None = None                 # --aux: sentence embedder (strings); None = its default
    source_language: str = "en"                 # ISO 639-1, picks the bilingual dictionary
    target_language: str | None = None          # ISO 639-1 of the corpus; None = no dictionary
    pieces: list[list[int]] | None = None       # (V_new) old pieces of each new token (continuation)
    copied: torch.Tensor | None = None          # (V_new,) old id of copied tokens, -1 otherwise (continuation)
    model: Any = None                           # the base model (continuation)
    # settings of the auxiliary spaces (library callers and tests; users keep the defaults)
    static: StaticOptions = field(default_factory=StaticOptions)
    strings: StringEmbedOptions = field(default_factory=StringEmbedOptions)
    bilingual: BilingualOptions = field(default_factory=BilingualOptions)
    cache: str | None = None                    # folder for cached vectors; None = cache_dir("aux"); "" = off


@dataclass
class AuxVectors:
    new: torch.Tensor | None                    # -> InitProblem.aux_new
    old: torch.Tensor | None                    # -> InitProblem.aux_old
    extras: dict[str, Any] = field(default_factory=dict)  # -> InitProblem.extras


@dataclass(frozen=True)
class Provider:
    name: str
    fn: Callable[[AuxRequest, Any], AuxVectors]
    summary: str = ""
    options: type | None = None     # its options dataclass: --method-option keys it has (and the method lacks)
    corpus: str = "none"            # "none" | "optional" | "required": reads target-language text
    corpus_bytes: Callable[[Any], int | None] | None = None  # how much of the corpus, given its options (None: all)
    embedder: bool = False          # reads --aux as its embedder (with a default when none is given)
    model: bool = False             # runs the base causal LM (not run for encoders, which have no output rows)


PROVIDERS: dict[str, Provider] = {}


def provider(name: str, *, summary: str = "", options: type | None = None, corpus: str = "none",
             corpus_bytes: Callable[[Any], int | None] | None = None, embedder: bool = False, model: bool = False):
    """Decorator: register ``fn(request, options) -> AuxVectors`` as provider ``name``; a taken name is an error."""
    if corpus not in CORPUS_USES:
        raise ValueError(f"provider {name}: corpus must be one of {CORPUS_USES}, got {corpus!r}")

    def wrap(fn: Callable[[AuxRequest, Any], AuxVectors]):
        if name in PROVIDERS:
            raise TokengraftError(f"provider name {name!r} is registered twice; rename one")
        PROVIDERS[name] = Provider(name, fn, summary or (fn.__doc__ or "").strip().split("\n")[0], options,
                                   corpus, corpus_bytes, embedder, model)
        return fn

    return wrap


def get_provider(name: str) -> Provider:
    """The provider called ``name`` (importing the package ``auxiliary`` registers the built-in ones)."""
    if name not in PROVIDERS:
        raise TokengraftError(f"no auxiliary provider named {name!r}; known: {', '.join(sorted(PROVIDERS))}")
    return PROVIDERS[name]


def provide_aux(name: str, request: AuxRequest, options: Any = None) -> AuxVectors:
    """Run provider ``name`` on ``request`` (``options``: its options dataclass; None = its defaults)."""
    spec = get_provider(name)
    if options is None and spec.options is not None:
        options = spec.options()
    return spec.fn(request, options)


def need(value: Any, provider_name: str, what: str) -> Any:
    """``value``, or a one-line error naming what the provider lacks."""
    if value is None:
        raise TokengraftError(f"auxiliary provider {provider_name} needs {what}; pass it"
                              " (e.g. --corpus libreoffice:fr:train)")
    return value
