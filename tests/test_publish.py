"""Model card and hub push: the card's facts come from the folder's records; a push is private by
default, uploads the folder as written, and fails with a clear error that loses nothing."""
from __future__ import annotations

import json
import shlex

import pytest

from arch_fixtures import FAMILIES, transplant_family
from test_heal_helpers import one_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    _, _, out = transplant_family(FAMILIES["llama"], tmp_path_factory.mktemp("card"), method="fvt",
                                  corpus="libreoffice:fr:train", seed=3)
    return out


def test_card_has_base_tokenizer_method_counts_and_command(folder):
    from tokengraft.publish.card import model_card

    card = model_card(folder)
    record = json.loads((folder / "transplant.json").read_text())
    assert card.startswith("---\nlibrary_name: transformers\n") and "language:\n- fr" in card
    assert f"**{record['base_model']}**" in card and f"**{record['tokenizer']}**" in card and "**fvt**" in card
    assert f"{record['summary']['copied_share']:.1%} of the new tokens were copied" in card
    command = next(line for line in card.splitlines() if line.startswith("tokengraft transplant"))
    argv = shlex.split(command)
    assert argv[argv.index("--method") + 1] == "fvt" and argv[argv.index("--seed") + 1] == "3"
    assert argv[argv.index("--out") + 1] == str(folder) and "--device" not in argv  # defaults are left out
    assert "Not measured in this folder" in card


def test_card_reads_before_and_after_from_every_record(folder, tmp_path):
    import shutil

    from tokengraft.publish.card import model_card

    healed = tmp_path / "healed"
    shutil.copytree(folder, healed)
    record = json.loads((healed / "transplant.json").read_text())
    record["eval"] = [{"corpus": "libreoffice:fr:heldout", "before": {"bpb": 1.2, "tokens_per_byte": 0.33},
                       "after": {"bpb": 1.5, "tokens_per_byte": 0.25}}]
    (healed / "transplant.json").write_text(json.dumps(record))
    (healed / "heal.json").write_text(json.dumps({
        "options": {"model": str(folder), "corpus": ["libreoffice:fr:train"], "mode": "alm", "steps": 20},
        "steps": 20, "tokens_seen": 20480,
        "eval_curve": [{"tokens": 0, "bpb": {"libreoffice:fr:heldout": 1.5}, "tokens_per_byte": {}},
                       {"tokens": 20480, "bpb": {"libreoffice:fr:heldout": 1.4}, "tokens_per_byte": {}}]}))
    (healed / "eval-fr.json").write_text(json.dumps({"corpora": [{"name": "libreoffice:fr:heldout", "bpb": 1.41,
                                                                   "tokens_per_byte": 0.25}]}))
    card = model_card(healed)
    assert "| libreoffice:fr:heldout | transplant | 1.2000 | 1.5000 | 1.250 | 0.3300 | 0.2500 |" in card
    assert "| libreoffice:fr:heldout | heal | 1.5000 | 1.4000 | 0.933 |" in card
    assert "| libreoffice:fr:heldout | eval (eval-fr.json) | - | 1.4100 | - | - | 0.2500 |" in card
    assert "tokengraft heal --model" in card and "--mode alm" in card and "mode **alm**, 20 steps" in card


def test_every_transplant_folder_has_a_card(folder):
    text = (folder / "README.md").read_text()
    assert text.startswith("---") and "tokengraft transplant" in text


class FakeApi:
    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, private=None, exist_ok=False):
        self.calls.append(("create", repo_id, private))
        return f"https://hub.example/{repo_id}"

    def upload_folder(self, repo_id, folder_path, commit_message=None):
        from pathlib import Path

        self.calls.append(("upload", repo_id, sorted(p.name for p in Path(folder_path).iterdir())))


def test_push_is_private_by_default_and_uploads_the_folder_as_written(folder):
    from tokengraft.publish.hub import push_folder

    api = FakeApi()
    assert push_folder(folder, "me/model", api=api) == "https://hub.example/me/model"
    assert api.calls[0] == ("create", "me/model", True)
    uploaded = api.calls[1][2]
    assert {"README.md", "config.json", "model.safetensors", "transplant.json", "tokenizer.json"} <= set(uploaded)
    public = FakeApi()
    push_folder(folder, "me/model", public=True, api=public)
    assert public.calls[0] == ("create", "me/model", False)


@pytest.mark.parametrize("offline", [True, False])
def test_unreachable_hub_is_a_clear_error_that_loses_nothing(folder, offline, monkeypatch):
    from huggingface_hub import HfApi, constants

    from tokengraft.errors import TokengraftError
    from tokengraft.publish.hub import push_folder

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    before = sorted(p.name for p in folder.iterdir())
    api = HfApi(endpoint="http://127.0.0.1:9", token="hf_not_a_token")  # nothing listens on port 9
    with pytest.raises(TokengraftError) as err:
        push_folder(folder, "me/model", api=api)
    message = str(err.value)
    assert "could not push to the hub repository me/model" in message and "\n" not in message
    assert ("offline mode" in message) == offline and (offline or "Connect" in message)
    assert f"the folder is complete at {folder}; push it later with: hf upload me/model {folder} . --private" in message
    assert sorted(p.name for p in folder.iterdir()) == before


def test_bad_repo_id_and_missing_folder(tmp_path, folder):
    from tokengraft.errors import TokengraftError
    from tokengraft.publish.hub import push_folder

    with pytest.raises(TokengraftError, match="user/name"):
        push_folder(folder, "no-slash", api=FakeApi())
    with pytest.raises(TokengraftError, match="not a model folder"):
        push_folder(tmp_path / "missing", "me/model", api=FakeApi())


FOLDER_FILES = {"README.md", "config.json", "model.safetensors", "tokenizer.json", "transplant.json",
                "transplant_tokens.jsonl"}


def test_transplant_eval_and_push_to_hub_end_to_end(tmp_path, capsys):
    """--eval records before/after in transplant.json and the card; --push-to-hub fails (no hub here)
    with one clear line after the folder is complete."""
    from arch_fixtures import base_model
    from tokengraft.cli.main import main
    from transplant_fixtures import NEW_TEXT

    family = FAMILIES["llama"]
    model, tok = base_model(family)
    model.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    family.new_tokenizer().save_pretrained(tmp_path / "new")
    (tmp_path / "held.txt").write_text(NEW_TEXT * 2)
    out = tmp_path / "out"
    argv = ["transplant", "--model", str(tmp_path / "base"), "--tokenizer", str(tmp_path / "new"), "--method", "fvt",
            "--out", str(out), "--eval", str(tmp_path / "held.txt"), "--push-to-hub", "me/tiny-fr"]
    assert main(argv) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: could not push to the hub repository me/tiny-fr")
    assert FOLDER_FILES <= {p.name for p in out.iterdir()}
    record = json.loads((out / "transplant.json").read_text())
    (entry,) = record["eval"]
    assert entry["corpus"] == str(tmp_path / "held.txt") and entry["before"]["bpb"] > 0 and entry["after"]["bpb"] > 0
    assert record["options"]["push_to_hub"] == "me/tiny-fr" and record["options"]["public"] is False
    card = (out / "README.md").read_text()
    assert f"| {tmp_path / 'held.txt'} | transplant | {entry['before']['bpb']:.4f} | {entry['after']['bpb']:.4f} |" in card
    assert "--push-to-hub me/tiny-fr" in card and "--eval" in card


def test_heal_writes_a_card_and_push_fails_after_saving(tmp_path):
    from test_heal_helpers import build_world

    from tokengraft.errors import TokengraftError
    from tokengraft.heal import HealOptions, heal

    world = build_world(tmp_path / "world")
    out = tmp_path / "healed"
    options = HealOptions(model=str(world["student"]), corpus=[str(world["corpus"])], steps=2, seq_len=32,
                          batch_size=2, save_every=0, eval=[str(world["heldout"])], eval_every=0, eval_max_bytes=2000,
                          out=str(out), progress=False, push_to_hub="me/healed")
    with pytest.raises(TokengraftError, match="could not push to the hub repository me/healed"):
        heal(options)
    assert {"README.md", "heal.json", "config.json", "model.safetensors"} <= {p.name for p in out.iterdir()}
    card = (out / "README.md").read_text()
    assert "| heal |" in card and "tokengraft heal --model" in card and "--push-to-hub me/healed" in card


def test_record_eval_adds_measurements_and_refreshes_the_card(folder, tmp_path):
    import shutil

    from tokengraft.publish.evaluate import eval_entries, record_eval

    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    before = {"fr": {"bpb": 1.2, "tokens_per_byte": 0.3, "bytes": 100}}
    after = {"fr": {"bpb": 1.5, "tokens_per_byte": 0.2, "bytes": 100}}
    record_eval(copy, eval_entries(before, after))
    record_eval(copy, eval_entries(before, after))  # the same corpus again replaces, never duplicates
    assert json.loads((copy / "transplant.json").read_text())["eval"] == [
        {"corpus": "fr", "bytes": 100, "before": {"bpb": 1.2, "tokens_per_byte": 0.3},
         "after": {"bpb": 1.5, "tokens_per_byte": 0.2}}]
    assert "| fr | transplant | 1.2000 | 1.5000 | 1.250 | 0.3000 | 0.2000 |" in (copy / "README.md").read_text()
