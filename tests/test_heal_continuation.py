"""--continuation-weight: which targets continue a word, the weighted loss, and a run that uses it."""
from __future__ import annotations

import pytest
import torch
from test_heal_helpers import heal_world, make_texts, one_thread  # noqa: F401  (fixtures)

from tokengraft.errors import TokengraftError
from tokengraft.heal import HealOptions, compat, heal
from tokengraft.heal.continuation import letter_edges, target_weights
from tokengraft.heal.steps import Counts, lm_micro


def test_letter_edges_read_bytes_and_split_utf8_characters():
    table = [b" L", b"ic", b"ense", b"\xc3", b"\xbcber", b"42", b".", b"", None, "é".encode(), b" \xe2\x80\x94"]
    starts, ends = letter_edges(table)
    assert starts.tolist() == [False, True, True, False, True, False, False, False, False, True, False]
    assert ends.tolist() == [True, True, True, True, True, False, False, False, False, True, False]


def test_target_weights_mark_only_word_continuations():
    starts, ends = letter_edges([b" L", b"ic", b"ense", b" x", b"."])
    ids = torch.tensor([[0, 1, 2, 4, 3], [3, 0, 4, 1, 1]])
    w = target_weights(ids, starts, ends, 2.5)
    # targets: ic after " L", ense after ic, "." , " x" | " L" after " x" (a new word), ".", ic after ".", ic after ic
    assert w.tolist() == [[2.5, 2.5, 1.0, 1.0], [1.0, 1.0, 1.0, 2.5]]


class Bigram(torch.nn.Module):
    def __init__(self, vocab: int = 5):
        super().__init__()
        self.table = torch.nn.Parameter(torch.randn(vocab, vocab, generator=torch.Generator().manual_seed(0)))

    def forward(self, input_ids):
        class Out:
            logits = self.table[input_ids]
        return Out


def test_weighted_loss_scales_continuations_and_logs_the_plain_loss():
    model, ids = Bigram(), torch.tensor([[0, 1, 2, 4, 3]])
    counts = Counts(tokens=4)
    plain, plain_sums = lm_micro(model, ids, counts)
    ones, ones_sums = lm_micro(model, ids, counts, torch.ones(1, 4))
    assert torch.allclose(plain, ones) and torch.equal(plain_sums, ones_sums)
    w = torch.tensor([[3.0, 1.0, 1.0, 1.0]])
    weighted, sums = lm_micro(model, ids, counts, w)
    first = -torch.log_softmax(model.table[0], -1)[1]
    assert torch.allclose(weighted, plain + 2 * first / 4)
    assert torch.equal(sums, plain_sums)  # the logged loss is the plain next-token loss


@pytest.mark.parametrize("kw, words", [(dict(continuation_weight=0.0), "must be positive"),
                                       (dict(continuation_weight=2.0, mode="alm"), "--mode alm")])
def test_bad_continuation_weight_is_one_line(kw, words):
    with pytest.raises(TokengraftError, match=words) as err:
        HealOptions(model="m", corpus=["c"], **kw).validate()
    assert "\n" not in str(err.value)


@pytest.mark.usefixtures("one_thread")
def test_run_with_continuation_weight_trains_differently(heal_world, tmp_path):  # noqa: F811
    tok = compat.load_tokenizer(str(heal_world["student"]))
    starts, ends = letter_edges(compat.token_bytes(tok))
    ids = torch.tensor([tok(" ".join(make_texts()[:4]), add_special_tokens=False)["input_ids"]])
    share = float((target_weights(ids, starts, ends, 2.0) > 1).float().mean())
    assert 0.05 < share < 0.95, share  # the fixture's text has word-continuing targets and others

    def run(weight, name):
        return heal(HealOptions(model=str(heal_world["student"]), corpus=[str(heal_world["corpus"])],
                                mode="embeddings", steps=4, seq_len=32, batch_size=4, lr=1e-2, warmup=1,
                                save_every=0, eval_every=0, out=str(tmp_path / name), progress=False,
                                continuation_weight=weight))

    plain, weighted = run(1.0, "plain"), run(3.0, "weighted")
    assert plain.loss_curve[0]["loss"] == pytest.approx(weighted.loss_curve[0]["loss"], rel=1e-6)
    assert plain.loss_curve[-1]["loss"] != pytest.approx(weighted.loss_curve[-1]["loss"], rel=1e-4)
