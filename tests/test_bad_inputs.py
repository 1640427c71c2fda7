"""Bad inputs, one table across the commands: each is refused with exit code 2 and one line.

Every case runs ``tokengraft.cli.main.main(argv)`` in process on the tiny world of
:mod:`bad_inputs_world` and asserts:
- exit code 2;
- exactly one ``error:`` line, the last thing on stderr (so the message is one line), that
  matches the case's pattern (it names the problem);
- no traceback;
- nothing left behind: the world folder holds the same files and folders, unchanged
  (no output, no temporary sibling, no file a pickle payload would create).

To add a case, add a row: ``Case(command, name, command line with {names} from
bad_inputs_world.PATHS and {out} for a fresh output path, pattern of the error line)``.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch

from bad_inputs_world import one_thread, world  # noqa: F401  (fixtures)
from tokengraft.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="the case is a machine without CUDA")


@dataclass(frozen=True)
class Case:
    command: str   # the subcommand, for the count by command
    name: str
    line: str      # the command line; {name} -> a world path, {out} -> a fresh path for this case
    pattern: str   # regular expression the error line must match
    setup: Callable[[Path], None] | None = None  # prepares the world, given this case's {out}

    def out(self, world: dict[str, str]) -> Path:
        return Path(world["root"]) / f"out-{self.command.replace(' ', '-')}-{self.name}"

    def argv(self, world: dict[str, str]) -> list[str]:
        return shlex.split(self.line.format(out=self.out(world), **world))


def checkpoint_of_another_run(out: Path) -> None:
    """A valid checkpoint beside ``out`` whose options differ from the case's."""
    from tokengraft.heal import checkpoint

    checkpoint.save(out.with_name(out.name + ".checkpoints"), 2, {"fingerprint": {"seed": -1}}, keep=2)


def corrupted_checkpoint(out: Path) -> None:
    checkpoint_of_another_run(out)
    state = out.with_name(out.name + ".checkpoints") / "step-00000002" / "state.pt"
    state.write_bytes(state.read_bytes()[:-10])


T, E, K, C, H = "transplant", "eval", "tokenizer train", "tokenizer compare", "heal"
X, R = "export", "report"
TP = "transplant --method fvt --model {base} --tokenizer {tok}"
EV = "eval --model {base} --text {a}"
TR = "tokenizer train --corpus {corpus} --vocab-size 300 --no-progress"
HL = "heal --model {base} --corpus {corpus} --steps 1 --seq-len 16 --batch-size 2 --no-progress"
EX = "export --model {base} --gguf {out}.gguf"
SAFE = r"cannot be loaded safely .*convert it to safetensors with a tool you trust"

CASES = [
    # transplant: broken inputs
    Case(T, "duplicate-ids-file", "transplant --method fvt --model {base} --tokenizer {dup} --out {out}",
         r"101 vocabulary entries have 1 id between them .*cannot be saved and loaded back; give every token its own"),
    Case(T, "duplicate-ids-folder", "transplant --method fvt --model {base} --tokenizer {dupdir} --out {out}",
         r"both have id \d+\), so it cannot be saved and loaded back"),
    Case(T, "id-gaps", "transplant --method fvt --model {base} --tokenizer {gap} --out {out}",
         r"leaves ids \d+-1999 \(1,680 unused ids\).* 2,010 rows for 330 tokens.*--allow-id-gaps"),
    Case(T, "truncated-safetensors", "transplant --method fvt --model {trunc} --tokenizer {tok} --out {out}",
         r"model weights .*trunc/model.safetensors are truncated \([\d,]+ of [\d,]+ bytes\)"),
    Case(T, "pickle-only-bin", "transplant --method fvt --model {pickle} --tokenizer {tok} --out {out}", SAFE),
    Case(T, "weights-file-as-model", "transplant --method fvt --model {weights} --tokenizer {tok} --out {out}",
         r"is a weights file, not a model; give the folder"),
    Case(T, "folder-without-config", "transplant --method fvt --model {noconfig} --tokenizer {tok} --out {out}",
         r"has no config.json"),
    Case(T, "model-without-tokenizer", "transplant --method fvt --model {small} --tokenizer {tok} --out {out}",
         r"has no tokenizer files"),
    Case(T, "missing-model", "transplant --method fvt --model {root}/nope --tokenizer {tok} --out {out}",
         r"model file or folder .*nope does not exist"),
    Case(T, "missing-tokenizer", "transplant --method fvt --model {base} --tokenizer {root}/nope.json --out {out}",
         r"tokenizer file or folder .*nope.json does not exist"),
    Case(T, "corrupt-tokenizer", "transplant --method fvt --model {base} --tokenizer {corrupt} --out {out}",
         r"tokenizer file .*corrupt.json is unreadable"),
    Case(T, "no-tokenizer-flag", "transplant --model {base}", r"needs --model SPEC and --tokenizer SPEC"),
    # transplant: options
    pytest.param(Case(T, "cuda-without-gpu", TP + " --device cuda --out {out}", r"no CUDA GPU here; pass --device cpu"),
                 marks=NO_CUDA),
    Case(T, "unknown-method", TP + " --method nope --out {out}", r"unknown method 'nope'"),
    Case(T, "method-option-syntax", TP + " --method-option k --out {out}", r"--method-option expects KEY=VALUE"),
    Case(T, "unknown-method-option", TP + " --method-option nope=1 --out {out}", r"method fvt has no option nope"),
    Case(T, "pad-to-zero", TP + " --pad-to-multiple-of 0 --out {out}", r"--pad-to-multiple-of must be a positive"),
    Case(T, "method-needs-donor", TP + " --method omp --out {out}", r"method omp needs --donor"),
    Case(T, "encoder-kind-on-causal", TP + " --kind encoder --out {out}",
         r"is a causal LM \(LlamaForCausalLM\); --kind encoder would write its body without the output head"),
    # transplant: output paths, checked before any loading
    Case(T, "out-under-a-file", TP + " --out {file}/x", r"--out .*a.txt/x cannot be created: .*a.txt is a file"),
    Case(T, "out-is-a-file", TP + " --out {file} --overwrite", r"--out .*a.txt is a file, not a folder"),
    Case(T, "out-exists", TP + " --out {existing}", r"output folder .*existing already exists.*--overwrite"),
    Case(T, "out-is-the-model", TP + " --out {base} --overwrite", r"--out .*base is the input model"),
    Case(T, "out-holds-the-model", TP + " --out {root} --overwrite", r"holds the input model .*--overwrite would delete"),
    # eval
    Case(E, "json-is-a-folder", EV + " --json {jsondir}", r"--json .*jsondir is a folder; give a file path"),
    Case(E, "json-under-a-file", EV + " --json {file}/r.json", r"--json .*r.json cannot be created: .*is a file"),
    Case(E, "context-zero", EV + " --context 0", r"--context must be a positive number of tokens"),
    Case(E, "context-negative", EV + " --context -5", r"--context must be a positive number of tokens.*got -5"),
    Case(E, "context-too-long", EV + " --context 100000", r"context 100000 is more than 128.*--context 128 or less"),
    Case(E, "stride-zero", EV + " --stride 0", r"--stride must be a positive"),
    Case(E, "stride-beyond-context", EV + " --context 16 --stride 32", r"--stride 32 is larger than --context 16"),
    Case(E, "max-bytes-zero", EV + " --max-bytes 0", r"--max-bytes must be a positive number of bytes"),
    Case(E, "batch-tokens-zero", EV + " --batch-tokens 0", r"--batch-tokens must be a positive"),
    Case(E, "whitespace-only-text", "eval --model {base} --text {ws}", r"holds only whitespace \(9 bytes\)"),
    Case(E, "empty-text", "eval --model {base} --text {empty}", r"empty"),
    Case(E, "latin1-text", "eval --model {base} --text {latin1}", r"UTF-8"),
    Case(E, "missing-text", "eval --model {base} --text {root}/nope.txt", r"nope.txt"),
    Case(E, "largest-id-beyond-rows", "eval --model {gapmodel} --text {a}",
         r"largest id is 2009 but the model's input embedding has only 372 rows"),
    Case(E, "more-ids-than-rows", "eval --model {small} --tokenizer {base} --text {a}",
         r"has 372 token ids but the model's input embedding has only 64 rows"),
    Case(E, "weights-file-as-model", "eval --model {weights} --text {a}", r"is a weights file, not a model"),
    Case(E, "truncated-safetensors", "eval --model {trunc} --text {a}", r"are truncated"),
    Case(E, "pickle-only-bin", "eval --model {pickle} --text {a}", SAFE),
    Case(E, "truncated-bin", "eval --model {truncbin} --text {a}",
         r"the pytorch_model.bin in .*truncbin is truncated or damaged"),
    Case(E, "duplicate-ids", "eval --model {base} --tokenizer {dup} --text {a}", r"both have id"),
    pytest.param(Case(E, "cuda-without-gpu", EV + " --device cuda", r"no CUDA GPU here"), marks=NO_CUDA),
    Case(E, "unknown-device", EV + " --device tpu", r"unknown device 'tpu'"),
    Case(E, "start-token-missing", EV + " --start '<nope>'", r"start token '<nope>' is not in the tokenizer"),
    Case(E, "unknown-model", "eval --model no-such-model-xyz --text {a}", r"unknown model 'no-such-model-xyz'"),
    # tokenizer train and compare
    Case(K, "max-bytes-zero", TR + " --max-bytes 0 --out {out}", r"--max-bytes must be a positive number of bytes"),
    Case(K, "vocab-too-small", "tokenizer train --corpus {corpus} --vocab-size 100 --no-progress --out {out}",
         r"vocab size 100 is smaller than the 256-byte alphabet"),
    Case(K, "whitespace-corpus", "tokenizer train --corpus {ws} --vocab-size 300 --no-progress --out {out}",
         r"the training corpus is empty or only whitespace"),
    Case(K, "out-exists", TR + " --out {existing}", r"already exists"),
    Case(K, "out-under-a-file", TR + " --out {file}/tok", r"cannot be created: .*a.txt is a file"),
    Case(K, "missing-base", TR + " --base {root}/nope --out {out}", r"nope does not exist"),
    Case(K, "transition-too-big", TR + " --kind superbpe --transition 400 --out {out}", r"transition 400 must be"),
    Case(C, "json-is-a-folder", "tokenizer compare --tokenizer {tok} --corpus {a} --json {jsondir}",
         r"--json .*jsondir is a folder"),
    Case(C, "label-twice", "tokenizer compare --tokenizer {tok} --tokenizer {tok} --corpus {a}", r"given twice"),
    Case(C, "duplicate-ids", "tokenizer compare --tokenizer {dup} --corpus {a}", r"both have id"),
    # heal
    Case(H, "out-is-the-model", HL + " --out {base}", r"--out .*base is the input model folder"),
    Case(H, "out-exists", HL + " --out {existing}", r"already exists"),
    Case(H, "out-under-a-file", HL + " --out {file}/healed", r"cannot be created: .*a.txt is a file"),
    Case(H, "truncated-safetensors", "heal --model {trunc} --corpus {corpus} --no-progress --out {out}", r"are truncated"),
    Case(H, "pickle-only-bin", "heal --model {pickle} --corpus {corpus} --no-progress --out {out}", SAFE),
    Case(H, "largest-id-beyond-rows", "heal --model {gapmodel} --corpus {corpus} --no-progress --out {out}",
         r"has ids up to 2009 but the model only 372 embedding rows"),
    Case(H, "whitespace-corpus", "heal --model {base} --corpus {ws} --no-progress --out {out}", r"only whitespace"),
    pytest.param(Case(H, "cuda-without-gpu", HL + " --device cuda --out {out}", r"no CUDA GPU here"), marks=NO_CUDA),
    Case(H, "alm-without-teacher", HL + " --mode alm --out {out}", r"not a transplant output .*pass --teacher SPEC"),
    Case(H, "resume-without-checkpoint", HL + " --resume --out {out}", r"--resume found no checkpoint"),
    Case(H, "batch-not-divisible", HL + " --batch-size 3 --grad-accum 2 --out {out}", r"must be a multiple of"),
    Case(H, "seq-len-too-short", HL + " --seq-len 4 --out {out}", r"--seq-len 4 is too short"),
    Case(H, "tokens-zero", HL.replace("--steps 1 ", "") + " --tokens 0 --out {out}", r"--tokens must be positive"),
    Case(H, "only-new-with-full", HL + " --mode full --only-new --out {out}", r"--only-new masks embedding rows"),
    Case(H, "interpolate-zero", HL + " --interpolate 0 --out {out}", r"--interpolate 0.0 is the share .* in \(0, 1\]"),
    Case(H, "corrupted-checkpoint", HL + " --resume --out {out}",
         r"step-00000002 is corrupted or incomplete \(checksum mismatch\)", setup=corrupted_checkpoint),
    Case(H, "resume-with-other-options", HL + " --resume --out {out}", r"was made with other options \(.*seed",
         setup=checkpoint_of_another_run),
    Case(H, "checkpoints-without-resume", HL + " --out {out}", r"holds checkpoints of an earlier run; pass --resume",
         setup=checkpoint_of_another_run),
    Case(E, "unreadable-config", "eval --model {badconfig} --text {a}", r"model .*badconfig"),
    Case(K, "min-frequency-zero", TR + " --min-frequency 0 --out {out}", r"--min-frequency must be at least 1"),
    Case(K, "corrupt-base", TR + " --base {corrupt} --out {out}", r"corrupt.json is unreadable"),
    Case(K, "duplicate-ids-base", TR + " --base {dup} --out {out}", r"both have id"),
    Case(C, "plot-is-a-folder", "tokenizer compare --tokenizer {tok} --corpus {a} --plot {jsondir}",
         r"--plot .*jsondir is a folder; give a file path such as .*compare.png"),
    Case(C, "missing-corpus", "tokenizer compare --tokenizer {tok} --corpus {root}/nope.txt", r"nope.txt"),
    Case(C, "missing-tokenizer", "tokenizer compare --tokenizer {root}/nope --corpus {a}", r"nope does not exist"),
    # transplant and heal: --eval and --push-to-hub, checked before any loading (a push that fails at the
    # network boundary keeps the written folder: tests/test_publish.py)
    Case(T, "push-without-out", TP + " --push-to-hub me/model", r"--push-to-hub uploads the written folder; give --out"),
    Case(T, "push-repo-without-user", TP + " --push-to-hub model --out {out}",
         r"--push-to-hub expects a repository id like user/name, got 'model'"),
    Case(T, "eval-max-bytes-zero", TP + " --eval {a} --eval-max-bytes 0 --out {out}",
         r"--eval-max-bytes must be a positive integer, got 0"),
    Case(T, "eval-missing-corpus", TP + " --eval {root}/nope.txt --out {out}", r"nope.txt"),
    Case(T, "eval-whitespace-corpus", TP + " --eval {ws} --out {out}", r"only whitespace"),
    Case(H, "push-repo-with-two-slashes", HL + " --push-to-hub a/b/c --out {out}",
         r"--push-to-hub expects a repository id like user/name, got 'a/b/c'"),
    # export
    Case(X, "missing-model", "export --model {root}/nope --gguf {out}.gguf", r"nope does not exist"),
    Case(X, "weights-file-as-model", "export --model {weights} --gguf {out}.gguf", r"is a weights file, not a model"),
    Case(X, "truncated-safetensors", "export --model {trunc} --gguf {out}.gguf", r"are truncated"),
    Case(X, "pickle-only-bin", "export --model {pickle} --gguf {out}.gguf", SAFE),
    Case(X, "gguf-exists", "export --model {base} --gguf {file}", r"a.txt already exists; choose another --gguf or pass"),
    Case(X, "gguf-is-a-folder", "export --model {base} --gguf {jsondir} --overwrite",
         r"--gguf .*jsondir is a folder; give a file path such as .*model.gguf"),
    Case(X, "gguf-under-a-file", "export --model {base} --gguf {file}/m.gguf", r"cannot be created: .*a.txt is a file"),
    Case(X, "ids-beyond-rows", "export --model {gapmodel} --gguf {out}.gguf",
         r"the tokenizer has 2010 ids but the model 372 embedding rows"),
    # report
    Case(R, "missing-folder", "report {root}/nope", r"nope is not a folder; pass the output folder of a transplant"),
    Case(R, "folder-without-records", "report {base}", r"base has no transplant.json, heal.json or eval\*.json"),
    Case(R, "out-with-several-folders", "report {base} {tok} --out {out}.html",
         r"--out names one page; with several folders each gets its own"),
    Case(R, "out-is-a-folder", "report {base} --out {jsondir}", r"--out .*jsondir is a folder; give a file path"),
    Case(R, "out-under-a-file", "report {base} --out {file}/r.html", r"cannot be created: .*a.txt is a file"),
]


def _case(item) -> Case:
    return item.values[0] if hasattr(item, "values") else item


def case_counts() -> dict[str, int]:
    """Cases by command (docs/RELIABILITY.md quotes these)."""
    counts: dict[str, int] = {}
    for item in CASES:
        counts[_case(item).command] = counts.get(_case(item).command, 0) + 1
    return counts


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and modification time."""
    return {str(p.relative_to(root)): (p.stat().st_size if p.is_file() else -1, p.stat().st_mtime_ns)
            for p in root.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.command.replace(' ', '-')}:{c.name}")
def test_bad_input_is_refused_in_one_line(case: Case, world, capsys):
    root = Path(world["root"])
    if case.setup is not None:
        case.setup(case.out(world))
    before = snapshot(root)
    code = main(case.argv(world))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and err.rstrip().splitlines()[-1] == errors[0], err
    assert re.search(case.pattern, errors[0]), errors[0]
    assert "weights_only" not in errors[0]  # never suggest loading a pickle unsafely
    assert snapshot(root) == before, "the command left something behind or changed an input"
    assert not Path(world["payload"]).exists()  # the pickle's code never ran


def test_the_table_covers_every_command_and_has_40_cases():
    counts = case_counts()
    assert set(counts) == {T, E, K, C, H, X, R}
    assert sum(counts.values()) >= 40


def test_reliability_doc_quotes_the_case_counts():
    doc = (Path(__file__).parents[1] / "docs" / "RELIABILITY.md").read_text(encoding="utf-8")
    quoted = {m[0]: int(m[1]) for m in re.findall(r"^\| `([a-z ]+)` \| (\d+) \|", doc, flags=re.M)}
    assert quoted == case_counts()
    assert f"**{sum(quoted.values())} cases**" in doc
