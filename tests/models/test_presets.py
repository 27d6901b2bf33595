import pytest

from electra_tf import ElectraDiscriminator, ElectraEncoder, ElectraGenerator
from electra_tf.models.presets import PRESETS, _parameter_count, build_from_preset, get_preset

# Published ELECTRA discriminator sizes (the paper / released checkpoints).
PUBLISHED = {"small": 13.48e6, "base": 108.9e6, "large": 334.1e6}


@pytest.mark.parametrize("preset", ["small", "base"])
def test_discriminator_parameter_counts_within_one_percent(preset):
    model = ElectraDiscriminator.from_preset(preset)
    assert abs(model.count_params() - PUBLISHED[preset]) / PUBLISHED[preset] < 0.01
    assert abs(model.encoder.count_params() - PUBLISHED[preset]) / PUBLISHED[preset] < 0.001


def test_large_parameter_count_from_sizes():
    # Building Large (335M weights) is slow on CI; the size formula is checked
    # against real models below, so it stands in for Large here.
    count = _parameter_count(get_preset("large", "discriminator"), "discriminator")
    assert abs(count - PUBLISHED["large"]) / PUBLISHED["large"] < 0.01


@pytest.mark.parametrize("preset", ["tiny", "small", "small_paper"])
@pytest.mark.parametrize("part", ["discriminator", "generator"])
def test_size_formula_matches_built_models(preset, part):
    model = build_from_preset(preset, part)
    assert model.count_params() == _parameter_count(get_preset(preset, part), part)


def test_small_generators_released_full_width_paper_quarter_width():
    released = ElectraGenerator.from_preset("small")
    paper = ElectraGenerator.from_preset("small_paper")
    assert released.encoder.hidden_size == 256
    assert paper.encoder.hidden_size == 64 and paper.encoder.num_heads == 1
    assert paper.encoder.intermediate_size == 256 and paper.encoder.embedding_size == 128


def test_base_generator_shares_768_wide_embeddings():
    config = get_preset("base", "generator")
    assert (config.hidden_size, config.embedding_size) == (256, 768)


def test_preset_tie_and_overrides():
    discriminator = ElectraDiscriminator.from_preset("tiny")
    generator = ElectraGenerator.from_preset(
        "tiny", embedding_layer=discriminator.encoder.embedding_layer, dropout_rate=0.0
    )
    assert generator.encoder.embedding_layer is discriminator.encoder.embedding_layer
    assert generator.encoder.dropout_rate == 0.0
    assert ElectraEncoder.from_preset("tiny", num_layers=1).num_layers == 1


def test_unknown_preset_and_config_key():
    with pytest.raises(ValueError, match="Unknown preset 'medium'"):
        ElectraEncoder.from_preset("medium")
    with pytest.raises(ValueError, match="Unknown ELECTRA config keys \\['num_hidden_layers'\\]"):
        ElectraEncoder.from_preset("tiny", num_hidden_layers=3)
    assert set(PRESETS) == {"tiny", "small", "small_paper", "base", "large"}
