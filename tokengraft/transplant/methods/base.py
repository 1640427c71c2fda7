"""The contract every initialisation method follows, and the registry that lists them.

A method is a pure function on tensors: it gets an :class:`InitProblem` (the old matrix,
the byte-level correspondence, optional auxiliary vectors) and its own options dataclass,
and returns an :class:`InitResult`. It never loads a model, reads a file or prints.
Input and output matrices are separate problems: the orchestrator calls a method once per
untied matrix (once for tied models, unless the method ``unties`` them).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch


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
    extras: dict[str, Any] = field(default_factory=dict)  # method-specific tensors computed by providers
    seed: int = 0

    @property
    def new_size(self) -> int:
        return len(self.new_bytes)

    def generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed)


@dataclass
class InitResult:
    rows: torch.Tensor                 # (V_new, d) the complete new matrix, copied rows included
    source: list[str]                  # (V_new) "copied" | "<method>" | "fallback:<reason>"
    residual: torch.Tensor | None = None  # (V_new,) reconstruction residual where the method has one, NaN elsewhere


@dataclass(frozen=True)
class Method:
    name: str
    fn: Callable[[InitProblem, Any], InitResult]
    options: type                      # the method's options dataclass (defaults from METHODS.md)
    needs: tuple[str, ...] = ()        # subset of {"aux", "donor", "corpus", "model"}: what the orchestrator must provide
    summary: str = ""
    unties: bool = False               # output rows differ from input rows: a tied model comes out untied


METHODS: dict[str, Method] = {}


def register(name: str, options: type, needs: tuple[str, ...] = (), summary: str = "", unties: bool = False):
    """Decorator: ``@register("fvt", FVTOptions)`` adds a method to :data:`METHODS`."""

    def wrap(fn: Callable[[InitProblem, Any], InitResult]):
        METHODS[name] = Method(name, fn, options, needs, summary or (fn.__doc__ or "").strip().split("\n")[0], unties)
        return fn

    return wrap
