"""Quantization-aware training (QAT) of whole ELECTRA task models through tfmot.

    with quantization_wrappers(classifier) as quantizers:
        calibrate_quantizers(classifier, quantizers, train_batches.take(8))
        classifier.fit(train_batches, epochs=1)          # fake int8 in every forward pass
        flatbuffer = quantized_tflite_flatbuffer(classifier, max_seq_length=128)

Inside `quantization_wrappers`, every dense layer of the model (the embedding
projection, the four of each `TransformerLayer`, the task head's) is replaced
in place by a tfmot `QuantizeWrapperV2` whose `QuantizeConfig` fake-quantizes
its kernel (8-bit, symmetric, per tensor: the TFLite converter fails on a
per-channel fake-quantized Keras kernel, "mismatched quantized axes") and its
output, and which also fake-quantizes its input: the three tensors TFLite's
int8 FULLY_CONNECTED quantizes. The embedding tables get int8 too (TFLite's
int8 GATHER), and each attention block fake-quantizes the inputs and outputs
of its two matmuls (`ATTENTION_QUANTIZE_POINTS`); the scores are quantized
*before* the -10000 padding bias is added, so the bias never sets their
scale, and keys and values get symmetric ranges (TFLite's int8 BATCH_MATMUL
mishandles a right operand whose zero point is not 0). The two dense layers
whose outputs join the residual stream (attention output, feed-forward
output) quantize their outputs with one step per channel
(`ChannelScaledOutputQuantizer`): a few of their channels are tens of times
larger than the rest in a trained encoder (MiniLM's feed-forward outputs
reach 195 where most channels stay within a few units), and one range per
tensor left the others a handful of int8 steps. LayerNorm, softmax and the
residual adds stay float32 (their int8 TFLite kernels run outside XNNPACK;
see `electra_tf.export.tflite_export.INT8_FLOAT_OPS`). GELU sits between two
int8 dense layers; the file computes it in float on the int8 values
(`gelu_in_float`), where XNNPACK can run it.

The model's own `call` runs the wrappers, so `fit`, `ElectraDistiller` and
the pruning wrappers work unchanged. Activation ranges start from a
calibration pass (`calibrate_quantizers`) and follow an exponential moving
average while training; the TFLite converter reads them from the graph's
fake-quant ops, so the int8 file computes what the QAT model computed.

With `preserve_sparsity=True` each kernel keeps its zeros (a pruned model
stays as sparse, as tfmot's pruning-preserving QAT does): the quantizer
multiplies the kernel by its fixed non-zero mask.
"""

import contextlib
import copy
import inspect

import numpy as np
import tensorflow as tf
import tf_keras as keras
from tensorflow_model_optimization.quantization.keras import QuantizeConfig, QuantizeWrapperV2
from tensorflow_model_optimization.quantization.keras.quantizers import LastValueQuantizer, Quantizer

from electra_tf.layers.transformer_layer import ATTENTION_QUANTIZE_POINTS
from electra_tf.tasks.task_models import check_task_model
from electra_tf.utils.checks import is_integer

NUM_BITS = 8
# Activation ranges follow this exponential moving average of each batch's
# min/max while training (tfmot's default, 0.999, barely moves in the few
# hundred steps of a fine-tuning run; calibration sets the start).
RANGE_EMA_DECAY = 0.99


def _smart_cond(training, true_fn, false_fn):
    if training is None:
        training = keras.backend.learning_phase()
    return tf.__internal__.smart_cond.smart_cond(training, true_fn, false_fn)


class ActivationQuantizer(Quantizer):
    """8-bit asymmetric per-tensor fake quantization with a calibrated, then averaged range.

    While `calibrating` (set by `calibrate_quantizers`), a call widens the
    range to the values it sees and returns them unquantized; in training
    the range follows an exponential moving average of each batch's range;
    at inference it is fixed. The range always contains 0, as TFLite's
    zero point needs.
    """

    def __init__(self, ema_decay=RANGE_EMA_DECAY, symmetric=False):
        self.ema_decay = ema_decay
        self.symmetric = symmetric
        self.calibrating = False

    def build(self, tensor_shape, name, layer):
        def variable(suffix):
            return layer.add_weight(f"{name}_{suffix}", shape=(), initializer="zeros",
                                    trainable=False, dtype=tf.float32)

        return {"min_var": variable("min"), "max_var": variable("max")}

    def __call__(self, inputs, training, weights, **kwargs):
        min_var, max_var = weights["min_var"], weights["max_var"]
        values = tf.cast(inputs, tf.float32)
        batch_min = tf.minimum(tf.reduce_min(values), 0.0)
        batch_max = tf.maximum(tf.reduce_max(values), 0.0)
        if self.symmetric:
            batch_max = tf.maximum(-batch_min, batch_max)
            batch_min = -batch_max
        if self.calibrating:
            min_var.assign(tf.minimum(min_var, batch_min))
            max_var.assign(tf.maximum(max_var, batch_max))
            return inputs
        if training:
            decay = self.ema_decay
            min_var.assign(decay * min_var + (1.0 - decay) * batch_min)
            max_var.assign(decay * max_var + (1.0 - decay) * batch_max)
        # Symmetric: levels -127..127 around an exact 0, TFLite's zero point 0.
        quantized = tf.quantization.fake_quant_with_min_max_vars(
            values, min_var, max_var, num_bits=NUM_BITS, narrow_range=self.symmetric)
        return tf.cast(quantized, inputs.dtype)

    def get_config(self):
        return {"ema_decay": self.ema_decay, "symmetric": self.symmetric}


class KernelQuantizer(LastValueQuantizer):
    """tfmot's symmetric int8 weight quantizer, optionally keeping the kernel's zeros.

    With `preserve_sparsity`, `build` records which entries are non-zero and
    every call quantizes `kernel * mask`: a pruned kernel stays pruned
    however training moves the masked entries (`quantization_wrappers`
    writes the masked kernel back on leaving).
    """

    def __init__(self, per_axis=True, preserve_sparsity=False, channel_scaled=False):
        super().__init__(num_bits=NUM_BITS, per_axis=per_axis, symmetric=True, narrow_range=True)
        self.preserve_sparsity = preserve_sparsity
        self.channel_scaled = channel_scaled

    def build(self, tensor_shape, name, layer):
        weights = super().build(tensor_shape, name, layer)
        if self.preserve_sparsity:
            weights["mask"] = layer.add_weight(f"{name}_mask", shape=tensor_shape,
                                               initializer="ones", trainable=False)
        if self.channel_scaled:
            # (units,): the kernel's columns are divided by it before quantization.
            weights["channel_scale"] = layer.add_weight(
                f"{name}_channel_scale", shape=tensor_shape[-1:], initializer="ones",
                trainable=False)
        return weights

    def __call__(self, inputs, training, weights, **kwargs):
        if "mask" in weights:
            inputs = inputs * weights["mask"]
        if "channel_scale" in weights:
            inputs = inputs / weights["channel_scale"]  # (in, units) / (units,)
        return super().__call__(inputs, training, weights, **kwargs)

    def get_config(self):
        return {"per_axis": self.per_axis, "preserve_sparsity": self.preserve_sparsity,
                "channel_scaled": self.channel_scaled}


class BiasScaler(Quantizer):
    """Divides a bias by its layer's output channel scale (TFLite quantizes biases itself)."""

    def build(self, tensor_shape, name, layer):
        return {}  # the scale is `KernelQuantizer`'s, linked by `quantization_wrappers`

    def __call__(self, inputs, training, weights, **kwargs):
        return inputs / weights["channel_scale"]

    def get_config(self):
        return {}


class ChannelScaledOutputQuantizer(ActivationQuantizer):
    """A dense output quantized per tensor after dividing each channel by its own scale.

    The layer computes `y / scale` (its kernel columns and bias divided by
    `scale`, see `KernelQuantizer(channel_scaled=True)`); this quantizes that
    to int8 and multiplies by `scale` in float, so each output channel gets
    its own step, as per-channel activation quantization would. It is for
    the dense layers whose outputs go into a float residual add: the
    attention output and the feed-forward output, where a few channels of a
    trained BERT-style encoder reach values tens of times the others', and a
    per-tensor range set by them leaves the rest a handful of int8 steps.
    In the TFLite file: an int8 FULLY_CONNECTED, then a float MUL.

    While calibrating it also records each channel's range, from which
    `calibrate_quantizers` sets `scale` (each channel's largest magnitude).
    """

    def build(self, tensor_shape, name, layer):
        weights = super().build(tensor_shape, name, layer)
        for suffix in ("channel_min", "channel_max"):
            weights[suffix] = layer.add_weight(f"{name}_{suffix}", shape=tensor_shape[-1:],
                                               initializer="zeros", trainable=False)
        return weights  # "channel_scale" is added by `quantization_wrappers`

    def __call__(self, inputs, training, weights, **kwargs):
        scale = tf.cast(weights["channel_scale"], inputs.dtype)
        if self.calibrating:
            values = tf.reshape(tf.cast(inputs * scale, tf.float32), [-1, inputs.shape[-1]])
            weights["channel_min"].assign(tf.minimum(weights["channel_min"],
                                                     tf.reduce_min(values, axis=0)))
            weights["channel_max"].assign(tf.maximum(weights["channel_max"],
                                                     tf.reduce_max(values, axis=0)))
        return super().__call__(inputs, training, weights, **kwargs) * scale

    def set_channel_scales(self, weights):
        """After calibration: scale = each channel's largest magnitude; the range follows."""
        magnitude = tf.maximum(-weights["channel_min"], weights["channel_max"])  # (units,)
        scale = tf.maximum(magnitude, 1e-3 * tf.reduce_max(magnitude))
        scale = tf.where(scale > 0, scale, tf.ones_like(scale))
        weights["channel_scale"].assign(scale)
        weights["min_var"].assign(tf.minimum(tf.reduce_min(weights["channel_min"] / scale), 0.0))
        weights["max_var"].assign(tf.maximum(tf.reduce_max(weights["channel_max"] / scale), 0.0))


class DenseQuantizeConfig(QuantizeConfig):
    """A Dense layer as TFLite's int8 FULLY_CONNECTED runs it: int8 kernel and output.

    The kernel is per tensor unless `per_axis`; with `channel_scaled` the
    output gets one step per channel (`ChannelScaledOutputQuantizer`).
    The input is quantized by `QuantizedLayer`. The quantized kernel is set
    on the layer without Keras' attribute tracking, so the layer's weights
    (and their order) are untouched; `quantization_wrappers` puts the
    variable back.
    """

    def __init__(self, per_axis=False, preserve_sparsity=False, channel_scaled=False):
        self.per_axis = per_axis
        self.preserve_sparsity = preserve_sparsity
        self.channel_scaled = channel_scaled
        # With `channel_scaled`, the bias is divided by the output channel scale too.
        self.weight_attributes = ("kernel", "bias") if channel_scaled else ("kernel",)

    def get_weights_and_quantizers(self, layer):
        kernel = (layer.kernel, KernelQuantizer(per_axis=self.per_axis,
                                                preserve_sparsity=self.preserve_sparsity,
                                                channel_scaled=self.channel_scaled))
        return [kernel, (layer.bias, BiasScaler())] if self.channel_scaled else [kernel]

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        for name, weight in zip(self.weight_attributes, quantize_weights):
            object.__setattr__(layer, name, weight)

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [ChannelScaledOutputQuantizer() if self.channel_scaled else ActivationQuantizer()]

    def get_config(self):
        return {"per_axis": self.per_axis, "preserve_sparsity": self.preserve_sparsity,
                "channel_scaled": self.channel_scaled}


EMBEDDING_TABLES = ("word_embeddings", "token_type_embeddings", "position_embeddings")


class EmbeddingQuantizeConfig(QuantizeConfig):
    """`ElectraEmbeddings`' three tables in int8 (per tensor: TFLite's int8 GATHER).

    The sum of the three is LayerNorm'ed in float; the next dense layer
    (the embedding projection, or the first block's) quantizes the result.
    """

    weight_attributes = EMBEDDING_TABLES

    def get_weights_and_quantizers(self, layer):
        return [(getattr(layer, name), KernelQuantizer(per_axis=False))
                for name in EMBEDDING_TABLES]

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        for name, weight in zip(EMBEDDING_TABLES, quantize_weights):
            object.__setattr__(layer, name, weight)

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {}


class QuantizedLayer(QuantizeWrapperV2):
    """tfmot's `QuantizeWrapperV2` that also fake-quantizes its (first) input.

    Extra positional arguments (`ElectraEmbeddings` takes the type ids
    second) are passed on by the wrapped layer's own parameter names, since
    the wrapper's `call(inputs, training=None, **kwargs)` takes one.
    """

    def __init__(self, layer, quantize_config, quantize_input=True, **kwargs):
        super().__init__(layer, quantize_config, **kwargs)
        self.quantize_input = quantize_input

    def build(self, input_shape):
        super().build(input_shape)
        self.input_quantizer = ActivationQuantizer() if self.quantize_input else None
        if self.input_quantizer is not None:
            self._input_quantizer_vars = self.input_quantizer.build(input_shape, "input", self)

    def call(self, inputs, *args, training=None, **kwargs):
        if args:
            # From the class: Keras replaces `self.layer.call` while tracing for export.
            names = list(inspect.signature(type(self.layer).call).parameters)[2:2 + len(args)]
            kwargs.update(zip(names, args))
        if self.input_quantizer is not None:
            quantizer, variables = self.input_quantizer, self._input_quantizer_vars
            inputs = _smart_cond(training, lambda: quantizer(inputs, True, variables),
                                 lambda: quantizer(inputs, False, variables))
        # tfmot's call leaves the quantized weights set on the layer; put the variables
        # back, or the layer's own traced call (export) would capture this graph's tensors.
        originals = {name: getattr(self.layer, name)
                     for name in self.quantize_config.weight_attributes}
        try:
            return super().call(inputs, training=training, **kwargs)
        finally:
            for name, variable in originals.items():
                object.__setattr__(self.layer, name, variable)

    def get_config(self):
        return {**super().get_config(), "quantize_input": self.quantize_input}


# The right-hand operands of query @ key^T and probs @ value: TFLite's int8
# BATCH_MATMUL computes a different product than TF's fake quantization when such
# an operand has a non-zero zero point, so their ranges are symmetric. Measured on
# MiniLM's first layer (file against QAT model, real tokens): with asymmetric
# ranges every context value was off by ~10 int8 steps on average; with value
# symmetric 23% of the scores still differed by 1-3 steps; with key symmetric too,
# 0.5% by at most 1 step.
SYMMETRIC_ATTENTION_POINTS = ("key", "value")


class ActivationFakeQuant(keras.layers.Layer):
    """One `ActivationQuantizer` as a layer: a fake-quant point inside a `TransformerLayer`."""

    def __init__(self, point, **kwargs):
        super().__init__(**kwargs)
        self.point = point
        self.quantizer = ActivationQuantizer(symmetric=point in SYMMETRIC_ATTENTION_POINTS)

    def build(self, input_shape):
        self._quantizer_vars = self.quantizer.build(input_shape, self.point, self)
        super().build(input_shape)

    def call(self, inputs, training=None):
        quantizer, variables = self.quantizer, self._quantizer_vars
        return _smart_cond(training, lambda: quantizer(inputs, True, variables),
                           lambda: quantizer(inputs, False, variables))

    def get_config(self):
        return {**super().get_config(), "point": self.point}


# `TransformerLayer`'s dense layers whose outputs join the residual stream (in float).
RESIDUAL_DENSE_LAYERS = ("attention_output_dense", "output_dense")


def _set_kernel_ranges(wrapper):
    """Starts each weight quantizer's range at the weight's own (tfmot starts at +-6).

    Inference before any training step must see the weights' ranges: a
    +-6 range rounds a small kernel to 0. A channel-scaled kernel's range is
    that of kernel / scale.
    """
    for weight, quantizer, variables in wrapper._weight_vars:
        if "min_var" not in variables:  # BiasScaler
            continue
        if "channel_scale" in variables:
            weight = weight / variables["channel_scale"]
        axes = list(range(weight.shape.rank - 1)) if quantizer.per_axis else None
        bound = tf.reduce_max(tf.abs(weight), axis=axes)
        variables["min_var"].assign(-bound)
        variables["max_var"].assign(bound)


def _dense_slots(owner):
    """`(attribute, layer)` for the plain Dense layers `owner` holds as attributes."""
    return [(name, value) for name, value in vars(owner).items()
            if not name.startswith("_") and type(value) is keras.layers.Dense]


def _check_task_model(model):
    check_task_model(model, "Quantization-aware training takes a task model")
    if not model.built:
        raise ValueError("Build the model (call it once on a batch) before quantization-aware "
                         "training: its layers must have their weights.")


@contextlib.contextmanager
def quantization_wrappers(model, preserve_sparsity=False, scale_residual_channels=True):
    """Puts int8 fake quantization on every dense layer, embedding table and attention matmul.

    Inside the block the model computes what its int8 TFLite conversion
    will (`quantized_tflite_flatbuffer`); `fit` trains through the fake
    quantizers (straight-through gradients). On leaving, the original
    layers are put back with the trained float weights (with
    `preserve_sparsity`, multiplied by their masks) and the quantizers are
    dropped, as are compiled train/predict functions.

    Args:
        model: a built `ElectraClassifier`, `ElectraTokenClassifier` or
            `ElectraQuestionAnswering`.
        preserve_sparsity: keep each kernel's zeros (after pruning).
        scale_residual_channels: give the outputs of the attention-output and
            feed-forward-output dense layers (`RESIDUAL_DENSE_LAYERS`, added to
            the float residual stream) one int8 step per channel
            (`ChannelScaledOutputQuantizer`; a float MUL in the file). False:
            one step per tensor, set by the largest channel.

    Yields:
        Every `ActivationQuantizer`-holding layer, for `calibrate_quantizers`.

    >>> from electra_tf import ElectraClassifier, ElectraEncoder
    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=1, num_heads=2,
    ...                          intermediate_size=16, max_sequence_length=4)
    >>> classifier = ElectraClassifier(encoder, num_classes=2)
    >>> inputs = {"input_word_ids": tf.constant([[2, 5, 3, 0]]),
    ...           "input_mask": tf.constant([[1, 1, 1, 0]]), "input_type_ids": tf.zeros((1, 4), tf.int32)}
    >>> _ = classifier(inputs)
    >>> with quantization_wrappers(classifier) as quantized:
    ...     len(quantized)  # 4 dense layers + the head + the embeddings, and 6 attention points
    12
    """
    _check_task_model(model)
    encoder = model.encoder
    replaced = []  # (owner, attribute, original) to put back
    quantized = []

    def wrap(layer, config, quantize_input, input_shape):
        wrapper = QuantizedLayer(layer, config, quantize_input=quantize_input,
                                 dtype=layer.dtype_policy)
        wrapper.build(input_shape)
        # tfmot's weight ranges start at +-6 and follow the weights only while training;
        # inference before any training step must see the weights' own ranges.
        if getattr(config, "channel_scaled", False):
            # One output channel scale, shared by the kernel, the bias and the output.
            scale = wrapper._weight_vars[0][2]["channel_scale"]
            wrapper._weight_vars[1][2]["channel_scale"] = scale
            wrapper._output_quantizer_vars["channel_scale"] = scale
        _set_kernel_ranges(wrapper)
        return wrapper

    def replace(owner, name, wrapper):
        original = getattr(owner, name)
        replaced.append((owner, name, original))
        object.__setattr__(owner, name, wrapper)
        quantized.append(wrapper)

    try:
        replace(encoder, "embedding_layer",
                wrap(encoder.embedding_layer, EmbeddingQuantizeConfig(), False, (None, None)))
        owners = [encoder] + list(encoder.transformer_layers) + [model]
        for owner in owners:
            for name, dense in _dense_slots(owner):
                rank3 = owner is encoder and name == "embedding_projection"  # on (B, T, E)
                input_shape = (None,) * rank3 + (None, dense.kernel.shape[0])
                channel_scaled = (scale_residual_channels and name in RESIDUAL_DENSE_LAYERS
                                  and dense.use_bias)
                config = DenseQuantizeConfig(preserve_sparsity=preserve_sparsity,
                                             channel_scaled=channel_scaled)
                replace(owner, name, wrap(dense, config, True, input_shape))
                if preserve_sparsity:
                    variables = quantized[-1]._weight_vars[0][2]
                    variables["mask"].assign(tf.cast(dense.kernel != 0, tf.float32))
        # The attention matmuls are always quantized: left in float, the converter still
        # turns probs @ value into an int8 BATCH_MATMUL with ranges QAT never trained.
        for layer in encoder.transformer_layers:
            points = {}
            for point in ATTENTION_QUANTIZE_POINTS:
                fake_quant = ActivationFakeQuant(point, name=f"{layer.name}_{point}_quant")
                fake_quant.build(None)
                points[point] = fake_quant
                quantized.append(fake_quant)
            object.__setattr__(layer, "attention_quantizers", points)
            replaced.append((layer, "attention_quantizers", None))
        model.train_function = model.test_function = model.predict_function = None
        yield quantized
        if preserve_sparsity:
            for wrapper in quantized:
                for weight, _, variables in getattr(wrapper, "_weight_vars", ()):
                    if "mask" in variables:
                        weight.assign(weight * variables["mask"])
    finally:
        for owner, name, original in reversed(replaced):
            if original is None:
                object.__delattr__(owner, name)
            else:
                object.__setattr__(owner, name, original)
        model.train_function = model.test_function = model.predict_function = None


def activation_quantizers(quantized):
    """`(layer, quantizer, variables)` for every activation range inside `quantized`."""
    found = []
    for layer in quantized:
        if isinstance(layer, ActivationFakeQuant):
            found.append((layer, layer.quantizer, layer._quantizer_vars))
            continue
        if layer.input_quantizer is not None:
            found.append((layer, layer.input_quantizer, layer._input_quantizer_vars))
        for quantizer in layer._output_quantizers:
            found.append((layer, quantizer, layer._output_quantizer_vars))
    return found


def calibrate_quantizers(model, quantized, batches):
    """Sets every activation range to the min/max it sees on `batches` (features dicts).

    Call it once before training: the ranges start from the data rather than
    from zero. Runs eagerly; a few batches are enough.
    """
    found = activation_quantizers(quantized)
    for _, quantizer, variables in found:
        quantizer.calibrating = True
        for key, variable in variables.items():
            start = tf.ones_like if key == "channel_scale" else tf.zeros_like
            variable.assign(start(variable))
    count = 0
    try:
        for batch in batches:
            features = batch[0] if isinstance(batch, tuple) else batch
            model(features, training=False)
            count += 1
    finally:
        for _, quantizer, _ in found:
            quantizer.calibrating = False
    if not count:
        raise ValueError("`batches` is empty; calibrating the int8 ranges needs examples.")
    for layer, quantizer, variables in found:
        if isinstance(quantizer, ChannelScaledOutputQuantizer):
            quantizer.set_channel_scales(variables)
            _set_kernel_ranges(layer)  # the kernel is now divided by the new scales
    return count


def quantized_tflite_flatbuffer(model, max_seq_length, batch_size=1, float_gelu=True):
    """The int8 TFLite flatbuffer of a model inside `quantization_wrappers`.

    The converter quantizes what the graph's fake-quant ops mark (every dense
    layer, embedding table and attention matmul, with the trained ranges) and
    keeps LayerNorm, softmax and the residual adds in float32. No
    representative dataset: the ranges come from training.

    Args:
        model: the model, inside `quantization_wrappers` (or
            `quantization_aware_training`).
        max_seq_length: the file's fixed sequence length.
        batch_size: the file's fixed batch size.
        float_gelu: the converter makes each GELU (between two int8 dense
            layers) an int8 op, which XNNPACK cannot run; True rewrites it to
            dequantize, GELU in float, quantize to the same int8 tensor
            (`gelu_in_float`): the same values, all inside XNNPACK.
    """
    from electra_tf.export.tflite_export import _serving_function

    serve = _serving_function(model, max_seq_length, batch_size)
    # The converter saves `serve` with this object to keep its signature; the model
    # itself would not save (Keras traces each wrapped layer's own call, which sees
    # the quantized kernels of the enclosing trace), its variables do.
    variables = tf.Module()
    variables.captured = list(serve.graph.variables)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve], variables)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    flatbuffer = converter.convert()
    return gelu_in_float(flatbuffer) if float_gelu else flatbuffer


def gelu_in_float(flatbuffer):
    """`flatbuffer` with every int8 GELU replaced by DEQUANTIZE, float GELU, QUANTIZE.

    XNNPACK has no int8 GELU kernel, so an int8 GELU runs on TFLite's
    built-in kernel and cuts the XNNPACK graph around it: the QAT MiniLM file
    ran in 15 XNNPACK partitions, 9 after this rewrite, and its batch-1
    latency improved by about 2%. The GELU's int8 output tensor (its scale and
    zero point) is kept, so the next dense layer reads the same kind of
    tensor; TFLite's int8 GELU is a table of the float function on the 256
    input levels, so the values agree (identical logits on all 1,068 dev
    reviews for three QAT MiniLM files; within an output step on the test
    models). A file without int8 GELUs comes back unchanged.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    codes = {flatbuffer_utils.opcode_to_name(model, index): index
             for index in range(len(model.operatorCodes))}
    graph = model.subgraphs[0]

    def is_int8_gelu(operator):
        return (flatbuffer_utils.opcode_to_name(model, operator.opcodeIndex) == "GELU"
                and graph.tensors[operator.inputs[0]].type == schema.TensorType.INT8)

    if not any(is_int8_gelu(op) for op in graph.operators):
        return flatbuffer
    if not {"DEQUANTIZE", "QUANTIZE"} <= set(codes):  # every QAT file has both (LayerNorm)
        return flatbuffer

    def float_copy(index, suffix):
        tensor = copy.copy(graph.tensors[index])
        tensor.type, tensor.quantization, tensor.buffer = schema.TensorType.FLOAT32, None, 0
        tensor.name = (tensor.name or b"") + suffix
        graph.tensors.append(tensor)
        return len(graph.tensors) - 1

    def rewired(operator, inputs, outputs):
        new = copy.copy(operator)
        new.inputs, new.outputs = np.array(inputs, np.int32), np.array(outputs, np.int32)
        return new

    def conversion(code, source, target):
        operator = schema.OperatorT()
        operator.opcodeIndex = codes[code]
        return rewired(operator, [source], [target])

    operators = []
    for op in graph.operators:
        if not is_int8_gelu(op):
            operators.append(op)
            continue
        int8_in, int8_out = op.inputs[0], op.outputs[0]
        float_in, float_out = float_copy(int8_in, b"/float"), float_copy(int8_out, b"/float")
        operators += [conversion("DEQUANTIZE", int8_in, float_in),
                      rewired(op, [float_in], [float_out]),  # the GELU, options kept
                      conversion("QUANTIZE", float_out, int8_out)]
    graph.operators = operators
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def kernel_sparsity(model):
    """The fraction of zeros over the kernels pruning touches (`sparsity_report`'s overall)."""
    from electra_tf.compression.pruning import sparsity_report

    return sparsity_report(model)["overall_sparsity"]


# A model whose kernels are at least this sparse is taken as pruned: QAT keeps its zeros.
PRUNED_SPARSITY = 0.1


@contextlib.contextmanager
def quantization_aware_training(
    model,
    train_data,
    epochs=1,
    steps_per_epoch=None,
    learning_rate=2e-5,
    calibration_batches=8,
    preserve_sparsity=None,
    teacher=None,
    temperature=2.0,
    alpha=0.5,
    log_dir=None,
    verbose=1,
):
    """Fine-tunes a copy of a task model with int8 fake quantization; yields it still quantized.

    Inside the block the copy computes what its int8 TFLite file will
    (`quantized_tflite_flatbuffer`), so the block is where to score and
    convert it; after it, the copy holds the trained float weights.

        with quantization_aware_training(classifier, train_data) as (quantized, history):
            dev = task_metrics(quantized, tokenizer, task_info, "dev.tsv")  # the int8 model's
            flatbuffer = quantized_tflite_flatbuffer(quantized, max_seq_length=128)

    Args:
        model: a trained `ElectraClassifier`, `ElectraTokenClassifier` or
            `ElectraQuestionAnswering` (left unchanged); pruned or distilled
            ones too.
        train_data: a tf.data.Dataset of `(features, labels)` batches, as the
            model's own `fit` takes them (`task_data.task_dataset`).
        epochs, steps_per_epoch: as for `fit`; `steps_per_epoch` is needed
            when `train_data` has no known length.
        learning_rate: peak rate of the fine-tuning optimizer (warmup, linear decay).
        calibration_batches: batches of `train_data` that set the activation
            ranges before training (`calibrate_quantizers`).
        preserve_sparsity: keep each kernel's zeros; None: when the kernels
            are at least `PRUNED_SPARSITY` zeros (a pruned model).
        teacher: optional task model of the same task whose soft predictions
            the copy learns from (`ElectraDistiller`, with `temperature` and
            `alpha`); e.g. `model` itself, in float.
        log_dir: TensorBoard directory; None: no logs.
        verbose: Keras' progress output (1: a progress bar).

    Yields:
        `(quantized, history)`: the copy (inside `quantization_wrappers`) and
        the Keras `History` of its training.
    """
    from electra_tf.compression.pruning import copy_task_model
    from electra_tf.compression.training_loop import compiled_trainer, fit_steps
    from electra_tf.optimization.layerwise_decay_adamw import create_finetuning_optimizer

    _check_task_model(model)
    if not is_integer(calibration_batches) or calibration_batches < 1:
        raise ValueError("`calibration_batches` must be a positive integer; received "
                         f"{calibration_batches!r}.")
    train_data, steps_per_epoch = fit_steps(train_data, epochs, steps_per_epoch)
    total_steps = int(epochs * steps_per_epoch)
    if preserve_sparsity is None:
        preserve_sparsity = kernel_sparsity(model) >= PRUNED_SPARSITY

    quantized = copy_task_model(model)
    optimizer = create_finetuning_optimizer(
        learning_rate, total_steps, num_layers=quantized.encoder.num_layers)
    callbacks = []
    if log_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(
            log_dir, update_freq=max(1, total_steps // 50)))
    with quantization_wrappers(quantized, preserve_sparsity=preserve_sparsity) as points:
        calibrate_quantizers(quantized, points, train_data.take(calibration_batches))
        trainer = compiled_trainer(quantized, optimizer, teacher, temperature, alpha)
        history = trainer.fit(train_data, epochs=epochs, steps_per_epoch=steps_per_epoch,
                              callbacks=callbacks, verbose=verbose)
        yield quantized, history


def tflite_agreement(model, flatbuffer, features, max_seq_length):
    """The largest absolute difference between `model`'s outputs and the int8 file's.

    `model` is inside `quantization_wrappers` (what the file was converted
    from); `features` is a dict of (batch, max_seq_length) int32 arrays, run
    one example at a time through both.
    """
    import tempfile

    from electra_tf.export.tflite_export import _serving_function, run_tflite

    serve = _serving_function(model, max_seq_length, None)
    features = {key: np.asarray(value, np.int32) for key, value in features.items()}
    expected = {name: value.numpy() for name, value in serve(features).items()}
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/model.tflite"
        with open(path, "wb") as f:
            f.write(flatbuffer)
        outputs = run_tflite(path, features)
    if not isinstance(outputs, dict):
        outputs = {"logits": outputs}
    return max(float(np.max(np.abs(outputs[name] - expected[name]))) for name in expected)
