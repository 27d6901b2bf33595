"""Checkpoint formats of other libraries (Hugging Face, google-research/electra, keras-hub):
readers and writers that build no model. They turn a checkpoint's config into the model's
constructor arguments and copy weights into (and out of) a model they are given; the model
classes' `from_huggingface`, `from_google_checkpoint`, `from_keras_hub` build themselves with
them, and `electra_tf.conversion` converts between formats."""
