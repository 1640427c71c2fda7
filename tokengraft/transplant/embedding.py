"""The embedding matrices of a model: find them, check them, replace them in place.

Input embedding and output head (``lm_head``) as modules, whether they are tied, the old
tokenizer checked against the rows, the new rows installed (module classes kept, e.g.
Gemma's scaled embedding), padding rows, the output bias, and a donor's rows on the new
vocabulary. No method and no loading here: :mod:`~tokengraft.transplant.core` calls these.
"""
from __future__ import annotations

import logging
from typing import Any

import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.correspondence import Correspondence, vocabulary_difference

logger = logging.getLogger(__name__)


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


def position_module(model: Any) -> torch.nn.Module | None:
    """The embeddings module whose position ids count from the pad id (RoBERTa, XLM-R, CamemBERT:
    token k of a text sits at position ``pad_id + 1 + k``), or None."""
    for module in model.modules():
        if (hasattr(module, "create_position_ids_from_input_ids") and isinstance(getattr(module, "padding_idx", None), int)
                and isinstance(getattr(module, "position_embeddings", None), torch.nn.Embedding)):
            return module
    return None


def move_positions(model: Any, new_pad: int | None) -> int:
    """Keep every text's positions when the pad id moves (RoBERTa family): row ``j`` of the new
    position matrix is old row ``j - (new_pad - old_pad)``, so position ``new_pad + 1 + k`` holds
    what ``old_pad + 1 + k`` held. A pad id that moves up adds rows (the model keeps its length).
    Returns how far the pad id moved (0: nothing to do or no such module)."""
    module = position_module(model)
    if module is None:
        return 0
    old_pad = module.padding_idx
    if new_pad is None:
        raise TokengraftError(f"{type(model).__name__} counts positions from the pad token, and the new tokenizer has"
                              " none; give it a pad token (e.g. <pad>)")
    shift = new_pad - old_pad
    if shift == 0:
        return 0
    table = module.position_embeddings
    rows = table.weight.shape[0] + max(shift, 0)
    index = (torch.arange(rows, device=table.weight.device) - shift).clamp(0, table.weight.shape[0] - 1)
    with torch.no_grad():
        table.weight = torch.nn.Parameter(table.weight[index].clone(), requires_grad=table.weight.requires_grad)
    table.num_embeddings, table.padding_idx, module.padding_idx = rows, new_pad, new_pad
    for name in ("position_ids", "token_type_ids"):  # buffers sized by max_position_embeddings
        buffer = getattr(module, name, None)
        if isinstance(buffer, torch.Tensor) and buffer.shape[-1] < rows:
            fill = torch.arange(rows) if name == "position_ids" else torch.zeros(rows, dtype=buffer.dtype)
            setattr(module, name, fill.to(buffer.device).expand(1, -1))
    config = model.config.get_text_config()
    config.max_position_embeddings = max(int(getattr(config, "max_position_embeddings", 0) or 0), rows)
    logger.info("pad id moved from %d to %d: position rows shifted to keep every position", old_pad, new_pad)
    return shift


def donor_matrices(donor: Any, donor_tok: Any, new_tok: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(V_new, e) input and output rows of a donor whose vocabulary must be the new tokenizer's."""
    diff = vocabulary_difference(donor_tok, new_tok)
    if diff is not None:
        raise TokengraftError(f"donor {name}'s vocabulary is not the new tokenizer's ({diff});"
                              " pass a donor that uses exactly the new tokenizer")
    emb, head, tied = embedding_modules(donor, kind="encoder")
    n = len(new_tok)
    if emb.weight.shape[0] < n:
        raise TokengraftError(f"donor {name} has {emb.weight.shape[0]} embedding rows for {n} tokens;"
                              " it cannot be a donor")
    rows_in = emb.weight[:n].detach().float().cpu().clone()
    rows_out = rows_in if head is None or tied else head.weight[:n].detach().float().cpu().clone()
    return rows_in, rows_out
