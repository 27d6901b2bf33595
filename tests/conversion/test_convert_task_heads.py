"""`convert` keeps task heads: transformers task checkpoints become electra_tf task directories and back."""

import json
import logging
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from conftest import make_inputs  # noqa: E402
from electra_tf.conversion.convert import convert  # noqa: E402
from electra_tf.tasks.task_model_io import load_task_model  # noqa: E402

SIZES = dict(vocab_size=40, embedding_size=12, hidden_size=16, num_hidden_layers=2,
             num_attention_heads=4, intermediate_size=24, max_position_embeddings=32)
LABELS = ["negative", "neutral", "positive"]


def reference(model_class, seed=0, **config):
    model = model_class(transformers.ElectraConfig(hidden_act="gelu", **SIZES, **config))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
    return model.eval()


def save_with_vocab(model, path):
    model.save_pretrained(str(path))
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(35)]
    (path / "vocab.txt").write_text("\n".join(tokens) + "\n")


def torch_outputs(model, inputs):
    with torch.no_grad():
        return model(input_ids=torch.tensor(inputs["input_word_ids"], dtype=torch.long),
                     attention_mask=torch.tensor(inputs["input_mask"], dtype=torch.long),
                     token_type_ids=torch.tensor(inputs["input_type_ids"], dtype=torch.long))


def test_sequence_classification_converts_with_its_head_and_label_names(tmp_path):
    source = reference(transformers.ElectraForSequenceClassification, num_labels=3,
                       id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
    save_with_vocab(source, tmp_path / "hf")
    convert("huggingface", "electra_tf", str(tmp_path / "hf"), str(tmp_path / "ours"))
    model, tokenizer, task = load_task_model(str(tmp_path / "ours"), "classify")
    assert task["label_names"] == LABELS and tokenizer.vocab_size == 40
    inputs = make_inputs(2, 9, 40)
    np.testing.assert_allclose(model(inputs).numpy(), torch_outputs(source, inputs).logits.numpy(),
                               atol=1e-4)

    # ... and back: transformers reads the same logits and the label names as id2label.
    convert("electra_tf", "huggingface", str(tmp_path / "ours"), str(tmp_path / "hf_again"))
    again = transformers.ElectraForSequenceClassification.from_pretrained(str(tmp_path / "hf_again"))
    assert again.config.id2label == dict(enumerate(LABELS))
    np.testing.assert_allclose(torch_outputs(again.eval(), inputs).logits.numpy(),
                               torch_outputs(source, inputs).logits.numpy(), atol=1e-4)


def test_question_answering_converts_with_its_head(tmp_path):
    source = reference(transformers.ElectraForQuestionAnswering, seed=1)
    save_with_vocab(source, tmp_path / "hf")
    model = convert("huggingface", "electra_tf", str(tmp_path / "hf"), str(tmp_path / "ours"))
    assert type(model).__name__ == "ElectraQuestionAnswering"
    loaded, _, task = load_task_model(str(tmp_path / "ours"), "qa")
    inputs = make_inputs(2, 9, 40)
    expected = torch_outputs(source, inputs)
    outputs = loaded(inputs)
    np.testing.assert_allclose(outputs["start_logits"].numpy(), expected.start_logits.numpy(), atol=1e-4)
    np.testing.assert_allclose(outputs["end_logits"].numpy(), expected.end_logits.numpy(), atol=1e-4)
    assert task["max_seq_length"] == 384
    from electra_tf.tasks.run_qa import predict_qa

    (tmp_path / "ours" / "vocab.txt").write_text((tmp_path / "hf" / "vocab.txt").read_text())
    answers = predict_qa(str(tmp_path / "ours"), [{"question": "w1 w2", "context": "w3 w4 w5 w6"}],
                         max_seq_length=16)  # the converted model answers questions as it is
    assert len(answers) == 1 and answers[0]["answer"] in "w3 w4 w5 w6"


def test_token_classification_converts_with_its_tag_names(tmp_path):
    tags = ["O", "B-PER", "I-PER"]
    source = reference(transformers.ElectraForTokenClassification, seed=2, num_labels=3,
                       id2label=dict(enumerate(tags)), label2id={n: i for i, n in enumerate(tags)})
    save_with_vocab(source, tmp_path / "hf")
    convert("huggingface", "electra_tf", str(tmp_path / "hf"), str(tmp_path / "ours"))
    model, _, task = load_task_model(str(tmp_path / "ours"), "tag")
    assert task["label_names"] == tags
    inputs = make_inputs(2, 9, 40)
    np.testing.assert_allclose(model(inputs).numpy(), torch_outputs(source, inputs).logits.numpy(),
                               atol=1e-4)


def test_head_weights_without_a_task_architecture_are_refused_not_dropped(tmp_path):
    source = reference(transformers.ElectraForQuestionAnswering)
    save_with_vocab(source, tmp_path / "hf")
    config_path = tmp_path / "hf" / "config.json"
    config = json.loads(config_path.read_text())
    config.pop("architectures")
    config_path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="task-head weights \\(qa_outputs\\)"):
        convert("huggingface", "electra_tf", str(tmp_path / "hf"), str(tmp_path / "ours"))
    assert not os.path.exists(tmp_path / "ours")


def test_keras_hub_target_refuses_a_task_model_unless_the_encoder_is_asked_for(tmp_path, caplog):
    source = reference(transformers.ElectraForQuestionAnswering)
    save_with_vocab(source, tmp_path / "hf")
    with pytest.raises(ValueError, match="keras-hub presets hold encoders only"):
        convert("huggingface", "keras_hub", str(tmp_path / "hf"), str(tmp_path / "preset"))
    with caplog.at_level(logging.WARNING):
        model = convert("huggingface", "electra_tf", str(tmp_path / "hf"), str(tmp_path / "encoder"),
                        model_kind="encoder")
    assert type(model).__name__ == "ElectraEncoder"
    assert "ElectraForQuestionAnswering head is not converted" in caplog.text


def test_a_vocabulary_that_does_not_fit_the_encoder_is_a_clear_error(tmp_path):
    source = reference(transformers.ElectraForSequenceClassification, num_labels=2)
    source.save_pretrained(str(tmp_path / "hf"))  # no vocab.txt: the packaged one has 30,522
    with pytest.raises(ValueError, match="30522 tokens but .* encoder 40"):
        convert("huggingface", "electra_tf", str(tmp_path / "hf"), str(tmp_path / "ours"))
    assert not os.path.exists(tmp_path / "ours")
