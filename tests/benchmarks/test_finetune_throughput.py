"""benchmarks/finetune_throughput.py: real review batches, dynamic padding, argument checks;
benchmarks/encoder_inference.py and profile_pretrain_step.py: their argument checks and labels."""

import os

import numpy as np
import pytest
from benchmark_scripts import load_benchmark as load


@pytest.fixture(scope="module")
def finetune():
    return load("finetune_throughput")


def test_batches_are_real_reviews_each_padded_to_its_longest(finetune):
    batches = finetune.review_batches(batch_size=4, num_batches=3)
    assert len(batches) == 3
    lengths = set()
    for inputs, labels in batches:
        mask = inputs["input_mask"]
        assert mask.shape[0] == 4 and labels.shape == (4,)
        assert set(np.unique(labels)) <= {0, 1}
        # Dynamic padding: the longest row fills the batch, no column is all padding.
        assert mask.sum(axis=1).max() == mask.shape[1]
        assert (inputs["input_word_ids"][:, 0] == 101).all()  # [CLS] from the packaged vocabulary
        lengths.add(mask.shape[1])
    assert len(lengths) > 1  # real reviews vary in length


def test_too_many_batches_for_the_file_are_refused(finetune):
    with pytest.raises(ValueError, match="reviews"):
        finetune.review_batches(batch_size=1000, num_batches=100)


@pytest.mark.parametrize("argv, message", [
    (["--precisions", "float16"], "--precisions"),
    (["--rounds", "0"], "--rounds"),
])
def test_finetune_bad_arguments_are_refused(finetune, argv, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        finetune.main(argv + ["--output-dir", str(tmp_path)])
    assert not os.listdir(tmp_path)


def test_profile_labels_ops_by_model_direction_and_part():
    profile = load("profile_pretrain_step")
    assert profile.part_of(
        "gradient_tape/electra_discriminator/discriminator_encoder/transformer_layer/dropout/"
        "dropout/Mul:Mul") == "discriminator/backward/dropout"
    assert profile.part_of("electra_generator/generator_encoder/transformer_layer/qkv/"
                           "BiasAdd:_MklNativeFusedMatMul") == "generator/forward/qkv"
    assert profile.part_of("AdamW/mul:Mul") == "step/forward/Adam"


@pytest.mark.parametrize("flag", ["--inter-op-threads", "--intra-op-threads", "--batch-parts"])
def test_profile_bad_thread_count_is_refused_before_anything_is_written(flag, tmp_path):
    profile = load("profile_pretrain_step")
    with pytest.raises(ValueError, match=f"{flag} must be ≥ 1; received 0"):
        profile.main([flag, "0", "--output-dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_profile_without_a_trace_says_so(tmp_path):
    profile = load("profile_pretrain_step")
    with pytest.raises(ValueError, match="No profiler trace"):
        profile.op_times(str(tmp_path), steps=1)
