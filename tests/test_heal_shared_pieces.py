"""Shared piece changes: the shadow step is M^T g in, M dU out, the shadows end at zero, inputs only."""
from __future__ import annotations

import torch

from tokengraft.heal.shared_pieces import SharedPieces, piece_matrix


class TwoMatrices(torch.nn.Module):
    """The two accessors SharedPieces reads: an untied input and output matrix."""

    def __init__(self, rows: int, dim: int) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(rows, dim)
        self.head = torch.nn.Linear(dim, rows, bias=False)

    def get_input_embeddings(self):
        return self.emb

    def get_output_embeddings(self):
        return self.head


def test_a_step_moves_every_input_row_by_the_mean_step_of_its_pieces():
    torch.manual_seed(0)
    pieces = [[0, 1], [1], [2, 2, 3], [], [3]]
    model = TwoMatrices(6, 4)  # row 5: beyond the pieces, like a padded vocabulary
    keep = torch.tensor([True, True, True, True, False, True])
    shared = SharedPieces.of(model, pieces, keep)
    assert shared.matrix is model.emb.weight  # the output matrix does not share
    start = model.emb.weight.detach().clone()
    grad = torch.randn(6, 4)
    model.emb.weight.grad = grad.clone()
    shared.gradients()
    torch.optim.SGD([shared.shadow], lr=0.5).step()
    shared.apply()
    m = piece_matrix(pieces, 6, 4).to_dense()
    assert torch.allclose(m[2], torch.tensor([0.0, 0.0, 2 / 3, 1 / 3]))  # a repeated piece counts twice
    m[4] = 0  # a row ``keep`` holds
    assert torch.allclose(model.emb.weight.detach(), start - 0.5 * m @ (m.t() @ grad), atol=1e-6)
    for row in (3, 4, 5):  # no pieces, held, beyond the pieces
        assert torch.equal(model.emb.weight.detach()[row], start[row])
    assert float(shared.shadow.detach().abs().sum()) == 0.0


def test_a_tied_or_frozen_input_matrix_gets_no_shadow():
    model = TwoMatrices(3, 2)
    model.head.weight = model.emb.weight  # tied: the matrix is also the output
    assert SharedPieces.of(model, [[0], [1], [0, 1]]) is None
    model = TwoMatrices(3, 2)
    model.emb.weight.requires_grad_(False)
    assert SharedPieces.of(model, [[0], [1], [0, 1]]) is None


def test_the_shadow_holds_only_old_tokens_that_spell_a_new_one_and_moves_rows_as_a_full_one():
    torch.manual_seed(0)
    pieces = [[7, 2], [7], [40, 40, 2], []]  # old ids up to 40: three of them spell something
    model = TwoMatrices(4, 3)
    shared = SharedPieces.of(model, pieces)
    assert tuple(shared.shadow.shape) == (3, 3)
    start, grad = model.emb.weight.detach().clone(), torch.randn(4, 3)
    model.emb.weight.grad = grad.clone()
    shared.gradients()
    torch.optim.SGD([shared.shadow], lr=0.5).step()
    shared.apply()
    m = piece_matrix(pieces, 4, 41).to_dense()  # one column per old id, as before the shadow was compact
    assert torch.allclose(model.emb.weight.detach(), start - 0.5 * m @ (m.t() @ grad), atol=1e-6)
