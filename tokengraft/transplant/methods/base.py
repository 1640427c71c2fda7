"""The contract every initialisation method follows, and the registry that lists them.

A method is a pure function on tensors: it gets an :class:`InitProblem` (the old matrix,
the byte-level correspondence, optional auxiliary vectors) and its own options dataclass,
and returns an :class:`InitResult`. It never loads a model, reads a file or prints.
Input and output matrices are separate problems: the orchestrator calls a method once per
untied matrix (once for tied models, unless the method ``unties`` them).

What the orchestrator owns, so that no method has to: the rows of copied tokens (the old
rows, bit for bit, plus the method's ``copied_shift`` where it returns one) and the repair of
non-finite rows. A method may leave copied rows as anything finite. What a method reads beyond the matrix is declared in :class:`Needs` and
computed once, before the method runs (:mod:`tokengraft.transplant.plan`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from tokengraft.errors import TokengraftError

DONOR = "donor"  # in Needs.space: the rows of a model that already uses the new tokenizer (--donor)


@dataclass(frozen=True)
class Needs:
    """What a method reads besides the old matrix and the correspondence.

    ``space``: where the vectors of the new vocabulary come from. ``"donor"`` is a model that
    already uses the new tokenizer (``problem.donor_new``); any other name is an auxiliary
    provider (``tokengraft.transplant.auxiliary.PROVIDERS``: ``problem.aux_new``/``aux_old``).
    One name is used as it is; with several the user picks one by its flag (``--donor`` for
    ``"donor"``, ``--aux`` for a provider that reads an embedder).
    ``extras``: providers whose results the method reads from ``problem.extras[name]``.
    Which corpus a provider reads, and how much of it, the provider declares.

    >>> Needs(space=("donor", "strings")).describe()
    'donor|strings'
    """
    space: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = ["|".join(self.space)] if self.space else []
        return "+".join(parts + list(self.extras)) or "-"


@dataclass
class InitProblem:
    old: torch.Tensor                  # (V_old, d) the base model's matrix being transplanted
    which: str                         # "input" | "output"
    new_bytes: list[bytes | None]      # (V_new) exact bytes of each new token; None = special / no bytes
    old_bytes: list[bytes | None]      # (V_old) exact bytes of each old token
    copied: torch.Tensor               # (V_new,) long: old id for tokens copied exactly, -1 otherwise
    pieces: list[list[int]]            # (V_new) old-tokenizer ids whose bytes concatenate to new_bytes[t]
    aux_new: torch.Tensor | None = None   # (V_new, a) auxiliary vectors of new tokens (FOCUS, TokenAdapt, WECHSEL)
    aux_old: torch.Tensor | None = None   # (V_old, a) auxiliary vectors of old tokens in the same space
    donor_new: torch.Tensor | None = None  # (V_new, e) a donor model's matrix on the new vocabulary (OMP)
    extras: dict[str, Any] = field(default_factory=dict)  # results of the providers in Needs.extras, by name
    seed: int = 0
    shared: Any = None                 # what Method.prepare returned: computed once for every matrix

    @property
    def new_size(self) -> int:
        return len(self.new_bytes)

    def generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed)


@dataclass
class InitResult:
    rows: torch.Tensor                 # (V_new, d) the new matrix (copied rows: anything finite)
    source: list[str]                  # (V_new) "<method>" | "fallback:<reason>" (copies: set by the orchestrator)
    residual: torch.Tensor | None = None  # (V_new,) reconstruction residual where the method has one, NaN elsewhere
    copied_shift: tuple[torch.Tensor, torch.Tensor] | None = None  # (ids (k,), rows (k, d)): added to those copied
                                          # tokens' rows after the copy (graft: old output rows recalibrated)


@dataclass(frozen=True)
class Method:
    name: str
    fn: Callable[[InitProblem, Any], InitResult]
    options: type                      # the method's options dataclass (defaults from the method's paper)
    needs: Needs = Needs()
    summary: str = ""
    unties: bool = False               # output rows differ from input rows: a tied model comes out untied
    # Work that does not depend on the matrix (weights of a combination of old rows), done once
    # by the orchestrator for all matrices and handed to ``fn`` as ``problem.shared``. It gets
    # the input problem with ``old`` on the meta device: shapes only, no values.
    prepare: Callable[[InitProblem, Any], Any] | None = None


METHODS: dict[str, Method] = {}


def register(name: str, options: type, needs: Needs = Needs(), summary: str = "", unties: bool = False,
             prepare: Callable[[InitProblem, Any], Any] | None = None):
    """Decorator: ``@register("fvt", FVTOptions)`` adds a method to :data:`METHODS`; a taken name is an error."""
    if not isinstance(needs, Needs):
        raise TypeError(f"method {name}: needs must be a Needs(...), got {needs!r}")

    def wrap(fn: Callable[[InitProblem, Any], InitResult]):
        if name in METHODS:
            raise TokengraftError(f"method name {name!r} is registered twice ({METHODS[name].fn.__module__} and"
                                  f" {fn.__module__}); rename one")
        summary_line = summary or (fn.__doc__ or "").strip().split("\n")[0]
        METHODS[name] = Method(name, fn, options, needs, summary_line, unties, prepare)
        return fn

    return wrap
