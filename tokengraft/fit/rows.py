"""Small operations on a model's embedding matrices that the fit needs."""
from __future__ import annotations

import logging
from typing import Any

import torch

logger = logging.getLogger(__name__)


def untie(model: Any) -> bool:
    """Give a tied model an output matrix of its own (a copy of the input one); True if it was tied.

    Fitted output rows differ from input rows, so the fit unties (as ``graft`` does): the model
    grows by ``V x d`` parameters and its config says ``tie_word_embeddings = False``.
    """
    head = model.get_output_embeddings()
    emb = model.get_input_embeddings()
    if head is None or head.weight is not emb.weight:
        return False
    head.weight = torch.nn.Parameter(emb.weight.detach().clone(), requires_grad=emb.weight.requires_grad)
    model.config.tie_word_embeddings = False
    text = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    text.tie_word_embeddings = False
    if hasattr(model, "_tied_weights_keys"):
        model._tied_weights_keys = []
    logger.info("untied the input and output embeddings: the fit gives output rows of their own")
    return True
