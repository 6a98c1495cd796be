"""Pure pieces of the trainer, without subprocesses."""

import json

import pytest

from archloop.lora.data import read_pairs, to_pair, tokenize_pair, tokenize_pairs
from archloop.lora.job import JobError, read_job
from archloop.lora.model import existing_targets


def test_targets_match_by_last_name_component():
    names = ["model.layers.0.self_attn.q_proj", "model.layers.0.mlp.up_proj", "lm_head"]
    assert existing_targets(names, ["q_proj", "up_proj", "c_attn"]) == (["q_proj", "up_proj"], ["c_attn"])


def test_a_closed_conversation_trains_on_its_last_assistant_turn():
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]
    assert to_pair({"messages": messages}, "x") == {"messages": messages[:3], "completion": "d"}
    prefilled = messages[:3] + [{"role": "assistant", "content": "pre"}]
    assert to_pair({"messages": prefilled, "completion": "d"}, "x") == {"messages": prefilled, "completion": "d"}


@pytest.fixture(scope="module")
def word_tokenizer():
    from archloop.llm.synthetic import make_tokenizer

    return make_tokenizer(128)


def test_loss_covers_only_what_the_model_writes_after_the_prefill(word_tokenizer):
    pair = {"messages": [{"role": "user", "content": "w1 w2"}, {"role": "assistant", "content": "w3 w4"}],
            "completion": " w5 w6"}
    row = tokenize_pair(word_tokenizer, pair)
    sampled = word_tokenizer.apply_chat_template(pair["messages"][:1], tokenize=False, add_generation_prompt=True)
    prompt_ids = word_tokenizer(sampled + "w3 w4", add_special_tokens=False)["input_ids"]
    # The prompt is exactly the sampling request's tokens (the prefill included), masked.
    assert row["input_ids"][:len(prompt_ids)] == prompt_ids
    assert row["labels"][:len(prompt_ids)] == [-100] * len(prompt_ids)
    learned = [t for t, label in zip(row["input_ids"], row["labels"]) if label != -100]
    assert word_tokenizer.decode(learned) == "w5 w6 <|im_end|>"  # the code, then the end of the turn
    assert row["completion_mask"] == [0 if label == -100 else 1 for label in row["labels"]]


def test_pairs_longer_than_max_len_are_left_out_and_counted(word_tokenizer):
    short = {"messages": [{"role": "user", "content": "w1"}], "completion": "w2"}
    long = {"messages": [{"role": "user", "content": " ".join(["w1"] * 40)}], "completion": "w2"}
    rows, skipped = tokenize_pairs(word_tokenizer, [short, long, short], max_len=20)
    assert len(rows) == 2 and skipped == 1
    with pytest.raises(JobError, match="longer than maxSeqLen"):
        tokenize_pairs(word_tokenizer, [long], max_len=20)


def test_pairs_file_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "only a question"}]}\n')
    with pytest.raises(JobError, match="no assistant turn") as e:
        read_pairs(bad)
    assert e.value.error_class == "bad-job"
    bad.write_text('{"messages": [{"role": "user", "content": "q"}], "completion": ""}\n')
    with pytest.raises(JobError, match="'completion' must be a non-empty string"):
        read_pairs(bad)
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
