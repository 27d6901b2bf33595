"""Presets and checkpoint conversion, shared by the encoder, generator and discriminator.

Each class sets `model_kind` ("encoder", "generator" or "discriminator") and builds itself:
the sizes come from `electra_tf.models.presets` or from a checkpoint's config, read by
`electra_tf.checkpoint_formats`, which then copies the checkpoint's weights into the model
(keras-hub's pattern: the format modules read and write files, the classes build).
"""

from electra_tf.models.model_io import PretrainedModelMixin


class CheckpointConversionMixin(PretrainedModelMixin):
    model_kind = None

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """Builds a randomly initialised model sized like a released checkpoint.

        Presets: "tiny" (tests), "small", "base", "large"; generators also
        "small_paper" (the paper's 1/4-width Small generator; the released
        Small generator is full width). Keyword arguments override preset
        sizes, e.g. `dropout_rate=0.0`; generators accept `embedding_layer`
        to share the discriminator's embeddings.

        >>> import electra_tf
        >>> electra_tf.ElectraDiscriminator.from_preset("tiny").encoder.num_layers
        2
        """
        from electra_tf.models.presets import build_from_preset

        return build_from_preset(preset, cls.model_kind, **kwargs)

    @classmethod
    def from_huggingface(cls, path):
        """Loads a Hugging Face checkpoint: a local directory or a Hub model id.

        `path` holds config.json and model.safetensors or pytorch_model.bin of
        an `ElectraModel`, `ElectraForPreTraining`, `ElectraForMaskedLM`,
        `BertModel` or `BertForMaskedLM` (whichever fits this class). A Hub id
        such as "google/electra-small-discriminator" is downloaded first with
        `huggingface_hub` (where the network allows: Colab does).
        """
        from electra_tf.checkpoint_formats import huggingface
        from electra_tf.models.presets import ElectraConfig

        checkpoint = huggingface.read_huggingface_checkpoint(path, cls.model_kind)
        model = ElectraConfig(**checkpoint.encoder_arguments).build(cls.model_kind)
        huggingface.assign_huggingface_weights(model, cls.model_kind, checkpoint)
        return model

    def save_huggingface(self, path, overwrite=False):
        """Writes config.json + model.safetensors that `transformers` loads unchanged.

        The directory is written to a temporary sibling and renamed, so a
        failed save leaves nothing behind.
        """
        from electra_tf.checkpoint_formats.huggingface import save_huggingface

        save_huggingface(self, path, overwrite=overwrite)

    @classmethod
    def from_google_checkpoint(cls, checkpoint_prefix, config):
        """Loads an original google-research/electra TF1 checkpoint.

        `config` is a preset name, an `ElectraConfig`, or a dict of its fields
        (the sizes the checkpoint was trained with).
        """
        from electra_tf.checkpoint_formats import google_checkpoint
        from electra_tf.models.presets import ElectraConfig, get_preset

        checkpoint = google_checkpoint.read_google_checkpoint(checkpoint_prefix)
        if isinstance(config, str):
            config = get_preset(config, cls.model_kind)
        model = ElectraConfig.from_dict(config).build(cls.model_kind)
        google_checkpoint.assign_google_checkpoint_weights(
            model, cls.model_kind, checkpoint_prefix, checkpoint)
        return model

    @classmethod
    def from_keras_hub(cls, preset_dir):
        """Loads a keras-hub (Keras 3) ELECTRA preset directory, e.g. one written by
        `keras_hub.models.ElectraBackbone.save_to_preset`.

        The weights are copied exactly; the model computes the published
        ELECTRA (exact GELU), not keras-hub's tanh approximation. A preset holds
        a backbone only, so this is for `ElectraEncoder`. The preset's
        vocabulary: `electra_tf.ElectraTokenizer.from_keras_hub(preset_dir)`.
        """
        from electra_tf.checkpoint_formats import keras_hub
        from electra_tf.models.presets import ElectraConfig

        arguments = keras_hub.read_keras_hub_encoder_arguments(preset_dir, cls.model_kind)
        model = ElectraConfig(**arguments).build(cls.model_kind)
        keras_hub.assign_keras_hub_weights(model, preset_dir)
        return model

    def save_keras_hub(self, path, vocab_path=None, lower_case=True, overwrite=False):
        """Writes the encoder and a tokenizer as a keras-hub preset directory.

        `keras_hub.models.ElectraBackbone.from_preset(path)`,
        `ElectraTokenizer.from_preset(path)` and, after importing the preset's
        `electra_text_classifier.py`, `TextClassifier.from_preset(path, num_classes=...)`
        load it under Keras 3. Heads are left out. `vocab_path` (None: the packaged
        uncased vocabulary) and `lower_case` describe the model's tokenizer.
        """
        from electra_tf.checkpoint_formats.keras_hub import save_keras_hub

        save_keras_hub(self, path, vocab_path=vocab_path, lower_case=lower_case,
                       overwrite=overwrite)
