"""Model compression: pruning and distillation (tfmot and Keras), measured against the original.

- `pruning`: `prune_classifier`, tfmot magnitude pruning of the encoder and head kernels.
- `electra_distiller`: `ElectraDistiller`, soft-target + hard-label distillation with `fit`.
- `compression_report`: zipped size, latency, the trade-off table and PNG.
- `compress`: the jobs behind `electra-tf compress prune|distill|quantize`.

Quantization goes through the TFLite converter: `electra_tf.export.tflite_export`.
"""
