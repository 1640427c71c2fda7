"""Healing runs on a tiny random Llama: losses go down, the right parameters move, resume is exact."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from test_heal_helpers import heal_world, make_texts, one_thread  # noqa: F401  (fixtures)

from tokengraft.heal import HealOptions, heal
from tokengraft.heal import trainer as trainer_module

pytestmark = pytest.mark.usefixtures("one_thread")


def options(world, tmp_path, **kw) -> HealOptions:
    base = dict(model=str(world["student"]), corpus=[str(world["corpus"])], mode="embeddings", steps=12, seq_len=32,
                batch_size=4, lr=1e-2, warmup=2, save_every=0, eval_every=0, out=str(tmp_path / "out"), progress=False)
    base.update(kw)
    return HealOptions(**base)


def weights(folder) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def first_last(curve, key="loss", n=3) -> tuple[float, float]:
    return sum(e[key] for e in curve[:n]) / n, sum(e[key] for e in curve[-n:]) / n


def test_embeddings_mode_lowers_loss_and_bpb_and_trains_only_embeddings(heal_world, tmp_path):  # noqa: F811
    from transformers import AutoModelForCausalLM

    result = heal(options(heal_world, tmp_path, eval=[str(heal_world["heldout"])], eval_every=6))
    start, end = first_last(result.loss_curve)
    assert end < start - 0.3, (start, end)
    assert [e["step"] for e in result.eval_curve] == [0, 6, 12]
    bpb = [next(iter(e["bpb"].values())) for e in result.eval_curve]
    assert bpb[-1] < bpb[0] - 0.1
    assert result.steps == 12 and result.tokens_seen == 12 * 4 * 32
    before, after = weights(heal_world["student"]), weights(result.out)
    assert set(before) == set(after)
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved == {"model.embed_tokens.weight"}  # tied: the output matrix is the same tensor
    model = AutoModelForCausalLM.from_pretrained(result.out)  # plain transformers, no tokengraft
    assert model.config.vocab_size == 320
    record = json.loads((result.out / "heal.json").read_text())
    assert len(record["loss_curve"]) == 12 and record["tokens_seen"] == result.tokens_seen
    assert (result.out / "heal.png").stat().st_size > 1000
    assert (result.out / "transplant.json").is_file()  # the healed folder keeps the transplant's record
    assert not (tmp_path / "out.checkpoints").exists()


def test_only_new_keeps_copied_rows_bit_identical(heal_world, tmp_path):  # noqa: F811
    table = tmp_path / "rows.jsonl"  # a datasets-style table: one document per row
    table.write_text("\n".join(json.dumps({"text": t}) for t in make_texts(8, seed=5)) + "\n")
    # dense steps: every row but the copied ones moves (sparse steps would keep unused rows too)
    result = heal(options(heal_world, tmp_path, steps=4, only_new=True, sparse_rows=False, corpus=[str(table)]))
    lines = [json.loads(x) for x in (heal_world["student"] / "transplant_tokens.jsonl").read_text().splitlines()]
    copied = torch.tensor([x["src"] in ("copied", "special:content") for x in lines])
    assert 0 < int(copied.sum()) < len(copied)
    before = weights(heal_world["student"])["model.embed_tokens.weight"]
    after = weights(result.out)["model.embed_tokens.weight"]
    assert torch.equal(before[copied], after[copied])
    assert (before[~copied] != after[~copied]).any(dim=1).all()


def test_alm_lowers_the_distillation_loss(heal_world, tmp_path):  # noqa: F811
    result = heal(options(heal_world, tmp_path, mode="alm", steps=15, lr=2e-2))
    start, end = first_last(result.loss_curve, "alm_loss")
    assert end < start * 0.6, (start, end)
    # ALM alone (no LM term) teaches the student what the better-trained teacher knows.
    lm_start, lm_end = first_last(result.loss_curve, "lm_loss")
    assert lm_end < lm_start - 0.5, (lm_start, lm_end)
    record = json.loads((result.out / "heal.json").read_text())
    assert record["teacher"] == str(heal_world["teacher"])  # the default: transplant.json's base model


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_lora_and_full_train_the_body_and_save_plain_weights(heal_world, tmp_path, mode):  # noqa: F811
    result = heal(options(heal_world, tmp_path, mode=mode, steps=3, lr=1e-3, eval=[str(heal_world["heldout"])],
                          eval_max_bytes=3000))
    # the BPB meter scores the (LoRA-wrapped) model; lora's folder holds the default interpolation, scored last
    assert [e["step"] for e in result.eval_curve] == ([0, 3, 3] if mode == "lora" else [0, 3])
    assert result.eval_curve[-1].get("interpolate") == (0.75 if mode == "lora" else None)
    assert result.eval_curve[0]["bpb"] != result.eval_curve[1]["bpb"]
    before, after = weights(heal_world["student"]), weights(result.out)
    assert set(after) == set(before)  # LoRA merged away: no adapter keys, loads without peft
    for name in ("model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight",
                 "model.embed_tokens.weight"):
        assert not torch.equal(before[name], after[name]), name
    norms_moved = not torch.equal(before["model.norm.weight"], after["model.norm.weight"])
    assert norms_moved == (mode == "full")


def interrupt_at(monkeypatch, step: int | None) -> list[int]:
    """Make the run raise KeyboardInterrupt before ``step``; returns the steps it took."""
    real, taken = trainer_module._optimizer_step, []

    def flaky(run):
        if run.step == step:
            raise KeyboardInterrupt
        taken.append(run.step + 1)
        return real(run)

    monkeypatch.setattr(trainer_module, "_optimizer_step", flaky)
    return taken


@pytest.mark.parametrize("kw", [dict(mode="lora"), dict(mode="lora", untied=True),
                                dict(mode="alm", alm_params="full", alm_lm_weight=0.5, batch_size=4, grad_accum=2)],
                         ids=["lora", "lora-untied-shared-pieces", "alm-full"])
def test_resume_reproduces_an_uninterrupted_run_exactly(heal_world, tmp_path, monkeypatch, kw):  # noqa: F811
    kw = dict(kw)
    if kw.pop("untied", False):  # an untied transplant: its input rows also move with their old pieces
        kw["model"] = str(_untied_student(heal_world, tmp_path / "untied"))
    common = dict(steps=7, save_every=2, lr=5e-3, **kw)
    straight = heal(options(heal_world, tmp_path / "a", **common))
    with monkeypatch.context() as patch:
        interrupt_at(patch, 5)
        with pytest.raises(KeyboardInterrupt):
            heal(options(heal_world, tmp_path / "b", **common))
    saved = sorted(p.name for p in (tmp_path / "b" / "out.checkpoints").iterdir())
    assert saved == ["step-00000002", "step-00000004"]
    with monkeypatch.context() as patch:
        taken = interrupt_at(patch, None)
        resumed = heal(options(heal_world, tmp_path / "b", resume=True, **common))
    assert taken == [5, 6, 7]  # continued after the newest checkpoint, not from the start
    assert resumed.steps == straight.steps == 7
    assert [e["loss"] for e in resumed.loss_curve] == [e["loss"] for e in straight.loss_curve]
    read = [json.loads((r.out / "heal.json").read_text())["rows_read"] for r in (straight, resumed)]
    assert read[0] == read[1] and read[0]["read"] > 0  # the counts went through the checkpoint
    a, b = weights(straight.out), weights(resumed.out)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_max_seconds_stops_within_the_budget_and_resume_continues(heal_world, tmp_path):  # noqa: F811
    budget = 12.0  # the write reserve (~1 s) is a guess: 10% of the budget absorbs a loaded machine
    first = heal(options(heal_world, tmp_path, steps=None, max_seconds=budget, lr=5e-3))
    assert first.stopped_by_budget and first.steps > 5
    assert 0.9 * budget <= first.budget_seconds <= 1.1 * budget, first.budget_seconds
    record = json.loads((first.out / "heal.json").read_text())
    assert record["stopped_by_budget"] and record["max_seconds"] == budget and record["steps"] == first.steps
    assert set(weights(first.out)) == set(weights(heal_world["student"]))  # the folder is complete
    assert (first.out / "tokenizer.json").is_file() and (first.out / "heal.png").is_file()
    lrs = [e["lr"] for e in first.loss_curve]
    assert max(lrs) == pytest.approx(5e-3, rel=0.05) and lrs[-1] < 0.2 * 5e-3  # the cosine ends with the budget
    saved = sorted(p.name for p in (tmp_path / "out.checkpoints").iterdir())
    assert saved[-1] == f"step-{first.steps:08d}"  # the state at the stop, for --resume
    second = heal(options(heal_world, tmp_path, steps=None, max_seconds=budget, lr=5e-3, resume=True,
                          overwrite=True))
    assert second.stopped_by_budget and second.steps > first.steps
    assert second.loss_curve[:first.steps] == first.loss_curve  # continued, not restarted
    resumed_lrs = [e["lr"] for e in second.loss_curve[first.steps:]]
    assert max(resumed_lrs) == pytest.approx(5e-3, rel=0.05) and resumed_lrs[-1] < 0.2 * 5e-3  # a new decay
    assert 0.9 * budget <= second.budget_seconds <= 1.1 * budget
    start_first, _ = first_last(first.loss_curve, n=10)
    _, end_second = first_last(second.loss_curve, n=10)
    assert end_second < start_first - 0.3  # kept learning from where it stopped


def test_steps_end_a_budgeted_run_first_when_they_are_fewer(heal_world, tmp_path):  # noqa: F811
    result = heal(options(heal_world, tmp_path, steps=3, max_seconds=600.0))
    assert result.steps == 3 and not result.stopped_by_budget
    assert not (tmp_path / "out.checkpoints").exists()


def test_fit_mode_fits_both_matrices_within_its_budget_and_resumes(heal_world, tmp_path):  # noqa: F811
    budget = 12.0
    result = heal(options(heal_world, tmp_path, mode="fit", steps=None, max_seconds=budget,
                          eval=[str(heal_world["heldout"])], eval_max_bytes=3000))
    assert result.stopped_by_budget and 0.9 * budget <= result.budget_seconds <= 1.1 * budget
    record = json.loads((result.out / "heal.json").read_text())
    fit = record["fit"]
    assert fit["input"]["steps"] > 3 and fit["input"]["loss_last"] < fit["input"]["loss_first"]
    assert fit["output"]["positions"] > 100 and fit["output"]["passes"] >= 1
    assert result.steps > 3  # then the LM phase
    before, after = weights(heal_world["student"]), weights(result.out)
    assert "lm_head.weight" in after and "lm_head.weight" not in before  # untied: output rows of their own
    assert not torch.equal(after["lm_head.weight"], after["model.embed_tokens.weight"])
    bpb = [next(iter(e["bpb"].values())) for e in result.eval_curve]
    assert bpb[-1] < bpb[0] - 0.1
    resumed = heal(options(heal_world, tmp_path, mode="fit", steps=None, max_seconds=budget, resume=True,
                           overwrite=True))
    assert resumed.steps > result.steps and json.loads((resumed.out / "heal.json").read_text())["fit"] == fit


def _untied_student(world, folder):
    import shutil

    from transformers import AutoModelForCausalLM

    from tokengraft.fit.rows import untie

    shutil.copytree(world["student"], folder)
    model = AutoModelForCausalLM.from_pretrained(world["student"])
    assert untie(model)
    model.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("rows, moves", [("input", "model.embed_tokens.weight"), ("output", "lm_head.weight")])
def test_rows_trains_one_matrix_and_keeps_the_other_bit_identical(heal_world, tmp_path, rows, moves):  # noqa: F811
    student = _untied_student(heal_world, tmp_path / "untied")
    result = heal(options(heal_world, tmp_path, model=str(student), steps=4, rows=rows))
    before, after = weights(student), weights(result.out)
    assert {k for k in before if not torch.equal(before[k], after[k])} == {moves}


def test_rows_on_a_tied_model_is_a_clear_error(heal_world, tmp_path):  # noqa: F811
    from tokengraft.errors import TokengraftError

    with pytest.raises(TokengraftError, match="tied matrix; use --rows both"):
        heal(options(heal_world, tmp_path, steps=2, rows="input"))
    assert not (tmp_path / "out").exists()


def _used_ids(world, student):
    """The student's tokenizer and the ids the training corpus uses (the end-of-text token included)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(student)
    used = {tok.eos_token_id}
    for doc in sorted(world["corpus"].iterdir()):
        used.update(tok(doc.read_text(encoding="utf-8"))["input_ids"])
    return tok, used


@pytest.mark.parametrize("sparse", [False, True])
def test_sparse_rows_keep_the_rows_of_tokens_the_text_never_uses(heal_world, tmp_path, sparse):  # noqa: F811
    student = _untied_student(heal_world, tmp_path / "untied")
    tok, used = _used_ids(heal_world, student)
    result = heal(options(heal_world, tmp_path, model=str(student), steps=4, sparse_rows=sparse, sparse_negatives=0,
                          share_pieces=0.0))
    before, after = weights(student), weights(result.out)
    unused = torch.tensor([i for i in range(len(tok)) if i not in used])
    assert len(unused) >= 10
    head_kept = torch.equal(before["lm_head.weight"][unused], after["lm_head.weight"][unused])
    # a dense Adam step moves every output row (the softmax pushes unseen tokens down); a sparse one does not
    assert head_kept == sparse
    assert torch.equal(before["model.embed_tokens.weight"][unused], after["model.embed_tokens.weight"][unused])
    seen = torch.tensor(sorted(used))
    assert not torch.equal(before["lm_head.weight"][seen], after["lm_head.weight"][seen])


@pytest.mark.parametrize("steps", [1, 3])
def test_hard_negatives_step_that_many_unused_output_rows_and_no_unused_input_row(heal_world, tmp_path, steps):  # noqa: F811
    student = _untied_student(heal_world, tmp_path / "untied")
    tok, used = _used_ids(heal_world, student)
    # random order: its first batch's 5 hardest negatives are all tokens the corpus never uses, so
    # "moved unused rows" counts them exactly (other orders may pick a used token the batch lacks)
    result = heal(options(heal_world, tmp_path, model=str(student), steps=steps, sparse_negatives=5,
                          data_order="random", share_pieces=0.0))
    before, after = weights(student), weights(result.out)
    unused = torch.tensor([i for i in range(len(tok)) if i not in used])
    moved = (before["lm_head.weight"][unused] != after["lm_head.weight"][unused]).any(1)
    # one step moves exactly its 5 hard negatives; later steps may pick other rows (or the same ones)
    assert (int(moved.sum()) == 5) if steps == 1 else (5 <= int(moved.sum()) <= 5 * steps)
    assert torch.equal(before["model.embed_tokens.weight"][unused], after["model.embed_tokens.weight"][unused])


def test_the_default_mode_trains_lora_adapters_and_only_the_rows_the_text_uses(heal_world, tmp_path):  # noqa: F811
    default = HealOptions(model="m")
    assert (default.mode, default.learning_rate, default.sparse_rows, default.keep_share) == ("lora", 3e-3, True, 0.75)
    assert (default.sparse_negatives, default.data_order, default.share_pieces) == (2048, "coverage", 1.0)
    student = _untied_student(heal_world, tmp_path / "untied")
    tok, used = _used_ids(heal_world, student)
    # hard negatives off: at 2,048 a step would move every output row of this 320-token model; shared
    # pieces off: they move unused input rows (their own test below)
    result = heal(options(heal_world, tmp_path, model=str(student), steps=4, mode=default.mode, lr=None,
                          sparse_negatives=0, share_pieces=0.0))
    before, after = weights(student), weights(result.out)
    assert set(after) == set(before)  # adapters merged into plain weights
    assert not torch.equal(before["model.layers.0.self_attn.q_proj.weight"],
                           after["model.layers.0.self_attn.q_proj.weight"])
    assert torch.equal(before["model.norm.weight"], after["model.norm.weight"])
    unused = torch.tensor([i for i in range(len(tok)) if i not in used])
    assert len(unused) >= 10
    for name in ("lm_head.weight", "model.embed_tokens.weight"):
        assert torch.equal(before[name][unused], after[name][unused]), name
    assert not torch.equal(before["lm_head.weight"], after["lm_head.weight"])


def test_lora_mode_keeps_rows_and_matrices_the_options_freeze(heal_world, tmp_path):  # noqa: F811
    student = _untied_student(heal_world, tmp_path / "untied")
    result = heal(options(heal_world, tmp_path / "a", model=str(student), steps=3, mode="lora", rows="output"))
    before, after = weights(student), weights(result.out)
    assert torch.equal(before["model.embed_tokens.weight"], after["model.embed_tokens.weight"])
    assert not torch.equal(before["lm_head.weight"], after["lm_head.weight"])
    lines = [json.loads(x) for x in (student / "transplant_tokens.jsonl").read_text().splitlines()]
    copied = torch.tensor([x["src"] in ("copied", "special:content") for x in lines])
    result = heal(options(heal_world, tmp_path / "b", model=str(student), steps=3, mode="lora", only_new=True,
                          sparse_rows=False))
    after = weights(result.out)
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        assert torch.equal(before[name][copied], after[name][copied]), name
        assert not torch.equal(before[name][~copied], after[name][~copied]), name


def test_interpolate_keeps_that_share_of_the_trained_change(heal_world, tmp_path):  # noqa: F811
    student = _untied_student(heal_world, tmp_path / "untied")
    full = heal(options(heal_world, tmp_path / "a", model=str(student), steps=3, mode="lora", interpolate=1.0))
    part = heal(options(heal_world, tmp_path / "b", model=str(student), steps=3, mode="lora", interpolate=0.25,
                        eval=[str(heal_world["corpus"])]))
    trained_eval, kept_eval = part.eval_curve[-2:]  # the curve ends with the model the folder holds
    assert kept_eval["interpolate"] == 0.25 and "interpolate" not in trained_eval
    assert kept_eval["bpb"] != trained_eval["bpb"]
    before, trained, kept = weights(student), weights(full.out), weights(part.out)
    moved = {n for n in before if not torch.equal(before[n], trained[n])}
    assert {"model.layers.0.self_attn.q_proj.weight", "lm_head.weight", "model.embed_tokens.weight"} <= moved
    for name in before:
        torch.testing.assert_close(kept[name], before[name] + 0.25 * (trained[name] - before[name]), rtol=0,
                                   atol=1e-6, msg=name)
        if name not in moved:
            assert torch.equal(kept[name], before[name]), name


def test_share_pieces_moves_unused_input_rows_that_share_a_piece_with_the_batch_and_no_other(heal_world, tmp_path):  # noqa: F811
    from transformers import AutoTokenizer

    from tokengraft.heal.compat import old_pieces

    student = _untied_student(heal_world, tmp_path / "untied")
    tok, used = _used_ids(heal_world, student)
    pieces = old_pieces(AutoTokenizer.from_pretrained(heal_world["teacher"]), tok)
    result = heal(options(heal_world, tmp_path, model=str(student), steps=1, mode="lora", lr=None,
                          sparse_negatives=0, share_pieces=1.0))
    before, after = weights(student), weights(result.out)
    # one step reads the whole corpus (it fits in the batch): the rows it uses are those the text uses
    batch_pieces = {p for t in used for p in pieces[t]}
    unused = [t for t in range(len(tok)) if t not in used]
    sharing = torch.tensor([t for t in unused if set(pieces[t]) & batch_pieces])
    apart = torch.tensor([t for t in unused if not set(pieces[t]) & batch_pieces])
    assert len(sharing) >= 10 and len(apart) >= 1
    moved = (before["model.embed_tokens.weight"] != after["model.embed_tokens.weight"]).any(1)
    assert bool(moved[sharing].all()) and not bool(moved[apart].any())
    unused = torch.tensor(unused)
    assert torch.equal(before["lm_head.weight"][unused], after["lm_head.weight"][unused])  # outputs do not share


def test_share_pieces_leaves_a_model_that_is_no_transplant_as_it_was(heal_world, tmp_path):  # noqa: F811
    teacher = str(heal_world["teacher"])  # no transplant.json: no old pieces (the fair baseline's case)
    runs = [heal(options(heal_world, tmp_path / str(share), model=teacher, steps=2, mode="lora", share_pieces=share))
            for share in (0.0, 1.0)]
    a, b = weights(runs[0].out), weights(runs[1].out)
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_rows_read_counts_every_token_the_batches_show_and_the_new_ones_never_read(heal_world, tmp_path):  # noqa: F811
    from tokengraft.heal import sources

    tok, used = _used_ids(heal_world, heal_world["student"])
    used.add(tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id)  # each document's start
    # batches of 4 x 32 tokens: 40 steps read the small corpus more than once, so every token it uses
    result = heal(options(heal_world, tmp_path, steps=40))
    record = json.loads((result.out / "heal.json").read_text())["rows_read"]
    copied, _ = sources.copied_rows(str(heal_world["student"]), len(tok))
    new = {i for i in range(len(tok)) if not copied[i]}
    assert record == {"token_types": len(tok), "read": len(used), "read_10_or_more": record["read_10_or_more"],
                      "new_tokens": len(new), "new_read": len(new & used), "new_never_read": len(new - used)}
    assert 0 < record["read_10_or_more"] < len(used) and 0 < record["new_never_read"] < len(new)
