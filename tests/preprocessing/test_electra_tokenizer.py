"""ElectraTokenizer and ElectraPacker against transformers.BertTokenizerFast on real text."""

import glob
import gzip
import inspect
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text as tf_text
import tf_keras as keras
from conftest import DATA_ASSETS_DIR, packaged_sentiment

from electra_tf.preprocessing.electra_packer import ElectraPacker, longest_first_lengths
from electra_tf.preprocessing.electra_tokenizer import DEFAULT_VOCAB_PATH, ElectraTokenizer

transformers = pytest.importorskip("transformers")

VOCAB_SIZE = 30522


def read_movie_lines():
    lines = []
    for split in ("train", "dev"):
        with open(packaged_sentiment(split), encoding="utf-8") as f:
            rows = f.read().split("\n")[1:]  # skip the "label<TAB>text" header
        lines += [row.split("\t", 1)[1] for row in rows if row]
    return lines


def read_austen_lines():
    lines = []
    for path in sorted(glob.glob(os.path.join(DATA_ASSETS_DIR, "*.txt.gz"))):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            lines += [line.rstrip("\n") for line in f if line.strip()]
    return lines


@pytest.fixture(scope="module")
def tokenizer():
    return ElectraTokenizer()


@pytest.fixture(scope="module")
def hf_tokenizer(tmp_path_factory):
    # from_pretrained on a folder works in transformers 4 and 5. Beware
    # BertTokenizerFast(vocab_file=...): transformers 5 ignores that argument
    # and silently builds a 5-token vocabulary that maps every word to [UNK].
    folder = tmp_path_factory.mktemp("hf_vocab")
    shutil.copy(DEFAULT_VOCAB_PATH, folder / "vocab.txt")
    hf = transformers.BertTokenizerFast.from_pretrained(str(folder), do_lower_case=True)
    assert len(hf) == VOCAB_SIZE
    return hf


@pytest.fixture(scope="module")
def movie_lines():
    return read_movie_lines()


def assert_same_ids(ours, theirs, lines):
    mismatches = [i for i in range(len(lines)) if ours[i] != theirs[i]]
    assert not mismatches, (
        f"{len(mismatches)} of {len(lines)} lines differ; first: {lines[mismatches[0]]!r}\n"
        f"ours:   {ours[mismatches[0]]}\ntheirs: {theirs[mismatches[0]]}"
    )


# ---- (a) ids equal BertTokenizerFast's ----


def test_ids_equal_hugging_face_on_real_text(tokenizer, hf_tokenizer, movie_lines):
    lines = movie_lines + read_austen_lines()
    assert len(lines) >= 22_000  # 9,068 movie sentences + 13,869 lines of the two packaged novels
    ours = tokenizer.tokenize(tf.constant(lines)).to_list()
    theirs = hf_tokenizer(lines, add_special_tokens=False)["input_ids"]
    assert_same_ids(ours, theirs, lines)


EDGE_CASES = [
    "",
    "   \t\n ",
    "Héllo CAFÉ naïve Ångström",
    "中文字符 test 漢字",
    "9 ½ Weeks",  # NFKC (tensorflow-text's case folding) makes this "9 1⁄2"
    "ﬁne ß Straße ẞ",  # NFKC case folding: "fine ss strasse"
    "ＦＵＬＬ width ① ² ǅ",  # NFKC: ASCII letters and digits
    "ΟΔΟΣ ΣΑΣ ς",  # ICU lower-cases a final Σ to ς; tokenizers to σ
    "İstanbul",
    "a\u200bb\x00c\ufffd d\x85e\x0bf",  # control and format characters are deleted
    "tab\there\r\nnew\u2028line\u00a0nbsp\u3000ideographic",  # separators become spaces
    "x" * 100 + " " + "y" * 101,  # more than 100 characters: one [UNK]
    "é" * 100 + " " + "ж" * 101,  # characters, not bytes, are counted
    "don't stop!! $5 + 3 = <8> ~a|b^c`",
    "emoji 😀 ok \U0002b820\U0002b920x",  # 2B820 is not CJK for tokenizers
    "[MASK] [CLS] [unused1]",  # tokenized as text, not as special tokens
]


def test_ids_equal_hugging_face_on_edge_cases(tokenizer, hf_tokenizer):
    ours = tokenizer.tokenize(tf.constant(EDGE_CASES)).to_list()
    theirs = hf_tokenizer(EDGE_CASES, add_special_tokens=False)["input_ids"]
    # Hugging Face finds special tokens in raw text; we tokenize them as text,
    # as Google's BERT and ELECTRA code do.
    assert theirs[-1][:2] == [103, 101]
    theirs[-1] = hf_tokenizer("[ MASK ] [ CLS ] [ unused1 ]", add_special_tokens=False)["input_ids"]
    assert_same_ids(ours, theirs, EDGE_CASES)


def test_cased_ids_equal_hugging_face(movie_lines, tmp_path):
    shutil.copy(DEFAULT_VOCAB_PATH, tmp_path / "vocab.txt")
    hf = transformers.BertTokenizerFast.from_pretrained(str(tmp_path), do_lower_case=False)
    lines = movie_lines[:500] + EDGE_CASES[:-1]
    ours = ElectraTokenizer(lower_case=False).tokenize(tf.constant(lines)).to_list()
    theirs = hf(lines, add_special_tokens=False)["input_ids"]
    assert_same_ids(ours, theirs, lines)


def test_scalar_string_gives_dense_ids(tokenizer):
    ids = tokenizer("Hello world.")
    assert isinstance(ids, tf.Tensor) and ids.dtype == tf.int32
    assert ids.numpy().tolist() == [7592, 2088, 1012]


def test_detokenize_joins_pieces(tokenizer):
    ids = tokenizer(["Unbelievable worlds, Héllo!", ""])
    assert tokenizer.detokenize(ids).numpy().tolist() == [b"unbelievable worlds , hello !", b""]


def test_vocabulary_and_special_ids(tokenizer):
    assert tokenizer.vocab_size == VOCAB_SIZE
    t = tokenizer
    assert (t.pad_token_id, t.unk_token_id, t.cls_token_id, t.sep_token_id, t.mask_token_id) == (
        0, 100, 101, 102, 103)
    assert tokenizer.id_to_token(103) == "[MASK]"
    assert tokenizer.token_to_id("##ing") == 2075
    assert tokenizer.id_to_token(tokenizer.token_to_id("hello")) == "hello"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tokenizer.token_to_id("Hello")
    with pytest.raises(ValueError, match=r"\[0, 30522\)"):
        tokenizer.id_to_token(VOCAB_SIZE)


def test_the_short_id_names_of_earlier_versions_still_work_and_warn(tokenizer):
    for old in ("pad_id", "unk_id", "cls_id", "sep_id", "mask_id"):
        with pytest.deprecated_call(match=f"{old} is deprecated; use {old[:-3]}_token_id"):
            assert getattr(tokenizer, old) == getattr(tokenizer, f"{old[:-3]}_token_id")
    with pytest.deprecated_call(match=r"ElectraPacker\(cls_id=...\) is deprecated"):
        packer = ElectraPacker(max_seq_length=8, cls_id=2, sep_id=3, pad_id=1)
    assert (packer.cls_token_id, packer.sep_token_id, packer.pad_token_id) == (2, 3, 1)
    with pytest.deprecated_call(match="ElectraPacker.sep_id is deprecated"):
        assert packer.sep_id == 3
    # A config saved by an earlier version (cls_id, ...) loads quietly.
    old_config = {**packer.get_config(), "cls_id": 5}
    del old_config["cls_token_id"]
    assert ElectraPacker.from_config(old_config).cls_token_id == 5


@pytest.mark.parametrize("cls", [ElectraTokenizer, ElectraPacker])
def test_get_config_mirrors_init_and_round_trips(cls):
    layer = cls(max_seq_length=16) if cls is ElectraPacker else cls(lower_case=False)
    config = layer.get_config()
    init_args = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
    assert set(config) == init_args | {"name", "trainable", "dtype"}
    assert cls.from_config(config).get_config() == config


# ---- (b) packing equals BertTokenizerFast(text_a, text_b, truncation="longest_first") ----


@pytest.mark.parametrize("max_seq_length", [16, 17, 24, 33, 64])
def test_pair_packing_equals_hugging_face(tokenizer, hf_tokenizer, movie_lines, max_seq_length):
    # 300 real pairs: consecutive review sentences, lengths ~5-60 pieces, so
    # both one-sided and two-sided truncation and padding occur.
    first, second = movie_lines[0:600:2], movie_lines[1:600:2]
    ours = tokenizer.pack([tokenizer(first), tokenizer(second)], max_seq_length)
    theirs = hf_tokenizer(first, second, max_length=max_seq_length,
                          truncation="longest_first", padding="max_length")
    np.testing.assert_array_equal(ours["input_word_ids"], theirs["input_ids"])
    np.testing.assert_array_equal(ours["input_mask"], theirs["attention_mask"])
    np.testing.assert_array_equal(ours["input_type_ids"], theirs["token_type_ids"])
    for value in ours.values():
        assert value.dtype == tf.int32 and value.shape == (300, max_seq_length)


@pytest.mark.parametrize("max_seq_length", [8, 32])
def test_single_packing_equals_hugging_face(tokenizer, hf_tokenizer, movie_lines, max_seq_length):
    lines = movie_lines[:300] + [""]
    ours = tokenizer.pack(tokenizer(lines), max_seq_length)
    theirs = hf_tokenizer(lines, max_length=max_seq_length, truncation=True, padding="max_length")
    np.testing.assert_array_equal(ours["input_word_ids"], theirs["input_ids"])
    np.testing.assert_array_equal(ours["input_mask"], theirs["attention_mask"])
    np.testing.assert_array_equal(ours["input_type_ids"], theirs["token_type_ids"])


def length_grid(hf_tokenizer, max_seq_length):
    """Segments of every length 0-12 ("a a a", "b b") and what HF keeps of each."""
    lengths = [(a, b) for a in range(13) for b in range(13)]
    encoded = hf_tokenizer([" ".join("a" * a) for a, _ in lengths],
                           [" ".join("b" * b) for _, b in lengths],
                           max_length=max_seq_length, truncation="longest_first")
    a_id, b_id = hf_tokenizer.convert_tokens_to_ids(["a", "b"])
    kept = [(ids.count(a_id), ids.count(b_id)) for ids in encoded["input_ids"]]
    return np.array(lengths), np.array(kept)


@pytest.mark.parametrize("max_seq_length", range(3, 15))
def test_longest_first_lengths_equal_hugging_face(hf_tokenizer, max_seq_length):
    lengths, kept = length_grid(hf_tokenizer, max_seq_length)
    keep_a, keep_b = longest_first_lengths(
        tf.constant(lengths[:, 0]), tf.constant(lengths[:, 1]), max_seq_length - 3)
    np.testing.assert_array_equal(np.stack([keep_a, keep_b], axis=1), kept)


def test_round_robin_trimmer_matches_only_even_budgets(hf_tokenizer):
    """Why ElectraPacker does not use tensorflow_text.RoundRobinTrimmer."""
    for max_seq_length, budget_is_even in ((9, True), (10, False)):
        lengths, kept = length_grid(hf_tokenizer, max_seq_length)
        trimmed = tf_text.RoundRobinTrimmer(max_seq_length - 3).trim(
            [tf.ragged.range(lengths[:, 0]), tf.ragged.range(lengths[:, 1])])
        round_robin = np.stack([t.row_lengths().numpy() for t in trimmed], axis=1)
        assert np.array_equal(round_robin, kept) == budget_is_even


# ---- (c) tf.data and SavedModel ----


def test_tf_data_map_matches_eager(tokenizer, movie_lines):
    lines = movie_lines[:100]
    expected = tokenizer.pack([tokenizer(lines[0::2]), tokenizer(lines[1::2])], 32)

    pairs = tf.data.Dataset.from_tensor_slices((lines[0::2], lines[1::2]))
    batched = list(pairs.batch(16).map(
        lambda a, b: tokenizer.pack([tokenizer(a), tokenizer(b)], 32)))
    one_by_one = list(pairs.map(  # scalar strings: dense ids, (32,) rows
        lambda a, b: tokenizer.pack([tokenizer(a), tokenizer(b)], 32)))
    for key in expected:
        np.testing.assert_array_equal(np.concatenate([x[key] for x in batched]), expected[key])
        np.testing.assert_array_equal(np.stack([x[key] for x in one_by_one]), expected[key])


def test_keras_model_from_strings():
    tokenizer = ElectraTokenizer()
    text = keras.Input(shape=(), dtype=tf.string)
    model = keras.Model(text, ElectraPacker(max_seq_length=8)(tokenizer(text)))
    outputs = model.predict(tf.constant(["Hello world.", ""]), verbose=0)
    np.testing.assert_array_equal(
        outputs["input_word_ids"], [[101, 7592, 2088, 1012, 102, 0, 0, 0], [101, 102] + [0] * 6])


class Preprocessor(tf.Module):
    def __init__(self, tokenizer):
        super().__init__()
        self.tokenizer = tokenizer

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string),
                                  tf.TensorSpec([None], tf.string)])
    def __call__(self, text_a, text_b):
        return self.tokenizer.pack([self.tokenizer(text_a), self.tokenizer(text_b)], 24)


def test_saved_model_round_trip_without_vocab_file(movie_lines, tmp_path):
    vocab_path = tmp_path / "vocab.txt"
    shutil.copy(DEFAULT_VOCAB_PATH, vocab_path)
    preprocessor = Preprocessor(ElectraTokenizer(vocab_path=str(vocab_path)))
    text_a, text_b = tf.constant(movie_lines[:20]), tf.constant(movie_lines[20:40])
    expected = preprocessor(text_a, text_b)

    tf.saved_model.save(preprocessor, str(tmp_path / "preprocessor"))
    os.remove(vocab_path)  # the vocabulary lives inside the graph
    restored = tf.saved_model.load(str(tmp_path / "preprocessor"))
    got = restored(text_a, text_b)
    for key in ("input_word_ids", "input_mask", "input_type_ids"):
        np.testing.assert_array_equal(got[key], expected[key])


# ---- (d) errors and empty strings ----


def test_empty_strings_give_cls_sep(tokenizer, hf_tokenizer):
    ids = tokenizer(["", " ", "\x00\u200b"])
    assert ids.to_list() == [[], [], []]
    single = tokenizer.pack(ids, 4)
    np.testing.assert_array_equal(single["input_word_ids"], [[101, 102, 0, 0]] * 3)
    np.testing.assert_array_equal(single["input_mask"], [[1, 1, 0, 0]] * 3)
    pair = tokenizer.pack([ids, ids], 4)
    np.testing.assert_array_equal(pair["input_word_ids"], [[101, 102, 102, 0]] * 3)
    np.testing.assert_array_equal(pair["input_type_ids"], [[0, 0, 1, 0]] * 3)
    # Batched, as HF's single-pair call treats text_pair="" as no pair at all.
    theirs = hf_tokenizer([""], [""], max_length=4, padding="max_length")["input_ids"]
    assert theirs == [[101, 102, 102, 0]]
    assert tokenizer(tf.constant("")).shape == (0,)


def test_missing_vocab_file_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="not found.*no_such_vocab.txt"):
        ElectraTokenizer(vocab_path=str(tmp_path / "no_such_vocab.txt"))


@pytest.mark.parametrize("missing", ["[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]"])
def test_vocab_without_special_token_is_a_value_error(tmp_path, missing):
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "##s"]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(t for t in tokens if t != missing) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"lacks the special tokens ['{missing}']")):
        ElectraTokenizer(vocab_path=str(path))


def test_small_vocabulary(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n##s\n!\n", encoding="utf-8")
    tokenizer = ElectraTokenizer(vocab_path=str(path))
    assert tokenizer.vocab_size == 8 and tokenizer.cls_token_id == 2
    assert tokenizer(["Hellos world!"]).to_list() == [[5, 6, 1, 7]]


def test_bad_inputs_are_value_errors(tokenizer):
    with pytest.raises(ValueError, match="expects strings"):
        tokenizer.tokenize(tf.constant([1, 2]))
    with pytest.raises(ValueError, match="`lower_case` must be True or False"):
        ElectraTokenizer(lower_case="yes")
    ids = tokenizer(["a b"])
    with pytest.raises(ValueError, match="one or two segments; received 3"):
        tokenizer.pack([ids, ids, ids], 8)
    with pytest.raises(ValueError, match="max_seq_length=1"):
        tokenizer.pack(ids, 1)
    with pytest.raises(ValueError, match="pair needs max_seq_length >= 3"):
        tokenizer.pack([ids, ids], 2)
    with pytest.raises(ValueError, match="all be ragged"):
        ElectraPacker(max_seq_length=8)([ids, tf.constant([1, 2])])
