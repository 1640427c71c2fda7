"""vocab-strings: graft's auxiliary space embeds only the old strings the new vocabulary uses."""
from __future__ import annotations

import hashlib

import pytest
import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.auxiliary import AuxRequest, provide_aux
from tokengraft.transplant.auxiliary.vocab_strings import VocabStringsOptions

OLD = [b" the", b" fich", b"ier", b"zz", None, b" Datei", b"\xe4\xb8\xad", b"s"]
NEW = [b" the", b" fichier", b"Datei", b" fichiers", b"\xc3", None, b"neu"]
PIECES = [[0], [1, 2], [5], [1, 2, 7], [], [], []]
COPIED = torch.tensor([0, -1, -1, -1, -1, -1, -1])


def fake_vector(text: str) -> torch.Tensor:
    seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
    return torch.nn.functional.normalize(torch.randn(6, generator=torch.Generator().manual_seed(seed)), dim=0)


@pytest.fixture
def embedded(monkeypatch):
    """A fake embedder: each string's vector from its hash; records what was embedded."""
    calls: list[list[str]] = []

    def fake(spec, strings, options=None, loader=None):
        calls.append(list(strings))
        return torch.stack([fake_vector(s) if s else torch.zeros(6) for s in strings]) if strings else torch.zeros(0, 6)

    monkeypatch.setattr("tokengraft.transplant.auxiliary.strings.string_embeddings", fake)
    return calls


def request() -> AuxRequest:
    return AuxRequest(old_bytes=OLD, new_bytes=NEW, pieces=PIECES, copied=COPIED, cache="")


def test_only_pieces_copied_tokens_and_equal_strings_are_embedded(embedded):
    aux = provide_aux("vocab-strings", request())
    # pool: pieces 1, 2, 7; copied 0; " Datei" (5) equals new "Datei" after stripping; not zz, the special, 中
    assert embedded[0] == ["the", "fich", "ier", "Datei", "s"]
    assert embedded[1] == ["fichier", "fichiers", "neu"]  # only strings the pool lacks
    assert aux.extras["old_strings"] == 5
    has = aux.old.abs().sum(1) > 0
    assert has.tolist() == [True, True, True, False, False, True, False, True]
    torch.testing.assert_close(aux.new[2], fake_vector("Datei"))  # reused from the old side
    assert aux.new[4].abs().sum() == 0 and aux.new[5].abs().sum() == 0  # not text: no vector


def test_all_old_strings_give_the_strings_providers_space(embedded):
    full = provide_aux("vocab-strings", request(), VocabStringsOptions(old_strings="all"))
    plain = provide_aux("strings", request())
    assert torch.equal(full.new, plain.new) and torch.equal(full.old, plain.old)
    pooled = provide_aux("vocab-strings", request())
    has = pooled.old.abs().sum(1) > 0
    assert torch.equal(pooled.old[has], plain.old[has]) and torch.equal(pooled.new, plain.new)
    with pytest.raises(TokengraftError, match="old_strings must be one of vocab, all"):
        provide_aux("vocab-strings", request(), VocabStringsOptions(old_strings="some"))
