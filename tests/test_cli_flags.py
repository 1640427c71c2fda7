"""Every command's flags come from its options dataclass: one flag per option, the same default."""
from __future__ import annotations

import argparse
import dataclasses

import pytest

from tokengraft.cli import eval as eval_cli
from tokengraft.bytelevel.options import GenerateOptions
from tokengraft.cli import export as export_cli
from tokengraft.cli import generate as generate_cli
from tokengraft.cli import heal as heal_cli
from tokengraft.cli import quickstart as quickstart_cli
from tokengraft.cli import report as report_cli
from tokengraft.cli import transplant as transplant_cli
from tokengraft.cli.flags import add_option_flags, field_comments, options_from_args
from tokengraft.cli.main import build_parser
from tokengraft.export.gguf import ExportOptions
from tokengraft.heal.options import HealOptions
from tokengraft.measure.compare import CompareOptions
from tokengraft.measure.options import EvalOptions
from tokengraft.report.options import ReportOptions
from tokengraft.tokenizer.mixture import MixtureOptions
from tokengraft.tokenizer.options import TrainOptions
from tokengraft.transplant.options import TransplantOptions

# argv with only what is required, the options class, the required values, how the command builds its options,
# and the options that are no flag of their own (with the flag that carries them)
COMMANDS = {
    "transplant": (["transplant", "--model", "m", "--tokenizer", "t"], TransplantOptions,
                   {"model": "m", "tokenizer": "t"}, transplant_cli.options_from_args, {"method_options"}),
    "eval": (["eval", "--model", "m", "--text", "x"], EvalOptions, {}, eval_cli.options_from_args, set()),
    "compare": (["compare", "a.json", "b.json"], CompareOptions, {}, lambda args: options_from_args(args, CompareOptions),
                set()),
    "heal": (["heal", "--model", "m", "--corpus", "c"], HealOptions, {"model": "m", "corpus": ["c"]},
             heal_cli.options_from_args, set()),
    "tokenizer train": (["tokenizer", "train", "--corpus", "c", "--out", "o"], TrainOptions, {},
                        lambda args: options_from_args(args, TrainOptions), set()),
    "quickstart": (["quickstart"], quickstart_cli.QuickstartOptions, {}, quickstart_cli.options_from_args, set()),
    "tokenizer mixture": (["tokenizer", "mixture", "--tokenizer", "t", "--category", "c"], MixtureOptions, {},
                          lambda args: options_from_args(args, MixtureOptions), set()),
    "export": (["export", "--model", "m", "--gguf", "o.gguf"], ExportOptions, {"model": "m", "gguf": "o.gguf"},
               export_cli.options_from_args, set()),
    "report": (["report", "d"], ReportOptions, {"folders": ["d"]}, report_cli.options_from_args, set()),
    "generate": (["generate", "--model", "m", "--prompt", "p"], GenerateOptions, {}, generate_cli.options_from_args,
                 set()),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_has_a_flag_with_the_same_default(command):
    argv, cls, required, build, carried = COMMANDS[command]
    args = build_parser().parse_args(argv)
    assert {f.name for f in dataclasses.fields(cls)} - carried <= set(vars(args))
    assert build(args) == cls(**required)


def test_flags_parse_to_the_fields_they_name():
    args = build_parser().parse_args(["heal", "--model", "m", "--corpus", "a", "b", "--tokens", "100", "--no-progress",
                                      "--lr", "0.5", "--eval", "e", "--mode", "alm"])
    assert heal_cli.options_from_args(args) == HealOptions(model="m", corpus=["a", "b"], tokens=100, progress=False,
                                                          lr=0.5, eval=["e"], mode="alm")
    args = build_parser().parse_args(["transplant", "--model", "m", "--tokenizer", "t", "--out", "o", "--eval", "a", "b",
                                      "--eval-max-bytes", "500", "--push-to-hub", "me/x", "--public"])
    assert transplant_cli.options_from_args(args) == TransplantOptions(
        model="m", tokenizer="t", out="o", eval=["a", "b"], eval_max_bytes=500, push_to_hub="me/x", public=True)
    args = build_parser().parse_args(["export", "--model", "m", "--gguf", "o.gguf", "--dtype", "q8_0", "--overwrite"])
    assert export_cli.options_from_args(args) == ExportOptions(model="m", gguf="o.gguf", dtype="q8_0", overwrite=True)
    args = build_parser().parse_args(["report", "a", "b"])
    assert report_cli.options_from_args(args) == ReportOptions(folders=["a", "b"])
    with pytest.raises(SystemExit):  # --steps and --tokens exclude each other
        build_parser().parse_args(["heal", "--model", "m", "--corpus", "c", "--steps", "3", "--tokens", "9"])


def test_help_comes_from_the_field_comment_and_shows_the_default():
    @dataclasses.dataclass
    class Demo:
        k: int = 4            # atoms per token
                              # (100% of them)
        name: str | None = None  # optional; no default shown
        # a block comment at the fields' indent belongs to no field
        on: bool = False      # switch it on
        keep: bool = True     # keep it
        pairs: dict = dataclasses.field(default_factory=dict)

    assert field_comments(Demo) == {"k": "atoms per token (100% of them)", "name": "optional; no default shown",
                                    "on": "switch it on", "keep": "keep it"}
    parser = argparse.ArgumentParser()
    add_option_flags(parser, Demo, skip={"pairs"}, flags={"keep": "--no-keep"})
    text = parser.format_help()
    assert "atoms per token (100% of them) (default: 4)" in " ".join(text.split())
    assert options_from_args(parser.parse_args(["--k", "7", "--on", "--no-keep"]), Demo, pairs={"a": 1}) == \
        Demo(k=7, on=True, keep=False, pairs={"a": 1})
    with pytest.raises(TypeError, match="no flag for type"):
        add_option_flags(argparse.ArgumentParser(), Demo)  # a dict field must be skipped and filled by hand
