"""benchmarks/heal_variants.py: the dev-only heal variants do what their names say."""
import importlib.util
from pathlib import Path

import pytest
import torch

spec = importlib.util.spec_from_file_location("heal_variants", Path(__file__).parent.parent / "benchmarks" / "heal_variants.py")
hv = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hv)


class _Vocab:
    """A tokenizer that decodes ids from a list of token strings."""

    def __init__(self, vocab):
        self.vocab = vocab

    def __len__(self):
        return len(self.vocab)

    def decode(self, ids):
        return "".join(self.vocab[i] for i in ids)


_OLD = _Vocab([" License", " ab", "x", " Linux", " 42", " Lizenz"])


class _New:
    """One token for " Lizenz", else one per character."""

    def encode(self, text, add_special_tokens=False):
        return [0] if text == " Lizenz" else [0] * len(text.lstrip())


def test_spelled_words_keep_words_the_new_tokenizer_splits_in_id_order():
    assert hv.spelled_words(_OLD, _New(), 10) == [" License", " Linux"]
    assert hv.spelled_words(_OLD, _New(), 1) == [" License"]


def test_parse_rejects_unknown_variants_and_bad_values():
    assert hv.parse("emb-lr=6e-3") == ("emb-lr", "6e-3")
    for bad in ("tied=output", "spell=x", "lr=1", "cont-weight=2"):
        with pytest.raises(SystemExit) as exit_:
            hv.parse(bad)
        assert exit_.value.code == 2


def test_tied_both_moves_input_and_output_rows_by_one_mean_gradient(monkeypatch):
    from tokengraft.heal import sparse_rows as sr

    monkeypatch.setattr(sr.SparseRows, "mask", sr.SparseRows.mask)  # undone after the test
    hv.patch_tied("both")
    emb, head = torch.nn.Parameter(torch.zeros(5, 2)), torch.nn.Parameter(torch.ones(5, 2))
    emb.grad, head.grad = torch.full((5, 2), 2.0), torch.full((5, 2), 4.0)
    rows = sr.SparseRows(emb, head, negatives=0)
    rows.mask(torch.tensor([[0, 1, 3]]))                     # reads 0, 1; predicts 1, 3
    used = torch.tensor([True, True, False, True, False])
    for p in (emb, head):
        assert torch.equal(p.grad[used], torch.full((3, 2), 3.0))
        assert torch.equal(p.grad[~used], torch.zeros(2, 2))

