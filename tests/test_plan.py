"""The input plan: every method's needs resolved against what is given, before anything loads."""
from __future__ import annotations

import json
import logging

import pytest

from tokengraft.errors import TokengraftError
from tokengraft.transplant.auxiliary import PROVIDERS
from tokengraft.transplant.auxiliary.continuation import ContinuationOptions
from tokengraft.transplant.auxiliary.vocab_strings import VocabStringsOptions
from tokengraft.transplant.auxiliary.providers import MAX_TOKEN_BYTES
from tokengraft.transplant.methods import METHODS
from tokengraft.transplant.methods.graft import GraftOptions
from tokengraft.transplant.options import TransplantOptions
from tokengraft.transplant.plan import GIVEN_VECTORS, Given, plan_inputs, plan_transplant

EVERYTHING = Given(donor=True, aux=True, corpus=True)


def test_every_method_plans_with_everything_given():
    """What each built-in method gets when a donor, an embedder and a corpus are all offered."""
    got = {name: (p.space, p.providers, p.corpus, p.corpus_bytes)
           for name in sorted(METHODS) if not name.startswith("tg-")
           for p in [plan_inputs(name, EVERYTHING)]}
    assert got == {
        "fvt": (None, (), "none", None), "wvt": (None, (), "none", None), "mean": (None, (), "none", None),
        "random": (None, (), "none", None),
        "omp": ("donor", (), "none", None),
        "tokenadapt": ("strings", ("strings",), "none", None),  # an embedder, no corpus
        "focus": ("static", ("static",), "required", None),
        "wechsel": ("bilingual", ("bilingual",), "required", None),
        # graft reads the corpus's first MB: its first tokens are the continuations' context, its
        # new tokens' counts choose which continuations are measured
        "graft": ("vocab-strings", ("vocab-strings", "continuation"), "optional", ContinuationOptions().rank_bytes),
        "hypernet": (None, ("hypernet",), "none", None),  # the trained network, from --hypernet DIR
        "transtok": (None, ("parallel",), "optional", None),  # the corpus's English pages, or two files
    }


def test_omp_without_a_donor_works_in_an_embedders_space():
    plan = plan_inputs("omp", Given(aux=True))
    assert (plan.space, plan.providers, plan.corpus) == ("strings", ("strings",), "none")
    assert plan_inputs("omp", Given(vectors=True)).space == GIVEN_VECTORS  # vectors computed by the caller
    with pytest.raises(TokengraftError, match=r"^method omp needs --donor SPEC \(a model that already uses the new"
                                              r" tokenizer\) or --aux SPEC \(an embedder, e.g. minilm-l6\)$"):
        plan_inputs("omp", Given(corpus=True))


def test_missing_corpus_is_an_error_and_a_default_corpus_counts():
    with pytest.raises(TokengraftError, match="method focus needs --corpus CORPUS"):
        plan_inputs("focus", Given())
    assert plan_inputs("focus", Given(default_corpus=True)).corpus == "required"
    assert plan_inputs("focus", Given(vectors=True)).providers == ()  # the space is given: no corpus read


def test_unused_inputs_are_warned_about(caplog):
    with caplog.at_level(logging.WARNING, logger="tokengraft.transplant.plan"):
        plan = plan_inputs("tokenadapt", EVERYTHING)
    assert plan.corpus == "none"
    assert [r.getMessage() for r in caplog.records] == [
        "method tokenadapt does not use a donor here; ignoring --donor",
        "method tokenadapt reads no corpus; ignoring --corpus",
    ]


def test_options_go_to_the_method_or_to_the_provider_that_has_them():
    plan = plan_inputs("graft", Given(), {"exact": 0.25, "semantic": 0.4, "max_pieces": 4, "continuation.limit": 10})
    assert plan.options == GraftOptions(semantic=0.4, exact=0.25)
    assert plan.provider_options == {"continuation": ContinuationOptions(max_pieces=4, limit=10),
                                     "vocab-strings": VocabStringsOptions()}
    plan = plan_inputs("graft", Given(), {"old_strings": "all", "precision": "float32"})
    assert plan.provider_options == {"continuation": ContinuationOptions(precision="float32"),
                                     "vocab-strings": VocabStringsOptions(old_strings="all")}
    plan = plan_inputs("graft", Given(), {"prefix_tokens": 8, "order": "id"})
    assert plan.corpus_bytes == 8 * MAX_TOKEN_BYTES  # how much corpus follows the provider's options
    plan = plan_inputs("graft", Given(), {"prefix_tokens": 8, "rank_bytes": 5000})
    assert plan.corpus_bytes == 5000
    with pytest.raises(TokengraftError, match=r"method graft has no option k; its options are: calibrate_copied, continuation\.batch_nodes"):
        plan_inputs("graft", Given(), {"k": 3})
    with pytest.raises(TokengraftError, match="method fvt has no option k; its options are: fallback$"):
        plan_inputs("fvt", Given(), {"k": 3})


def test_an_encoder_runs_no_provider_that_needs_the_causal_lm():
    assert PROVIDERS["continuation"].model
    plan = plan_inputs("graft", Given(), kind="encoder")
    assert plan.providers == ("vocab-strings",) and plan.corpus == "none"


def test_plan_transplant_defaults_to_the_tokenizers_training_corpus(tmp_path):
    (tmp_path / "tokengraft_train.json").write_text(json.dumps({"corpora": ["libreoffice:fr:train"]}))
    assert plan_transplant(TransplantOptions("m", str(tmp_path), method="focus")).corpus_spec == "libreoffice:fr:train"
    assert plan_transplant(TransplantOptions("m", str(tmp_path), method="fvt")).corpus_spec is None
    given = TransplantOptions("m", str(tmp_path), method="graft", corpus="libreoffice:de:dev")
    assert plan_transplant(given).corpus_spec == "libreoffice:de:dev"
    # a corpus given to a method that reads none is not loaded
    assert plan_transplant(TransplantOptions("m", "t", method="tokenadapt", corpus="c")).corpus_spec is None
