"""Transplant in memory: give a loaded model the rows of a new tokenizer.

``transplant_model`` is the orchestration between the byte-level correspondence and the
pure init methods: it checks the model's embeddings against both tokenizers, adds the
chat markers the new tokenizer lacks, runs the plan's providers once (:mod:`.provide`),
builds one :class:`InitProblem` per matrix (input, and output when untied: tied stays
tied), runs the method's ``prepare`` once and the method per matrix, then copies the
overlap and repairs non-finite rows (for every method, here only), and installs the new
rows in place (:mod:`.embedding`). It never loads from or writes to disk;
:mod:`tokengraft.transplant.run` does that.

Padded vocabularies: a base model may have more embedding rows than its tokenizer has ids
(Qwen2.5: 151,665 ids, 152,064 rows). The extra rows are never produced by the tokenizer,
so they are ignored. With ``pad_to_multiple_of`` the new matrices get rows up to the next
multiple; those rows are the mean row and are listed in ``generation_config.suppress_tokens``
so generation never samples them.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
from typing import Any

import torch

from tokengraft.transplant import specials, start_token
from tokengraft.transplant.correspondence import Correspondence, build_correspondence
from tokengraft.transplant.diagnostics import Diagnostics, TokenDiagnostics, digit_counts, number_example, summarize
from tokengraft.transplant.embedding import (check_old_vocab, embedding_modules, install, move_positions, output_bias,
                                             pad_rows, padded_size)
from tokengraft.transplant.methods.base import InitProblem, InitResult, Method
from tokengraft.transplant.methods.fallback import fallback_rows
from tokengraft.transplant.options import DEFAULT_METHOD
from tokengraft.transplant.plan import InputPlan, plan_inputs
from tokengraft.transplant.provide import Inputs, provide

logger = logging.getLogger(__name__)


def prepare_new_tokenizer(old_tok: Any, new_tok: Any, copy_tokenizer: bool = True) -> tuple[Any, list[str]]:
    """The new tokenizer (a copy unless ``copy_tokenizer`` is False) with the base's chat markers, its
    template, and its BOS when the base tokenizer prepends one (:mod:`.start_token`)."""
    if copy_tokenizer:  # seconds for a 262k vocabulary: callers that own the tokenizer skip it
        new_tok = copy.deepcopy(new_tok)
    added = specials.add_chat_markers(new_tok, specials.chat_markers(old_tok))
    start_token.adopt_bos(old_tok, new_tok)
    template = getattr(old_tok, "chat_template", None)
    if template:
        if getattr(new_tok, "chat_template", None) not in (None, template):
            logger.info("replacing the new tokenizer's chat template by the base model's (the model knows that one)")
        new_tok.chat_template = template
    return new_tok, added


def build_problem(old: torch.Tensor, which: str, corr: Correspondence, inputs: Inputs, seed: int) -> InitProblem:
    """The problem of one matrix: the old rows, the correspondence, and what the plan provided."""
    n_new = len(corr.new_bytes)
    donor = inputs.donor_input if which == "input" else inputs.donor_output
    return InitProblem(
        # donors load on the CPU (--device may differ); chat markers added after the donor's or the
        # provider's vocabulary get a zero row: the methods' "no vector" (never an OMP atom or a FOCUS anchor)
        old=old, which=which, new_bytes=corr.new_bytes, old_bytes=corr.old_bytes, copied=corr.copied,
        pieces=corr.pieces, aux_new=_rows_for(inputs.aux_new, n_new, old), aux_old=_on(inputs.aux_old, old),
        donor_new=_rows_for(donor, n_new, old), extras=inputs.extras, seed=seed,
    )


def prepare(method: Method, options: Any, problem: InitProblem) -> Any:
    """``method.prepare`` on ``problem`` with its matrix on the meta device: shapes, never values."""
    if method.prepare is None:
        return None
    shape_only = torch.empty(problem.old.shape, dtype=problem.old.dtype, device="meta")
    return method.prepare(dataclasses.replace(problem, old=shape_only), options)


def run_method(method: Method, options: Any, problem: InitProblem, how: list[str] | None = None) -> InitResult:
    """One matrix: call the method, then enforce the contract: shape, no non-finite row, the overlap copied
    (plus the method's ``copied_shift``, where it gives one).

    ``how``: ``Correspondence.how``, the source label of each copied token (None: "copied").
    """
    old, copied = problem.old, problem.copied
    result = method.fn(problem, options)
    rows, source = result.rows, list(result.source)
    expected = (problem.new_size, old.shape[1])
    if tuple(rows.shape) != expected or len(source) != expected[0]:
        # a bug in the method, not a user error
        raise RuntimeError(f"method {method.name} returned {tuple(rows.shape)} rows for {expected}")
    rows = rows.to(old.dtype)
    residual = result.residual if result.residual is not None else torch.full((expected[0],), float("nan"))
    residual = residual.float().cpu().clone()
    hit = copied >= 0
    bad = ~torch.isfinite(rows).all(dim=1) & ~hit.to(rows.device)
    if bad.any():  # the methods promise no NaN; if one breaks it, never ship the NaN
        logger.warning("method %s produced %d non-finite rows; replaced by the mean row", method.name, int(bad.sum()))
        rows[bad] = fallback_rows(old, int(bad.sum()), "mean", problem.generator()).to(rows.dtype)
        residual[bad.cpu()] = float("nan")
        for t in bad.nonzero().flatten().tolist():
            source[t] = "fallback:non-finite"
    rows[hit.to(rows.device)] = old[copied[hit].to(old.device)].to(rows.device)
    if result.copied_shift is not None:
        ids, shift = (t.cpu() for t in result.copied_shift)
        keep = hit.cpu()[ids]  # copied tokens only
        ids, shift = ids[keep].to(rows.device), shift[keep].to(rows.device)
        rows[ids] = (rows[ids].float() + shift.float()).to(rows.dtype)
    residual[hit.cpu()] = float("nan")
    for t in hit.nonzero().flatten().tolist():
        source[t] = how[t] if how is not None else "copied"
    return InitResult(rows, source, residual)


def _on(t: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    return t.to(like.device) if t is not None else None


def _rows_for(t: torch.Tensor | None, n: int, like: torch.Tensor) -> torch.Tensor | None:
    """``t`` on ``like``'s device with zero rows appended up to ``n`` rows."""
    if t is None:
        return None
    t = t.to(like.device)
    return t if t.shape[0] >= n else torch.cat([t, t.new_zeros(n - t.shape[0], t.shape[1])])


def _token_texts(corr: Correspondence, new_tok: Any, rows: int) -> list[str]:
    """Readable exact form of each new token: its bytes (invalid UTF-8 as ``\\xNN``) or a special's content."""
    specials = {i: str(t.content) for i, t in new_tok.added_tokens_decoder.items()}
    texts = [b.decode("utf-8", errors="backslashreplace") if b is not None else specials.get(t, "")
             for t, b in enumerate(corr.new_bytes)]
    return texts + ["<padding>"] * (rows - len(texts))


def transplant_model(
    model: Any,
    old_tok: Any,
    new_tok: Any,
    method: str | Method = DEFAULT_METHOD,
    *,
    method_options: dict[str, Any] | None = None,
    inputs: Inputs | None = None,
    plan: InputPlan | None = None,
    seed: int = 0,
    pad_to_multiple_of: int | None = None,
    kind: str = "causal",
    copy_tokenizer: bool = True,
) -> tuple[Any, Any, Diagnostics]:
    """Give ``model`` (changed in place) the vocabulary of ``new_tok``; return it, the new tokenizer, diagnostics.

    ``inputs`` carries the donor matrices, or the corpus/embedder from which auxiliary vectors
    are computed (see :mod:`tokengraft.transplant.provide`); ``plan`` (from
    :func:`~tokengraft.transplant.plan.plan_transplant`) replaces ``method`` and ``method_options``,
    else they are planned here from what ``inputs`` gives. ``new_tok`` is copied, never changed
    (``copy_tokenizer=False``: changed in place and returned, for callers that own it).

    >>> # model, tok, diag = transplant_model(model, old_tok, new_tok, "fvt")
    >>> # model.get_input_embeddings().weight.shape == (len(tok), hidden)
    """
    inputs = inputs or Inputs()
    plan = plan or plan_inputs(method, inputs.given(), method_options, kind)
    spec, opts = plan.method, plan.options
    emb, head, tied = embedding_modules(model, kind)
    n_old = check_old_vocab(old_tok, emb.weight.shape[0])
    new_tok, added = prepare_new_tokenizer(old_tok, new_tok, copy_tokenizer)
    corr = build_correspondence(old_tok, new_tok, old_size=n_old)
    for marker in added:
        t = new_tok.convert_tokens_to_ids(marker)
        if corr.copied[t] >= 0:
            corr.how[t] = "added-special"
    start_token.link_start(corr, old_tok, new_tok)
    untie = tied and head is not None and spec.unties
    inputs = provide(plan, inputs, corr, old_tok, new_tok, model)

    n_new = len(corr.new_bytes)
    size = padded_size(n_new, pad_to_multiple_of)
    with torch.no_grad():
        problem = build_problem(emb.weight[:n_old].detach().float(), "input", corr, inputs, seed)
        shared = prepare(spec, opts, problem)  # once, for every matrix
        problem.shared = shared
        res_in = run_method(spec, opts, problem, corr.how)
        res_out = None
        if head is not None and (not tied or untie):
            problem = build_problem(head.weight[:n_old].detach().float(), "output", corr, inputs, seed)
            problem.shared = shared
            res_out = run_method(spec, opts, problem, corr.how)
        del problem
        bias = getattr(head, "bias", None) if head is not None else None
        new_bias = pad_rows(output_bias(bias.detach()[:n_old], corr)[:, None], size)[:, 0] if bias is not None else None
        dtype, device = emb.weight.dtype, emb.weight.device
        rows_in = pad_rows(res_in.rows, size).to(dtype=dtype, device=device)
        rows_out = pad_rows(res_out.rows, size).to(dtype=dtype, device=device) if res_out is not None else None
        install(model, emb, head, tied and not untie, rows_in, rows_out, new_bias, new_tok.pad_token_id)
        move_positions(model, new_tok.pad_token_id)
    if untie:
        logger.info("method %s gives output rows of their own: the model's embeddings are now untied", spec.name)
        model.config.tie_word_embeddings = False
        model.config.get_text_config().tie_word_embeddings = False
    config_ids = specials.update_special_ids(model, new_tok, corr.old_to_new_specials())
    if size > n_new and getattr(model, "generation_config", None) is not None:
        model.generation_config.suppress_tokens = list(range(n_new, size))

    return model, new_tok, _diagnose(spec.name, corr, res_in, res_out, size, old_tok, new_tok, added, config_ids)


def _diagnose(method: str, corr: Correspondence, res_in: InitResult, res_out: InitResult | None, size: int,
              old_tok: Any, new_tok: Any, added: list[str], config_ids: dict[str, Any]) -> Diagnostics:
    n_new, n_old = len(corr.new_bytes), len(corr.old_bytes)
    pad = ["padding"] * (size - n_new)
    tokens = TokenDiagnostics(
        source=res_in.source + pad,
        pieces=[len(p) for p in corr.pieces] + [0] * (size - n_new),
        residual=torch.cat([res_in.residual, torch.full((size - n_new,), float("nan"))]),
        source_output=(res_out.source + pad) if res_out is not None else None,
    )
    summary = summarize(
        tokens, old_vocab=n_old, new_vocab=n_new, method=method, added_markers=added,
        missing_roles=corr.missing_roles, digits=digit_counts(corr.new_bytes, corr.old_bytes, corr.pieces),
        example=number_example(old_tok, new_tok), inexact=len(corr.inexact),
    )
    return Diagnostics(summary, tokens, _token_texts(corr, new_tok, size), config_ids)
