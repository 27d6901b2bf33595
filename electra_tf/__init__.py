"""electra_tf: ELECTRA pretraining, fine-tuning, compression and export in tf-keras.

Everything a user calls is importable from the top: the model classes below load with the
package, every other name on first use (so `import electra_tf` costs what the models cost).

>>> import electra_tf
>>> discriminator = electra_tf.ElectraDiscriminator.from_preset("tiny")
>>> electra_tf.run_pretraining.__module__  # its module is imported now, on first use
'electra_tf.pretraining.run_pretraining'
"""

import importlib as _importlib
import os as _os

# tf-keras (Keras 2) is the Keras of this package: tfmot and TF-Hub need it.
_os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from electra_tf.compression.electra_distiller import ElectraDistiller  # noqa: E402
from electra_tf.layers.electra_embeddings import ElectraEmbeddings  # noqa: E402
from electra_tf.layers.fused_kernels import unfused_kernels  # noqa: E402
from electra_tf.layers.layer_norm import plain_layer_norms  # noqa: E402
from electra_tf.layers.transformer_layer import (  # noqa: E402
    TransformerLayer, plain_transposes, width_parts)
from electra_tf.models.electra_discriminator import ElectraDiscriminator  # noqa: E402
from electra_tf.models.electra_encoder import ElectraEncoder  # noqa: E402
from electra_tf.models.electra_generator import ElectraGenerator  # noqa: E402
from electra_tf.models.presets import PRESETS, ElectraConfig  # noqa: E402
from electra_tf.tasks.electra_classifier import ElectraClassifier  # noqa: E402
from electra_tf.tasks.electra_question_answering import ElectraQuestionAnswering  # noqa: E402
from electra_tf.tasks.electra_token_classifier import ElectraTokenClassifier  # noqa: E402
from electra_tf.utils.xla import xla_forward  # noqa: E402
# Loaded with the task models anyway (their gradient accumulation): the options every
# fine-tuning job shares.
from electra_tf.tasks.training_options import TrainingOptions  # noqa: E402

__version__ = "0.1.0"

# Public name -> (home module, name there). Loaded on first attribute access (PEP 562), so the
# training jobs, data pipelines, export and serving stay unimported until used. A public name
# differs from its home name only where that would be ambiguous at the top: three modules define
# `format_summary`, and `read_config` / `ASSETS_DIR` do not say of what.
_LAZY = {
    # preprocessing/ and models/
    "ElectraTokenizer": ("electra_tf.preprocessing.electra_tokenizer", "ElectraTokenizer"),
    "build_from_preset": ("electra_tf.models.presets", "build_from_preset"),
    "get_preset": ("electra_tf.models.presets", "get_preset"),
    "scaled_generator_config": ("electra_tf.models.presets", "scaled_generator_config"),
    # pretraining/
    "ElectraPretrainer": ("electra_tf.pretraining.electra_pretrainer", "ElectraPretrainer"),
    "PretrainingConfig": ("electra_tf.pretraining.run_pretraining", "PretrainingConfig"),
    "load_energy_model": ("electra_tf.pretraining.electric_scoring", "load_energy_model"),
    "rerank": ("electra_tf.pretraining.electric_scoring", "rerank"),
    "score_texts": ("electra_tf.pretraining.electric_scoring", "score_texts"),
    "build_strategy": ("electra_tf.utils.strategies", "build_strategy"),
    "format_pretraining_summary": ("electra_tf.pretraining.pretrain", "format_summary"),
    "pretrain": ("electra_tf.pretraining.pretrain", "pretrain"),
    "run_pretraining": ("electra_tf.pretraining.run_pretraining", "run_pretraining"),
    # tasks/: classification
    "FinetuningConfig": ("electra_tf.tasks.run_finetuning", "FinetuningConfig"),
    "compute_metrics": ("electra_tf.tasks.classification_metrics", "compute_metrics"),
    "evaluate_classifier": ("electra_tf.tasks.run_finetuning", "evaluate_classifier"),
    "format_finetuning_summary": ("electra_tf.tasks.finetuning_job", "format_summary"),
    "load_task_model": ("electra_tf.tasks.task_model_io", "load_task_model"),
    "predict_classifier": ("electra_tf.tasks.run_finetuning", "predict_classifier"),
    "run_finetuning": ("electra_tf.tasks.run_finetuning", "run_finetuning"),
    "save_task_model": ("electra_tf.tasks.task_model_io", "save_task_model"),
    # tasks/: GLUE
    "GlueConfig": ("electra_tf.tasks.run_glue", "GlueConfig"),
    "format_glue_summary": ("electra_tf.tasks.run_glue", "format_glue_summary"),
    "run_glue": ("electra_tf.tasks.run_glue", "run_glue"),
    # tasks/: tagging
    "TaggingConfig": ("electra_tf.tasks.run_tagging", "TaggingConfig"),
    "evaluate_tagger": ("electra_tf.tasks.run_tagging", "evaluate_tagger"),
    "predict_tags": ("electra_tf.tasks.run_tagging", "predict_tags"),
    "run_tagging": ("electra_tf.tasks.run_tagging", "run_tagging"),
    # tasks/: question answering
    "QAConfig": ("electra_tf.tasks.run_qa", "QAConfig"),
    "best_spans": ("electra_tf.tasks.squad_postprocessing", "best_spans"),
    "context_mask": ("electra_tf.tasks.squad_postprocessing", "context_mask"),
    "evaluate_qa": ("electra_tf.tasks.run_qa", "evaluate_qa"),
    "format_qa_summary": ("electra_tf.tasks.finetuning_job", "format_summary"),
    "predict_qa": ("electra_tf.tasks.run_qa", "predict_qa"),
    "read_squad": ("electra_tf.tasks.run_qa", "read_squad"),
    "run_qa": ("electra_tf.tasks.run_qa", "run_qa"),
    # data/
    "PACKAGED_DATA_DIR": ("electra_tf.data.packaged_corpus", "ASSETS_DIR"),
    "create_squad_features": ("electra_tf.data.squad_dataset", "create_squad_features"),
    "make_classification_dataset": (
        "electra_tf.data.classification_dataset", "make_classification_dataset"),
    "packaged_corpus": ("electra_tf.data.packaged_corpus", "packaged_corpus"),
    "packaged_sentiment": ("electra_tf.data.packaged_corpus", "packaged_sentiment"),
    "packaged_squad_sample": ("electra_tf.data.packaged_corpus", "packaged_squad_sample"),
    "read_classification_file": ("electra_tf.data.classification_dataset", "read_classification_file"),
    "read_tfds_classification": ("electra_tf.data.classification_dataset", "read_tfds_classification"),
    # optimization/
    "create_finetuning_optimizer": (
        "electra_tf.optimization.layerwise_decay_adamw", "create_finetuning_optimizer"),
    "create_optimizer": ("electra_tf.optimization.adamw", "create_optimizer"),
    "FusedAdamW": ("electra_tf.optimization.fused_adamw", "FusedAdamW"),
    # compression/
    "accuracy_from_logits": ("electra_tf.compression.compression_report", "accuracy_from_logits"),
    "augmented_distillation_dataset": (
        "electra_tf.compression.augmentation", "augmented_distillation_dataset"),
    "format_compression_table": (
        "electra_tf.compression.compression_report", "format_compression_table"),
    "format_sparsity_table": ("electra_tf.compression.pruning", "format_sparsity_table"),
    "load_classifier_and_tokenizer": (
        "electra_tf.compression.task_data", "load_classifier_and_tokenizer"),
    "load_task_model_and_tokenizer": (
        "electra_tf.compression.task_data", "load_task_model_and_tokenizer"),
    "measure_tflite": ("electra_tf.compression.compression_report", "measure_tflite"),
    "median_seconds": ("electra_tf.compression.compression_report", "median_seconds"),
    "plot_compression_tradeoff": (
        "electra_tf.compression.compression_report", "plot_compression_tradeoff"),
    "prune_classifier": ("electra_tf.compression.pruning", "prune_classifier"),
    "prune_task_model": ("electra_tf.compression.pruning", "prune_task_model"),
    "quantization_aware_training": (
        "electra_tf.compression.quantization", "quantization_aware_training"),
    "quantization_wrappers": ("electra_tf.compression.quantization", "quantization_wrappers"),
    "quantized_tflite_flatbuffer": (
        "electra_tf.compression.quantization", "quantized_tflite_flatbuffer"),
    "gelu_in_float": ("electra_tf.compression.quantization", "gelu_in_float"),
    "head_and_neuron_importance": (
        "electra_tf.compression.structured_pruning", "head_and_neuron_importance"),
    "prune_heads_and_neurons": (
        "electra_tf.compression.structured_pruning", "prune_heads_and_neurons"),
    "sparsity_report": ("electra_tf.compression.pruning", "sparsity_report"),
    "student_from_teacher": ("electra_tf.compression.electra_distiller", "student_from_teacher"),
    "zipped_size": ("electra_tf.compression.compression_report", "zipped_size"),
    # export/
    "FLOAT_DENSE_LAYERS": ("electra_tf.export.tflite_export", "FLOAT_DENSE_LAYERS"),
    "INT8_FLOAT_OPS": ("electra_tf.export.tflite_export", "INT8_FLOAT_OPS"),
    "export_task_saved_model": ("electra_tf.export.task_saved_model", "export_task_saved_model"),
    "export_tflite": ("electra_tf.export.tflite_export", "export_tflite"),
    "profile_tflite": ("electra_tf.export.tflite_profile", "profile_tflite"),
    "representative_dataset": ("electra_tf.export.tflite_export", "representative_dataset"),
    "run_tflite": ("electra_tf.export.tflite_export", "run_tflite"),
    "tflite_flatbuffer": ("electra_tf.export.tflite_export", "tflite_flatbuffer"),
    "tflite_forward": ("electra_tf.export.tflite_forward", "tflite_forward"),
    "tflite_interpreter": ("electra_tf.export.tflite_export", "tflite_interpreter"),
    # conversion/ and checkpoint_formats/
    "read_huggingface_config": ("electra_tf.conversion.huggingface", "read_config"),
    "resolve_huggingface_path": (
        "electra_tf.checkpoint_formats.huggingface", "resolve_huggingface_path"),
    # serving/ (the HTTP stack it serves with is the `serve` extra, imported only when serving)
    "ServedModel": ("electra_tf.serving.served_model", "ServedModel"),
    # utils/
    "TimeLimit": ("electra_tf.utils.callbacks", "TimeLimit"),
    "TrainingLogger": ("electra_tf.utils.callbacks", "TrainingLogger"),
    "describe_cpu": ("electra_tf.utils.machine", "describe_cpu"),
    "describe_machine": ("electra_tf.utils.machine", "describe_machine"),
    "write_benchmark_results": ("electra_tf.utils.machine", "write_benchmark_results"),
    "plot_learning_curves": ("electra_tf.utils.plots", "plot_learning_curves"),
    "in_batch_parts": ("electra_tf.utils.tensorflow_threads", "in_batch_parts"),
    "set_tensorflow_threads": ("electra_tf.utils.tensorflow_threads", "set_tensorflow_threads"),
}

__all__ = [
    "ElectraClassifier",
    "ElectraConfig",
    "ElectraDiscriminator",
    "ElectraDistiller",
    "ElectraEmbeddings",
    "ElectraEncoder",
    "ElectraGenerator",
    "ElectraQuestionAnswering",
    "PRESETS",
    "ElectraTokenClassifier",
    "TrainingOptions",
    "TransformerLayer",
    "plain_layer_norms",
    "plain_transposes",
    "width_parts",
    "unfused_kernels",
    "xla_forward",
]
__all__ += sorted(_LAZY)


def __getattr__(name):
    """Imports a public name's home module on first access and caches the name here."""
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(
            f"module 'electra_tf' has no attribute {name!r}; the public API is "
            "`electra_tf.__all__` (run `dir(electra_tf)`)."
        ) from None
    value = getattr(_importlib.import_module(module_name), attribute)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
