"""Model compression: pruning and distillation (tfmot and Keras), measured against the original.

- `pruning`: `prune_task_model`, tfmot magnitude pruning of the encoder and head kernels of a
  classifier, tagger or QA model, wrapping the model's own layers in place.
- `task_data`: any task directory in, its model, tokenizer, training data and dev score out.
- `electra_distiller`: `ElectraDistiller`, soft-target + hard-label distillation with `fit`,
  for classifiers, taggers and QA models.
- `compression_report`: zipped size, latency, the trade-off table and PNG.
- `compress`: the jobs behind `electra-tf compress prune|distill|quantize`.

Quantization goes through the TFLite converter: `electra_tf.export.tflite_export`.
"""
