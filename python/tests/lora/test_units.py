"""Pure pieces of the trainer, without subprocesses."""

import json

import pytest

from archloop.lora.data import read_pairs, to_row
from archloop.lora.job import JobError, read_job
from archloop.lora.model import existing_targets


def test_targets_match_by_last_name_component():
    names = ["model.layers.0.self_attn.q_proj", "model.layers.0.mlp.up_proj", "lm_head"]
    assert existing_targets(names, ["q_proj", "up_proj", "c_attn"]) == (["q_proj", "up_proj"], ["c_attn"])


def test_row_trains_on_last_assistant_turn():
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]
    assert to_row(messages) == {"prompt": messages[:3], "completion": messages[3:]}


def test_pairs_file_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "only a question"}]}\n')
    with pytest.raises(JobError, match="no assistant turn") as e:
        read_pairs(bad)
    assert e.value.error_class == "bad-job"
    bad.write_text("{nope\n")
    with pytest.raises(JobError, match=":1: not JSON"):
        read_pairs(bad)
    with pytest.raises(JobError) as e:
        read_pairs(tmp_path / "absent.jsonl")
    assert e.value.fields == {"field": "pairsFile"}


def test_job_validation_names_the_field(tmp_path):
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"baseModel": "x"}))
    with pytest.raises(JobError) as e:
        read_job(path)
    assert e.value.error_class == "bad-job" and e.value.fields["field"] == "pairsFile"
