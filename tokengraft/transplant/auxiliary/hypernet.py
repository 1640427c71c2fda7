"""Provider ``hypernet``: a trained hypernetwork (``--hypernet DIR``) and the base rows it reads.

It loads the folder, refuses a hypernetwork trained for another base model, and hands
:class:`~tokengraft.transplant.methods.hypernet.HypernetInputs` to the method in
``extras["hypernet"]``. The folder comes from its option ``path``, which
``tokengraft transplant --hypernet DIR`` sets (``--method-option path=DIR`` works too).
"""
from __future__ import annotations

from dataclasses import dataclass

from tokengraft.errors import TokengraftError
from tokengraft.transplant.auxiliary.registry import AuxRequest, AuxVectors, need, provider


@dataclass
class HypernetSource:
    path: str | None = None         # folder of a trained hypernetwork (tokengraft hypernet train)


@provider("hypernet", options=HypernetSource, summary="a trained hypernetwork and the base rows it reads (--hypernet)")
def hypernet_aux(request: AuxRequest, options: HypernetSource) -> AuxVectors:
    """``extras["hypernet"]``: the loaded network (checked against the base) and the base's rows."""
    from tokengraft.hypernet.store import load_hypernet
    from tokengraft.transplant.embedding import embedding_modules
    from tokengraft.transplant.methods.hypernet import HypernetInputs

    if options is None or not options.path:
        raise TokengraftError("method hypernet needs a trained hypernetwork: pass --hypernet DIR "
                              "(make one with: tokengraft hypernet train --model SPEC --corpus CORPUS --out DIR)")
    model = need(request.model, "hypernet", "the base model")
    emb, head, tied = embedding_modules(model, kind="encoder")
    n_old = len(request.old_bytes)
    old_in = emb.weight[:n_old].detach().float()
    old_out = old_in if head is None or tied else head.weight[:n_old].detach().float()
    loaded = load_hypernet(options.path, device=old_in.device)
    loaded.check(old_in)
    if loaded.net.config.untied != (old_out is not old_in):
        raise TokengraftError(f"hypernetwork {options.path} was trained for a {'un' if loaded.net.config.untied else ''}"
                              "tied base; this model's embeddings are not; train one for it")
    return AuxVectors(new=None, old=None, extras={"hypernet": HypernetInputs(loaded, old_in, old_out)})
