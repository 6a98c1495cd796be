"""The train pipeline in-process on the synthetic dataset."""
import base64

import numpy as np

from archloop.runner.datasets import cache

from .conftest import inner_request
from .corpus import CONSTANT, EVAL_ERROR, FLAT, NAN_LOSS, SIMPLE, SLOW_LEARN, TRAIN_ERROR


def accuracy(result, synthetic):
    labels = cache.read_test_labels(synthetic[1])
    predictions = np.frombuffer(base64.b64decode(result.predictions_b64), dtype=np.uint8)
    assert len(predictions) == len(labels)
    return float((predictions == labels).mean())


def test_small_cnn_learns_above_chance(train_inprocess, synthetic):
    result, events = train_inprocess(SIMPLE, training={"max_train_images": 0})
    assert result.ok, result.failure
    assert accuracy(result, synthetic) > 0.3  # chance is 0.1
    assert result.train_images == 2048
    assert result.loss.steps == 128 and result.loss.non_finite == 0
    assert result.loss.last < result.loss.first
    assert result.timings["trainS"] > 0 and result.timings["imagesPerS"] > 0
    assert result.device == "cpu" and result.bf16 is False
    assert [stage for stage, _ in events][:2] == ["import", "learn"]


def test_training_is_seeded(train_inprocess):
    first, _ = train_inprocess(SIMPLE)
    second, _ = train_inprocess(SIMPLE)
    assert first.predictions_b64 == second.predictions_b64
    third, _ = train_inprocess(SIMPLE, training={"seed": 7})
    assert third.predictions_b64 != first.predictions_b64


def test_nan_loss_is_classified(train_inprocess):
    result, _ = train_inprocess(NAN_LOSS)
    assert result.failure.failure_class == "nan-loss", result.failure
    assert result.loss.non_finite > 0


def test_over_time_learn_is_a_timeout(train_inprocess):
    result, _ = train_inprocess(SLOW_LEARN, training={"time_limit_s": 0.3})
    assert result.failure.failure_class == "timeout"
    assert "time limit" in result.failure.message


def test_errors_in_learn_and_eval(train_inprocess):
    assert train_inprocess(TRAIN_ERROR)[0].failure.failure_class == "train-error"
    assert train_inprocess(EVAL_ERROR)[0].failure.failure_class == "eval-error"


def test_max_train_images_caps_the_epoch(train_inprocess):
    result, _ = train_inprocess(SIMPLE, training={"max_train_images": 64})
    assert result.train_images == 64


def test_constant_model_predicts_one_class(train_inprocess, synthetic):
    result, _ = train_inprocess(CONSTANT)
    assert result.ok
    assert accuracy(result, synthetic) < 0.12


def test_a_resized_run_trains_and_evaluates_at_its_shape(synthetic, tmp_path, torch_threads):
    """FLAT's forward accepts only the in_shape it was built for: train and eval batches are 48×48."""
    from archloop.runner import train
    from archloop.runner.datasets import registry

    section, directory, spec = synthetic
    request = inner_request("train", FLAT, (section, directory, registry.as_seen(spec, 48)), tmp_path,
                            training={"max_train_images": 128})
    result = train.run(request, lambda *a, **k: None)
    assert result.ok, result.failure
    assert result.train_images == 128 and accuracy(result, synthetic) > 0  # every test image predicted


def test_eval_batches_hold_as_many_pixels_when_resized(synthetic):
    from archloop.runner.datasets import registry
    from archloop.runner.train import eval_batch_size

    spec = synthetic[2]
    assert eval_batch_size(spec) == 500 and eval_batch_size(registry.as_seen(spec, 28)) == 500
    assert eval_batch_size(registry.as_seen(spec, 256)) == 7 and eval_batch_size(registry.as_seen(spec, 1024)) == 1
