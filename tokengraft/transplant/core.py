"""Transplant in memory: give a loaded model the rows of a new tokenizer.

``transplant_model`` is the orchestration between the byte-level correspondence and the
pure init methods: it checks the model's embeddings against both tokenizers, adds the
chat markers the new tokenizer lacks, builds one :class:`InitProblem` per matrix (input,
and output when untied: tied stays tied), runs the method, and installs the new rows in
place (embedding modules keep their class, e.g. Gemma's scaled embedding). It never
loads from or writes to disk; :mod:`tokengraft.transplant.run` does that.

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

from tokengraft.errors import TokengraftError
from tokengraft.transplant import specials
from tokengraft.transplant.correspondence import Correspondence, build_correspondence
from tokengraft.transplant.diagnostics import Diagnostics, TokenDiagnostics, digit_counts, number_example, summarize
from tokengraft.transplant.inputs import Inputs, provide
from tokengraft.transplant.methods.base import InitProblem, InitResult, Method
from tokengraft.transplant.options import DEFAULT_METHOD

logger = logging.getLogger(__name__)


def get_method(name: str) -> Method:
    """The registered method called ``name``; an unknown name lists the known ones."""
    import tokengraft.transplant.methods  # noqa: F401  importing the package registers every method
    from tokengraft.transplant.methods.base import METHODS

    if name not in METHODS:
        raise TokengraftError(f"unknown method {name!r}; choose one of: {', '.join(sorted(METHODS))}")
    return METHODS[name]


def build_method_options(method: Method, overrides: dict[str, Any] | None) -> Any:
    """The method's options dataclass with ``overrides`` applied (unknown keys are an error)."""
    overrides = dict(overrides or {})
    names = {f.name for f in dataclasses.fields(method.options)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TokengraftError(f"method {method.name} has no option {', '.join(unknown)}; "
                              f"its options are: {', '.join(sorted(names)) or '(none)'}")
    return method.options(**overrides)


def embedding_modules(model: Any, kind: str = "causal") -> tuple[torch.nn.Module, torch.nn.Module | None, bool]:
    """(input embedding, output embedding or None, tied) after checking the architecture."""
    config = model.config
    if any(getattr(config, name, None) is not None for name in ("vision_config", "audio_config", "text_config")):
        raise TokengraftError(f"{type(model).__name__} is a multi-module model (text_config/vision_config);"
                              " transplant only its language model (load it as a text-only causal LM)")
    try:
        emb = model.get_input_embeddings()
    except (NotImplementedError, AttributeError):
        emb = None
    if emb is None or getattr(emb, "weight", None) is None or emb.weight.dim() != 2:
        raise TokengraftError(f"{type(model).__name__} has no input embedding matrix (get_input_embeddings);"
                              " only models with token embeddings can be transplanted")
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None and kind == "causal":
        raise TokengraftError(f"{type(model).__name__} has no output embedding (lm_head);"
                              " load a causal LM, or pass kind='encoder' to transplant input embeddings only")
    if head is not None and (getattr(head, "weight", None) is None or head.weight.shape != emb.weight.shape):
        raise TokengraftError(f"{type(model).__name__}'s output embedding is not a (vocab, hidden) matrix"
                              f" like its input embedding {tuple(emb.weight.shape)}; this architecture is not supported")
    tied = head is not None and head.weight.data_ptr() == emb.weight.data_ptr()
    return emb, head, tied


def check_old_vocab(old_tok: Any, rows: int) -> int:
    """Number of old ids that have rows; the base tokenizer must fit in the embedding."""
    from tokengraft.vocab import byte_vocab

    n_old = max(len(old_tok), len(byte_vocab(old_tok)))  # the byte view counts holes in the id range
    if n_old > rows:
        raise TokengraftError(f"the base tokenizer has {n_old} ids but the model's embedding only {rows} rows;"
                              " pass the model's own tokenizer (or a model whose embedding covers it)")
    if n_old < rows:
        logger.info("base embedding has %d rows beyond its tokenizer's %d ids (padded vocabulary); ignoring them",
                    rows - n_old, n_old)
    return n_old


def prepare_new_tokenizer(old_tok: Any, new_tok: Any, copy_tokenizer: bool = True) -> tuple[Any, list[str]]:
    """The new tokenizer (a copy unless ``copy_tokenizer`` is False) with the base's chat markers and template."""
    if copy_tokenizer:  # seconds for a 262k vocabulary: callers that own the tokenizer skip it
        new_tok = copy.deepcopy(new_tok)
    added = specials.add_chat_markers(new_tok, specials.chat_markers(old_tok))
    template = getattr(old_tok, "chat_template", None)
    if template:
        if getattr(new_tok, "chat_template", None) not in (None, template):
            logger.info("replacing the new tokenizer's chat template by the base model's (the model knows that one)")
        new_tok.chat_template = template
    return new_tok, added


def run_method(method: Method, options: Any, old: torch.Tensor, which: str, corr: Correspondence,
               inputs: Inputs, seed: int) -> InitResult:
    """One matrix: build the problem, call the method, enforce the contract (copies, finite, shape)."""
    donor = inputs.donor_input if which == "input" else inputs.donor_output
    donor = donor.to(old.device) if donor is not None else None  # donors load on the CPU; --device may differ
    if donor is not None and donor.shape[0] < len(corr.new_bytes):
        # chat markers added after the donor's vocabulary: their rows are copied anyway; a zero
        # row is the methods' "no vector" (never an OMP atom, never a FOCUS anchor)
        donor = torch.cat([donor, donor.new_zeros(len(corr.new_bytes) - donor.shape[0], donor.shape[1])])
    aux_new = inputs.aux_new
    if aux_new is not None and aux_new.shape[0] < len(corr.new_bytes):  # added chat markers: "no vector"
        aux_new = torch.cat([aux_new, aux_new.new_zeros(len(corr.new_bytes) - aux_new.shape[0], aux_new.shape[1])])
    problem = InitProblem(
        old=old, which=which, new_bytes=corr.new_bytes, old_bytes=corr.old_bytes, copied=corr.copied,
        pieces=corr.pieces, aux_new=_on(aux_new, old), aux_old=_on(inputs.aux_old, old), donor_new=donor,
        extras=inputs.extras, seed=seed,
    )
    result = method.fn(problem, options)
    rows, source = result.rows, list(result.source)
    expected = (len(corr.new_bytes), old.shape[1])
    if tuple(rows.shape) != expected or len(source) != expected[0]:
        # a bug in the method, not a user error
        raise RuntimeError(f"method {method.name} returned {tuple(rows.shape)} rows for {expected}")
    rows = rows.to(old.dtype)
    bad = ~torch.isfinite(rows).all(dim=1)
    if bad.any():  # the methods promise no NaN; if one breaks it, never ship the NaN
        logger.warning("method %s produced %d non-finite rows; replaced by the mean row", method.name, int(bad.sum()))
        rows[bad] = old.mean(dim=0)
        for t in bad.nonzero().flatten().tolist():
            source[t] = "fallback:non-finite"
    hit = corr.copied >= 0
    rows[hit] = old[corr.copied[hit]]
    for t in hit.nonzero().flatten().tolist():
        source[t] = "copied" if corr.how[t] == "copied" else corr.how[t]
    residual = result.residual if result.residual is not None else torch.full((expected[0],), float("nan"))
    return InitResult(rows, source, residual.float().cpu())


def _on(t: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    return t.to(like.device) if t is not None else None


def output_bias(bias: torch.Tensor, corr: Correspondence) -> torch.Tensor:
    """(V_new,) bias: copied where the token is copied, else the mean of its pieces' biases, else the mean."""
    n = len(corr.new_bytes)
    lengths = torch.tensor([len(p) for p in corr.pieces], dtype=torch.long)
    flat = torch.tensor([i for p in corr.pieces for i in p], dtype=torch.long, device=bias.device)
    owner = torch.repeat_interleave(torch.arange(n), lengths).to(bias.device)
    sums = torch.zeros(n, dtype=torch.float32, device=bias.device).index_add_(0, owner, bias[flat].float())
    out = torch.where(lengths.to(bias.device) > 0, sums / lengths.clamp(min=1).to(bias.device), bias.float().mean())
    hit = corr.copied >= 0
    out[hit.to(bias.device)] = bias[corr.copied[hit].to(bias.device)].float()
    return out.to(bias.dtype)


def padded_size(n: int, multiple: int | None) -> int:
    if multiple is None:
        return n
    if multiple < 1:
        raise TokengraftError(f"--pad-to-multiple-of must be a positive integer, got {multiple}")
    return -(-n // multiple) * multiple


def pad_rows(rows: torch.Tensor, total: int) -> torch.Tensor:
    if total == rows.shape[0]:
        return rows
    return torch.cat([rows, rows.mean(dim=0, keepdim=True).expand(total - rows.shape[0], -1)])


def install(model: Any, emb: torch.nn.Module, head: torch.nn.Module | None, tied: bool,
            rows_in: torch.Tensor, rows_out: torch.Tensor | None, bias: torch.Tensor | None, pad_id: int | None) -> None:
    """Replace the weights in place (module classes, and so e.g. embedding scaling, are kept)."""
    size = rows_in.shape[0]
    grad = emb.weight.requires_grad
    emb.weight = torch.nn.Parameter(rows_in.contiguous(), requires_grad=grad)
    emb.num_embeddings = size
    if getattr(emb, "padding_idx", None) is not None:
        emb.padding_idx = pad_id if pad_id is not None and pad_id < size else None
    if head is not None:
        head.weight = emb.weight if tied else torch.nn.Parameter(rows_out.contiguous(), requires_grad=grad)
        if bias is not None:
            head.bias = torch.nn.Parameter(bias.contiguous(), requires_grad=grad)
        if hasattr(head, "out_features"):
            head.out_features = size
    model.config.get_text_config().vocab_size = size
    if hasattr(model, "vocab_size"):
        model.vocab_size = size


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
    method: str = DEFAULT_METHOD,
    *,
    method_options: dict[str, Any] | None = None,
    inputs: Inputs | None = None,
    seed: int = 0,
    pad_to_multiple_of: int | None = None,
    kind: str = "causal",
    copy_tokenizer: bool = True,
) -> tuple[Any, Any, Diagnostics]:
    """Give ``model`` (changed in place) the vocabulary of ``new_tok``; return it, the new tokenizer, diagnostics.

    ``inputs`` carries the donor matrices, or the corpus/embedder from which auxiliary vectors
    are computed (see :mod:`tokengraft.transplant.inputs`); ``new_tok`` is copied, never changed
    (``copy_tokenizer=False``: changed in place and returned, for callers that own it).

    >>> # model, tok, diag = transplant_model(model, old_tok, new_tok, "fvt")
    >>> # model.get_input_embeddings().weight.shape == (len(tok), hidden)
    """
    spec = get_method(method)
    opts = build_method_options(spec, method_options)
    inputs = inputs or Inputs()
    emb, head, tied = embedding_modules(model, kind)
    n_old = check_old_vocab(old_tok, emb.weight.shape[0])
    new_tok, added = prepare_new_tokenizer(old_tok, new_tok, copy_tokenizer)
    corr = build_correspondence(old_tok, new_tok, old_size=n_old)
    for marker in added:
        t = new_tok.convert_tokens_to_ids(marker)
        if corr.copied[t] >= 0:
            corr.how[t] = "added-special"
    untie = tied and head is not None and spec.unties
    # an encoder has no output rows, so nothing that only serves them (continuations) is measured
    inputs = provide(spec, inputs, corr, old_tok, new_tok, model if kind != "encoder" else None, opts)

    n_new = len(corr.new_bytes)
    size = padded_size(n_new, pad_to_multiple_of)
    with torch.no_grad():
        compute = emb.weight[:n_old].detach()
        res_in = run_method(spec, opts, compute.float(), "input", corr, inputs, seed)
        res_out = None
        if head is not None and (not tied or untie):
            res_out = run_method(spec, opts, head.weight[:n_old].detach().float(), "output", corr, inputs, seed)
        bias = getattr(head, "bias", None) if head is not None else None
        new_bias = pad_rows(output_bias(bias.detach()[:n_old], corr)[:, None], size)[:, 0] if bias is not None else None
        dtype, device = emb.weight.dtype, emb.weight.device
        rows_in = pad_rows(res_in.rows, size).to(dtype=dtype, device=device)
        rows_out = pad_rows(res_out.rows, size).to(dtype=dtype, device=device) if res_out is not None else None
        del compute
        install(model, emb, head, tied and not untie, rows_in, rows_out, new_bias, new_tok.pad_token_id)
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
