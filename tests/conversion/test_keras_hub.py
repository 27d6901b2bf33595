"""keras-hub (Keras 3) ELECTRA presets ⇄ electra_tf: exact weights, measured output differences.

keras-hub needs Keras 3 and this process runs tf-keras, so everything keras-hub
does runs in one subprocess (keras_hub_worker.py, started once per session):
it builds and saves presets with keras-hub itself (random weights), and loads
the presets we wrote, measures outputs on real text (Persuasion, held out; the
movie reviews for accents) and fine-tunes a `TextClassifier` step.
"""

import gzip
import importlib.util
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from electra_tf import ElectraDiscriminator, ElectraEncoder, ElectraGenerator
from electra_tf.cli.main import main as cli_main
from electra_tf.conversion import keras_hub as conversion
from electra_tf.data.packaged_corpus import packaged_corpus, packaged_sentiment
from electra_tf.preprocessing.electra_tokenizer import DEFAULT_VOCAB_PATH, ElectraTokenizer

WORKER = os.path.join(os.path.dirname(__file__), "keras_hub_worker.py")
SEQUENCE_LENGTH = 40
VOCAB_SIZE = 30522  # the packaged uncased vocabulary: real text needs real ids
# float32 rounding between two implementations of the same function (observed ~1e-6).
SAME_FUNCTION_TOLERANCE = 1e-5

# Presets keras-hub builds: embeddings projected (E != H) and not (E == H, pooler in layers/dense).
KERAS_HUB_PRESETS = {
    "hub_projected": dict(vocab_size=VOCAB_SIZE, num_layers=2, num_heads=4, hidden_dim=32,
                          embedding_dim=16, intermediate_dim=64, max_sequence_length=64),
    "hub_square": dict(vocab_size=VOCAB_SIZE, num_layers=3, num_heads=2, hidden_dim=24,
                       embedding_dim=24, intermediate_dim=48, max_sequence_length=48,
                       num_segments=3),
}
# Models we write: a discriminator (E != H) and a bare encoder (E == H).
OUR_SIZES = {
    "ours_discriminator": dict(vocab_size=VOCAB_SIZE, hidden_size=32, num_layers=2, num_heads=4,
                               intermediate_size=64, embedding_size=16, max_sequence_length=64),
    "ours_encoder": dict(vocab_size=VOCAB_SIZE, hidden_size=24, num_layers=2, num_heads=3,
                         intermediate_size=48, max_sequence_length=48),
}

needs_keras_hub = pytest.mark.skipif(importlib.util.find_spec("keras_hub") is None,
                                     reason="keras-hub is not installed")


def randomize(model, seed):
    """Non-trivial values everywhere (LayerNorm starts at 1/0, biases at 0)."""
    rng = np.random.default_rng(seed)
    model.set_weights([
        (rng.normal(size=w.shape) * 0.2 + (1.0 if "gamma" in w.name else 0.0)).astype("float32")
        for w in model.weights
    ])
    return model


def persuasion_paragraphs(count):
    with gzip.open(packaged_corpus("held_out"), "rt", encoding="utf-8") as f:
        text = f.read()  # lines wrapped at 73 characters, paragraphs apart
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n") if len(p) > 150]
    return paragraphs[20:20 + count]


def accented_reviews():
    """The movie-review sentences with non-ASCII characters (accents, ½, dashes, quotes)."""
    with open(packaged_sentiment("train"), encoding="utf-8") as f:
        return [line.split("\t", 1)[1].strip() for line in f
                if "\t" in line and any(ord(c) > 127 for c in line)]


def our_outputs(encoder, arrays):
    return encoder({"input_word_ids": arrays["token_ids"], "input_mask": arrays["padding_mask"],
                    "input_type_ids": arrays["segment_ids"]})["sequence_output"].numpy()


def max_difference(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


@pytest.fixture(scope="module")
def keras_hub_run(tmp_path_factory):
    """Writes our presets, runs the Keras 3 worker once; returns paths, models and results."""
    root = tmp_path_factory.mktemp("keras_hub")
    ours = {}
    discriminator = ElectraDiscriminator(ElectraEncoder(**OUR_SIZES["ours_discriminator"]))
    ours["ours_discriminator"] = randomize(discriminator, 1).encoder
    discriminator.save_keras_hub(str(root / "ours_discriminator"))
    ours["ours_encoder"] = randomize(ElectraEncoder(**OUR_SIZES["ours_encoder"]), 2)
    ours["ours_encoder"].save_keras_hub(str(root / "ours_encoder"))
    texts = persuasion_paragraphs(12)
    tokenizer_texts = texts + accented_reviews()
    job = {
        "texts": texts,
        "tokenizer_texts": tokenizer_texts,
        "vocab": DEFAULT_VOCAB_PATH,
        "sequence_length": SEQUENCE_LENGTH,
        "make": [{"dir": str(root / name), "sizes": sizes, "seed": seed}
                 for seed, (name, sizes) in enumerate(KERAS_HUB_PRESETS.items())],
        "load": [str(root / name) for name in OUR_SIZES],
        "output": str(root),
    }
    with open(root / "job.json", "w") as f:
        json.dump(job, f)
    env = {key: value for key, value in os.environ.items() if key != "TF_USE_LEGACY_KERAS"}
    env.update(KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, WORKER, str(root / "job.json")], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    with open(root / "summary.json") as f:
        summary = json.load(f)
    arrays = {name: dict(np.load(root / f"{name}.npz"))
              for name in [*KERAS_HUB_PRESETS, *OUR_SIZES]}
    return {"root": root, "ours": ours, "summary": summary, "arrays": arrays,
            "texts": texts, "tokenizer_texts": tokenizer_texts}


def report(name, **figures):
    """Measured figures, shown with `pytest -s` (README quotes them)."""
    print(f"\n[keras-hub parity] {name}: " + ", ".join(f"{k}={v:.3g}" for k, v in figures.items()))


# === Out: our models → keras-hub ===


@needs_keras_hub
@pytest.mark.parametrize("name", list(OUR_SIZES))
def test_keras_hub_backbone_computes_our_encoder(keras_hub_run, name):
    """keras-hub loads what we wrote; with exact GELU swapped in it computes our outputs."""
    arrays = keras_hub_run["arrays"][name]
    ours = our_outputs(keras_hub_run["ours"][name], arrays)
    exact = max_difference(ours, arrays["sequence_output_exact_gelu"])
    tanh = max_difference(ours, arrays["sequence_output"])
    report(f"out {name}", exact_gelu=exact, keras_hub_tanh_gelu=tanh,
           worker_seconds=max(keras_hub_run["summary"]["seconds"].values()))
    assert exact <= SAME_FUNCTION_TOLERANCE  # the weights arrived exactly
    # keras-hub's GELU is not ELECTRA's, and that is the whole of the difference.
    assert tanh > 10 * exact


@needs_keras_hub
@pytest.mark.parametrize("name", list(OUR_SIZES))
def test_keras_hub_text_classifier_from_our_preset(keras_hub_run, name):
    summary = keras_hub_run["summary"]["presets"][name]
    assert summary["class"] == "ElectraTextClassifier"
    assert summary["preprocessor"] == "ElectraTextClassifierPreprocessor"
    # The preprocessor fits the backbone's positions, not keras-hub's fixed 512.
    assert summary["sequence_length"] == OUR_SIZES[name]["max_sequence_length"]


@needs_keras_hub
def test_keras_hub_text_classifier_fine_tunes_a_step(keras_hub_run):
    summary = keras_hub_run["summary"]["presets"]["ours_discriminator"]
    assert np.isfinite(summary["loss"]) and summary["logits_changed"] > 0


@needs_keras_hub
def test_keras_hub_tokenizer_of_our_preset(keras_hub_run):
    """keras-hub's ids equal ours on the novel; on accented reviews only NFKC characters differ."""
    arrays = keras_hub_run["arrays"]["ours_discriminator"]
    theirs = np.split(arrays["text_ids"], np.cumsum(arrays["text_lengths"])[:-1])
    tokenizer = ElectraTokenizer(lower_case=True)
    texts = keras_hub_run["tokenizer_texts"]
    mine = tokenizer.tokenize(texts).to_list()
    differing = [text for text, a, b in zip(texts, mine, theirs) if a != b.tolist()]
    report("out tokenizer", texts=len(texts), differing=len(differing))
    novel = len(keras_hub_run["texts"])
    assert all(a == b.tolist() for a, b in zip(mine[:novel], theirs[:novel]))
    # Case folding applies NFKC: "½" becomes "1⁄2". Accents are stripped on both sides.
    assert all("½" in text for text in differing)


# === In: keras-hub presets → ours ===


KERAS_WEIGHT_PATHS = {  # our slot name (layer part) → keras-hub weight path, by layer name
    "embeddings/word_embeddings": "token_embedding/embeddings",
    "embeddings/position_embeddings": "position_embedding/embeddings",
    "embeddings/token_type_embeddings": "segment_embedding/embeddings",
    "embeddings/LayerNorm": "embeddings_layer_norm",
    "embeddings_project": "embeddings_projection",
    "attention/self/query": "self_attention_layer/query",
    "attention/self/key": "self_attention_layer/key",
    "attention/self/value": "self_attention_layer/value",
    "attention/output/dense": "self_attention_layer/attention_output",
    "attention/output/LayerNorm": "self_attention_layer_norm",
    "intermediate/dense": "feedforward_intermediate_dense",
    "output/dense": "feedforward_output_dense",
    "output/LayerNorm": "feedforward_layer_norm",
}


def keras_weight_path(name):
    """Independent of the library's h5 layout: keras-hub's own `weight.path`."""
    if name in KERAS_WEIGHT_PATHS:
        return KERAS_WEIGHT_PATHS[name]
    layer, variable = name.rsplit("/", 1)
    if layer.startswith("encoder/layer_"):
        index, layer = layer[len("encoder/layer_"):].split("/", 1)
        return f"transformer_layer_{index}/{KERAS_WEIGHT_PATHS[layer]}/{variable}"
    return f"{KERAS_WEIGHT_PATHS[layer]}/{variable}"


@needs_keras_hub
@pytest.mark.parametrize("name", list(KERAS_HUB_PRESETS))
def test_keras_hub_preset_weights_arrive_exactly(keras_hub_run, name):
    from electra_tf.conversion.weight_slots import encoder_slots

    encoder = ElectraEncoder.from_keras_hub(str(keras_hub_run["root"] / name))
    arrays = keras_hub_run["arrays"][name]
    theirs = {key[len("weight:"):]: value for key, value in arrays.items()
              if key.startswith("weight:")}
    used = set()
    for slot in encoder_slots(encoder):
        for part_name, part in zip(slot.names, slot.split(slot.variable.numpy())):
            path = keras_weight_path(part_name)
            used.add(path)
            assert np.array_equal(part, theirs[path].reshape(part.shape)), part_name
    # Everything but the pooler ELECTRA does not have was taken.
    assert sorted(set(theirs) - used) == ["pooled_dense/bias", "pooled_dense/kernel"]


@needs_keras_hub
@pytest.mark.parametrize("name", list(KERAS_HUB_PRESETS))
def test_keras_hub_preset_outputs(keras_hub_run, name):
    """Ours is the published ELECTRA (exact GELU): equal to keras-hub with exact GELU swapped in."""
    encoder = ElectraEncoder.from_keras_hub(str(keras_hub_run["root"] / name))
    arrays = keras_hub_run["arrays"][name]
    ours = our_outputs(encoder, arrays)
    exact = max_difference(ours, arrays["sequence_output_exact_gelu"])
    tanh = max_difference(ours, arrays["sequence_output"])
    report(f"in {name}", exact_gelu=exact, keras_hub_tanh_gelu=tanh)
    assert exact <= SAME_FUNCTION_TOLERANCE
    assert tanh > 10 * exact


@needs_keras_hub
def test_keras_hub_preset_tokenizer(keras_hub_run):
    """The vocabulary comes along; keras-hub without strip_accents keeps accents, we strip them."""
    path = str(keras_hub_run["root"] / "hub_projected")
    tokenizer = ElectraTokenizer.from_keras_hub(path)
    with open(DEFAULT_VOCAB_PATH, encoding="utf-8") as f:
        assert [tokenizer.id_to_token(i) for i in range(tokenizer.vocab_size)] == \
            f.read().split("\n")[:-1]
    assert tokenizer.lower_case
    arrays = keras_hub_run["arrays"]["hub_projected"]
    theirs = np.split(arrays["text_ids"], np.cumsum(arrays["text_lengths"])[:-1])
    texts = keras_hub_run["tokenizer_texts"]
    mine = tokenizer.tokenize(texts).to_list()
    differing = [text for text, a, b in zip(texts, mine, theirs) if a != b.tolist()]
    report("in tokenizer", texts=len(texts), differing=len(differing))
    novel = len(keras_hub_run["texts"])
    assert all(a == b.tolist() for a, b in zip(mine[:novel], theirs[:novel]))
    assert differing and all(any(ord(c) > 127 for c in text) for text in differing)


@needs_keras_hub
@pytest.mark.parametrize("name", list(KERAS_HUB_PRESETS))
def test_our_files_have_keras_hubs_layout(keras_hub_run, name, tmp_path):
    """Read back and rewritten, a keras-hub preset has keras-hub's files, groups, names and values."""
    original = keras_hub_run["root"] / name
    ElectraEncoder.from_keras_hub(str(original)).save_keras_hub(str(tmp_path / "again"))

    def datasets(path):
        found = {}
        with h5py.File(path) as f:
            f.visititems(lambda key, item: found.update(
                {key: (item[()], item.parent.attrs.get("name"))})
                if isinstance(item, h5py.Dataset) else None)
        return found

    theirs = datasets(original / conversion.WEIGHTS_NAME)
    mine = datasets(tmp_path / "again" / conversion.WEIGHTS_NAME)
    assert sorted(mine) == sorted(theirs)
    for key, (value, layer_name) in theirs.items():
        assert mine[key][1] == layer_name, key
        if layer_name != "pooled_dense":
            assert np.array_equal(mine[key][0], value), key
    for file_name in (conversion.CONFIG_NAME, conversion.TOKENIZER_NAME, conversion.METADATA_NAME):
        with open(original / file_name) as f, open(tmp_path / "again" / file_name) as g:
            a, b = json.load(f), json.load(g)
        assert sorted(a) == sorted(b) and sorted(a.get("config", {})) == sorted(b.get("config", {}))
    with open(original / conversion.CONFIG_NAME) as f, \
            open(tmp_path / "again" / conversion.CONFIG_NAME) as g:
        a, b = json.load(f), json.load(g)
    # Keras numbers the names of later models in a process (electra_backbone_1).
    assert a["config"].pop("name").startswith(b["config"].pop("name")) and a == b
    with open(original / conversion.VOCABULARY_PATH, "rb") as f, \
            open(tmp_path / "again" / conversion.VOCABULARY_PATH, "rb") as g:
        assert f.read() == g.read()


# === Without keras-hub: round trips, the command line, errors ===


def tiny_encoder(**overrides):
    sizes = dict(vocab_size=VOCAB_SIZE, hidden_size=8, num_layers=2, num_heads=2,
                 intermediate_size=16, embedding_size=4, max_sequence_length=16)
    return randomize(ElectraEncoder(**{**sizes, **overrides}), 3)


@pytest.mark.parametrize("embedding_size", [4, 8])
def test_round_trip_is_exact(embedding_size, tmp_path):
    encoder = tiny_encoder(embedding_size=embedding_size)
    generator = ElectraGenerator(encoder)
    generator.save_keras_hub(str(tmp_path / "preset"))  # heads are left out
    loaded = ElectraEncoder.from_keras_hub(str(tmp_path / "preset"))
    sizes = ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
             "embedding_size", "max_sequence_length", "type_vocab_size", "dropout_rate",
             "layer_norm_epsilon")
    assert [getattr(loaded, key) for key in sizes] == [getattr(encoder, key) for key in sizes]
    for a, b in zip(encoder.get_weights(), loaded.get_weights()):
        assert np.array_equal(a, b)
    with open(tmp_path / "preset" / conversion.METADATA_NAME) as f:
        hidden = encoder.hidden_size
        assert json.load(f)["parameter_count"] == encoder.count_params() + hidden * hidden + hidden


def test_convert_command_both_ways(tmp_path):
    encoder = tiny_encoder()
    ElectraDiscriminator(encoder).save_pretrained(str(tmp_path / "ours"))
    assert cli_main(["convert", "--from", "electra_tf", "--to", "keras_hub",
                     str(tmp_path / "ours"), str(tmp_path / "preset")]) == 0
    with open(tmp_path / "preset" / conversion.TOKENIZER_NAME) as f:
        assert json.load(f)["config"]["lowercase"] is True
    # A model directory's own vocab.txt is the one shipped; --no-lower-case for a cased one.
    with open(DEFAULT_VOCAB_PATH, encoding="utf-8") as f:
        vocab = f.read().replace("[unused0]\n", "[own_token]\n")
    (tmp_path / "ours" / "vocab.txt").write_text(vocab, encoding="utf-8")
    assert cli_main(["convert", "--from", "electra_tf", "--to", "keras_hub", "--no-lower-case",
                     str(tmp_path / "ours"), str(tmp_path / "cased")]) == 0
    assert (tmp_path / "cased" / conversion.VOCABULARY_PATH).read_text(encoding="utf-8") == vocab
    with open(tmp_path / "cased" / conversion.TOKENIZER_NAME) as f:
        config = json.load(f)["config"]
        assert config["lowercase"] is False and config["strip_accents"] is False
    assert cli_main(["convert", "--from", "keras_hub", "--to", "electra_tf",
                     str(tmp_path / "preset"), str(tmp_path / "back")]) == 0
    assert sorted(os.listdir(tmp_path / "back")) == ["config.json", "model.weights.h5", "vocab.txt"]
    back = ElectraEncoder.from_pretrained(str(tmp_path / "back"))
    for a, b in zip(encoder.get_weights(), back.get_weights()):
        assert np.array_equal(a, b)
    # A preset holds no discriminator head: a clear error, exit 2, nothing written.
    assert cli_main(["convert", "--from", "keras_hub", "--to", "electra_tf", "--model",
                     "discriminator", str(tmp_path / "preset"), str(tmp_path / "none")]) == 2
    assert not (tmp_path / "none").exists()


def test_errors_say_what_was_received(tmp_path):
    with pytest.raises(ValueError, match="layer_norm_epsilon=1e-05.*1e-12"):
        tiny_encoder(layer_norm_epsilon=1e-5).save_keras_hub(str(tmp_path / "a"))
    with pytest.raises(ValueError, match="has 30522 tokens but the encoder's vocab_size is 40"):
        tiny_encoder(vocab_size=40).save_keras_hub(str(tmp_path / "b"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    tiny_encoder().save_keras_hub(str(tmp_path / "preset"))
    with pytest.raises(ValueError, match="holds the backbone.*no discriminator head"):
        ElectraDiscriminator.from_keras_hub(str(tmp_path / "preset"))
    with pytest.raises(ValueError, match="expected a keras-hub preset directory"):
        ElectraEncoder.from_keras_hub(str(tmp_path))
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text('{"model_type": "electra"}')
    with pytest.raises(ValueError, match="Hugging Face config: use from_huggingface"):
        ElectraEncoder.from_keras_hub(str(tmp_path / "hf"))
    with h5py.File(tmp_path / "preset" / conversion.WEIGHTS_NAME, "a") as f:
        del f["layers/transformer_encoder_1/_feedforward_layer_norm/vars/1"]
    with pytest.raises(ValueError, match=r"missing weights \(1\).*transformer_encoder_1/"
                                         r"_feedforward_layer_norm/vars/1"):
        ElectraEncoder.from_keras_hub(str(tmp_path / "preset"))
