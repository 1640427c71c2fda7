"""One input plan: a method's ``Needs`` resolved, once, against what the user gave.

Before anything is loaded, :func:`plan_inputs` decides which vectors of the new vocabulary
a method gets (a donor's rows, or an auxiliary provider's space), which providers run,
whether a corpus is read and how much of it, and which options go to the method and which
to a provider. Missing inputs are one-line errors; inputs that nothing reads are warnings.
``tokengraft transplant``, the quickstart and the benchmark all go through it
(:func:`plan_transplant` for a :class:`TransplantOptions`); ``transplant_model`` plans from
the :class:`~tokengraft.transplant.provide.Inputs` it is given.

>>> plan = plan_inputs("omp", Given(aux=True))
>>> plan.space, plan.providers, plan.corpus
('strings', ('strings',), 'none')
"""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokengraft.errors import TokengraftError
from tokengraft.transplant.auxiliary import Provider, get_provider
from tokengraft.transplant.methods.base import DONOR, Method
from tokengraft.transplant.options import TransplantOptions

logger = logging.getLogger(__name__)

GIVEN_VECTORS = "given"  # InputPlan.space when the caller computed the auxiliary space itself
_CORPUS_ORDER = {"none": 0, "optional": 1, "required": 2}


@dataclass(frozen=True)
class Given:
    """What the caller gives: flags of ``tokengraft transplant`` or tensors of ``Inputs``."""
    donor: bool = False           # a donor model (--donor) or its rows
    aux: bool = False             # an embedder (--aux)
    corpus: bool = False          # target-language text (--corpus)
    default_corpus: bool = False  # a corpus to use when a provider reads one and none is given
    vectors: bool = False         # the auxiliary space, already computed (Inputs.aux_new)


@dataclass(frozen=True)
class InputPlan:
    method: Method
    options: Any                          # the method's options dataclass, overrides applied
    space: str | None                     # DONOR, a provider name, GIVEN_VECTORS, or None
    providers: tuple[str, ...]            # providers to run, in order (the space's first)
    provider_options: dict[str, Any]      # options of each planned provider that has an options dataclass
    corpus: str                           # "none" | "optional" | "required": what the providers read
    corpus_bytes: int | None              # at most this much of the corpus (None: all of it)
    corpus_spec: str | None = None        # the corpus to load (plan_transplant); None: none or in memory

    @property
    def reads_corpus(self) -> bool:
        return self.corpus != "none"


def get_method(name: str | Method) -> Method:
    """The registered method called ``name`` (a :class:`Method` is returned as it is)."""
    import tokengraft.transplant.methods  # noqa: F401  importing the package registers every method
    from tokengraft.transplant.methods.base import METHODS

    if isinstance(name, Method):
        return name
    if name not in METHODS:
        raise TokengraftError(f"unknown method {name!r}; choose one of: {', '.join(sorted(METHODS))}")
    return METHODS[name]


def plan_inputs(method: str | Method, given: Given, method_options: dict[str, Any] | None = None,
                kind: str = "causal") -> InputPlan:
    """Resolve ``method``'s needs against ``given`` (see the module docstring)."""
    method = get_method(method)
    space = _choose_space(method, given)
    names = ([space] if space not in (None, DONOR, GIVEN_VECTORS) else []) + list(method.needs.extras)
    providers = [get_provider(n) for n in names]
    if kind == "encoder":  # no output rows: nothing that runs the causal LM for them
        providers = [p for p in providers if not p.model]
    options, provider_options = _split_options(method, providers, method_options)
    corpus = max((p.corpus for p in providers), key=_CORPUS_ORDER.__getitem__, default="none")
    if corpus == "required" and not (given.corpus or given.default_corpus):
        raise TokengraftError(f"method {method.name} needs --corpus CORPUS (target-language text,"
                              " e.g. libreoffice:fr:train)")
    _warn_unused(method, given, space, providers, corpus)
    return InputPlan(method, options, space, tuple(p.name for p in providers), provider_options, corpus,
                     _corpus_bytes(providers, provider_options))


def plan_transplant(options: TransplantOptions, method: Method | None = None) -> InputPlan:
    """The plan of a ``tokengraft transplant`` run; the corpus defaults to the tokenizer's training corpus."""
    method = method or get_method(options.method)
    default = training_corpus(options.tokenizer) if options.corpus is None else None
    given = Given(donor=options.donor is not None, aux=options.aux is not None, corpus=options.corpus is not None,
                  default_corpus=default is not None)
    plan = plan_inputs(method, given, _with_hypernet(method, options), options.kind)
    if not plan.reads_corpus:
        return plan
    if options.corpus is None:
        logger.info("method %s reads target-language text from the tokenizer's training corpus %s", method.name, default)
    return dataclasses.replace(plan, corpus_spec=options.corpus or default)


def _with_hypernet(method: Method, options: TransplantOptions) -> dict[str, Any]:
    """The method options with ``--hypernet DIR`` as the hypernet provider's ``path``."""
    overrides = dict(options.method_options)
    if options.hypernet is not None:
        if "hypernet" in method.needs.extras:
            overrides.setdefault("hypernet.path", options.hypernet)
        else:
            logger.warning("method %s uses no hypernetwork; ignoring --hypernet", method.name)
    return overrides


def training_corpus(tokenizer_spec: str) -> str | None:
    """The first corpus a tokengraft-trained tokenizer folder was trained on (``tokengraft_train.json``)."""
    record = Path(str(tokenizer_spec)) / "tokengraft_train.json"
    try:
        corpora = json.loads(record.read_text(encoding="utf-8")).get("corpora") or []
    except (OSError, ValueError, AttributeError):
        return None
    return str(corpora[0]) if corpora else None


def _choose_space(method: Method, given: Given) -> str | None:
    """One alternative is used as it is; among several the user's --donor or --aux picks."""
    space = method.needs.space
    if not space:
        return None
    if DONOR in space and given.donor:
        return DONOR
    if given.vectors and space != (DONOR,):
        return GIVEN_VECTORS
    if len(space) == 1 and space[0] != DONOR:
        return space[0]
    if given.aux:
        for name in space:
            if name != DONOR and get_provider(name).embedder:
                return name
    flags = ["--donor SPEC (a model that already uses the new tokenizer)" if n == DONOR
             else "--aux SPEC (an embedder, e.g. minilm-l6)" for n in space if n == DONOR or get_provider(n).embedder]
    raise TokengraftError(f"method {method.name} needs {' or '.join(flags)}")


def _split_options(method: Method, providers: list[Provider],
                   overrides: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
    """Each --method-option KEY to the method's options if it has KEY, else to the one planned
    provider that has it (``provider.KEY`` names the provider); anything else is an error."""
    mine: dict[str, Any] = {}
    theirs: dict[str, dict[str, Any]] = {p.name: {} for p in providers if p.options is not None}
    known = {p.name: {f.name for f in dataclasses.fields(p.options)} for p in providers if p.options is not None}
    method_keys = {f.name for f in dataclasses.fields(method.options)}
    for key, value in (overrides or {}).items():
        owner, dot, field_name = key.partition(".")
        if dot and field_name in known.get(owner, ()):
            theirs[owner][field_name] = value
        elif key in method_keys:
            mine[key] = value
        elif owners := [name for name, fields in known.items() if key in fields]:
            if len(owners) > 1:
                raise TokengraftError(f"option {key} belongs to providers {', '.join(owners)}; write PROVIDER.{key}")
            theirs[owners[0]][key] = value
        else:
            every = sorted(method_keys | {f"{n}.{f}" for n, fields in known.items() for f in fields})
            raise TokengraftError(f"method {method.name} has no option {key}; its options are: "
                                  f"{', '.join(every) or '(none)'}")
    provider_options = {p.name: p.options(**theirs[p.name]) for p in providers if p.options is not None}
    return method.options(**mine), provider_options


def _corpus_bytes(providers: list[Provider], provider_options: dict[str, Any]) -> int | None:
    """The most any corpus-reading provider reads (None: one reads it all)."""
    sizes = [None if p.corpus_bytes is None else p.corpus_bytes(provider_options.get(p.name))
             for p in providers if p.corpus != "none"]
    return None if not sizes or None in sizes else max(sizes)  # type: ignore[type-var]


def _warn_unused(method: Method, given: Given, space: str | None, providers: list[Provider], corpus: str) -> None:
    if given.donor and space != DONOR:
        logger.warning("method %s does not use a donor here; ignoring --donor", method.name)
    if given.aux and not any(p.embedder for p in providers):
        logger.warning("method %s uses no auxiliary embedder; ignoring --aux", method.name)
    if given.corpus and corpus == "none":
        logger.warning("method %s reads no corpus; ignoring --corpus", method.name)
