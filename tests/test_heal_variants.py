"""benchmarks/heal_variants.py: the dev-only heal variants do what their names say."""
import importlib.util
from pathlib import Path

import numpy as np
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

    monkeypatch.setattr(sr.SparseRows, "plan", sr.SparseRows.plan)  # undone after the test
    hv.patch_tied("both")
    emb, head = torch.nn.Parameter(torch.zeros(5, 2)), torch.nn.Parameter(torch.ones(5, 2))
    emb.grad, head.grad = torch.full((5, 2), 2.0), torch.full((5, 2), 4.0)
    rows = sr.SparseRows(emb, head, negatives=0)
    rows.mask(torch.tensor([[0, 1, 3]]))                     # reads 0, 1; predicts 1, 3
    used = torch.tensor([True, True, False, True, False])
    for p in (emb, head):
        assert torch.equal(p.grad[used], torch.full((3, 2), 3.0))
        assert torch.equal(p.grad[~used], torch.zeros(2, 2))



TABLE = [b"a", b"b", b"c", b"ab", b"bc", b"abc", None, b"ab"]  # 6: a special, 7: a second "ab"


def _spell(ids):
    return b"".join(TABLE[i] for i in ids)


def test_split_table_lists_every_pair_that_spells_a_token():
    s = hv.Splits.of(TABLE)
    pairs = [[(int(s.left[k]), int(s.right[k])) for k in range(s.start[t], s.start[t + 1])] for t in range(len(TABLE))]
    assert pairs == [[], [], [], [(0, 1)], [(1, 2)], [(0, 4), (3, 2)], [], [(0, 1)]]


def test_splits_keep_the_bytes_at_about_p_and_never_touch_specials():
    s, rng = hv.Splits.of(TABLE), np.random.default_rng(0)
    ids = np.array([5, 6, 3, 2, 7])
    assert s.split(ids, 0.0, rng).tolist() == ids.tolist()
    assert s.split(ids, 1.0, rng).tolist() == [0, 1, 2, 6, 0, 1, 2, 0, 1]
    many = np.random.default_rng(1).choice([0, 3, 4, 5], size=4000)
    out = s.split(many, 0.2, np.random.default_rng(2))
    assert _spell(out) == _spell(many)
    splittable = int((s.count[many] > 0).sum())
    assert 0.17 * splittable < len(out) - len(many) < 0.30 * splittable  # ~0.2 first splits, a few of halves


def test_hidden_pieces_drop_the_first_piece_or_every_piece_of_a_split_token():
    size = np.array([len(t) if t else 0 for t in TABLE])
    canonical, split = np.array([5, 3, 2]), np.array([0, 1, 2, 3, 2])  # "abc" -> a b c; "ab" and "c" whole
    assert hv.hidden_pieces(canonical, split, size, "first").tolist() == [True, False, False, False, False]
    assert hv.hidden_pieces(canonical, split, size, "input").tolist() == [True, True, True, False, False]


def test_parse_knows_the_session_24_variants():
    assert hv.parse("dropout=0.1") == ("dropout", "0.1")
    assert hv.parse("split-first=0.1") == ("split-first", "0.1")
    for bad in ("dropout=1", "split-input=0", "split-last=0.1"):
        with pytest.raises(SystemExit) as exit_:
            hv.parse(bad)
        assert exit_.value.code == 2
