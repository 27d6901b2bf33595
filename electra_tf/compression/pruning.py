"""Magnitude pruning of any ELECTRA task model with tensorflow-model-optimization.

    pruned, history = prune_task_model(model, train_data, target_sparsity=0.5, epochs=1)
    print(format_sparsity_table(sparsity_report(pruned)))

`prune_task_model` works on the task models themselves (`ElectraClassifier`,
`ElectraTokenClassifier`, `ElectraQuestionAnswering`): `pruning_wrappers`
puts tfmot's `prune_low_magnitude` wrapper in place of each prunable layer of
the (subclassed) model — the attribute or list entry that holds it — so the
model's own `call` runs the wrapped layers and nothing of the forward pass is
copied here. The prunable layers are the encoder's embedding projection and
`TransformerLayer`s (tfmot `PrunableLayer`s: their four dense kernels) and the
head's dense layers. The model then trains with its own loss (`compile`,
`fit` and `UpdatePruningStep`, which finds the wrappers inside the nested
models) on a `PolynomialDecay` schedule that zeroes the smallest kernel
entries step by step. On the way out the wrappers are taken off again: the
model holds the very same layer objects, now with sparse kernels, and saves,
loads and exports as usual.

The embedding tables, biases and LayerNorms are not pruned (the issue asks
for the encoder and head kernels; embedding rows of rare words are read
too seldom for magnitude pruning to judge them).
"""

import contextlib
import functools
import inspect
import math
import warnings

import numpy as np
import tf_keras as keras
from tensorflow_model_optimization.sparsity.keras import (
    PolynomialDecay,
    PrunableLayer,
    PruningSummaries,
    UpdatePruningStep,
    prune_low_magnitude,
)

from electra_tf.compression.training_loop import compiled_trainer, fit_steps
from electra_tf.models.electra_encoder import ElectraEncoder  # noqa: F401  (docstring examples)
from electra_tf.tasks.electra_classifier import ElectraClassifier
from electra_tf.tasks.electra_question_answering import ElectraQuestionAnswering  # noqa: F401
from electra_tf.tasks.electra_token_classifier import ElectraTokenClassifier  # noqa: F401
from electra_tf.tasks.task_models import check_task_model
from electra_tf.utils.checks import is_integer, is_number

# Fraction of the training steps over which sparsity ramps up to its target;
# the rest fine-tunes at the final sparsity so accuracy can recover.
RAMP_FRACTION = 0.7
# Mask updates along the ramp: often enough for a smooth ramp, rarely enough
# that the weights adapt between updates (tfmot's default frequency of 100
# steps would prune nothing in a short run).
MASK_UPDATES = 10


def _check_task_model(model):
    check_task_model(model, "Expected a task model")


def copy_task_model(model):
    """A new task model of the same class, config and (copied) weights.

    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=1,
    ...                          num_heads=2, intermediate_size=16)
    >>> original = ElectraTokenClassifier(encoder, num_classes=3)
    >>> copy = copy_task_model(original)
    >>> copy is original, np.array_equal(copy.logits.kernel.numpy(), original.logits.kernel.numpy())
    (False, True)
    """
    _check_task_model(model)
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def copy_classifier(classifier):
    """Deprecated alias of `copy_task_model`.

    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=1,
    ...                          num_heads=2, intermediate_size=16)
    >>> import pytest
    >>> with pytest.warns(DeprecationWarning):
    ...     copy = copy_classifier(ElectraClassifier(encoder, num_classes=2))
    >>> type(copy).__name__
    'ElectraClassifier'
    """
    warnings.warn("`copy_classifier` is deprecated; use `copy_task_model`, which copies any "
                  "task model.", DeprecationWarning, stacklevel=2)
    return copy_task_model(classifier)


def _is_prunable(value):
    return type(value) is keras.layers.Dense or isinstance(value, PrunableLayer)


def _prunable_slots(model):
    """`(owner, attribute, layers)` for every place a prunable layer sits, in model order.

    `layers` is the attribute's layer, or its list of layers (the encoder's
    `transformer_layers`). Owners are the encoder (embedding projection,
    transformer layers) and the task model (its head's dense layers), found
    by type: a head added to a task model is pruned without a change here.
    """
    _check_task_model(model)
    slots = []
    for owner in (model.encoder, model):
        found = []
        for name, value in vars(owner).items():
            if name.startswith("_"):
                continue
            if _is_prunable(value) or (isinstance(value, (list, tuple)) and value
                                       and all(map(_is_prunable, value))):
                found.append((owner, name, value))
        # In the order the owner tracks its layers (that of its weights), which
        # `pruning_wrappers` keeps; attribute order changes when one is reassigned.
        tracked = [id(item) for item in owner._self_tracked_trackables]
        slots.extend(sorted(found, key=lambda slot: tracked.index(id(slot[2]))))
    return slots


def prunable_layers(model):
    """The layers pruning wraps, in model order: embedding projection, transformer layers, head.

    They are the model's own objects (what `pruning_wrappers` wraps and puts back).

    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=2, num_heads=2,
    ...                          intermediate_size=16, embedding_size=4)
    >>> [layer.name for layer in prunable_layers(ElectraQuestionAnswering(encoder))]
    ['embeddings_project', 'transformer_layer_0', 'transformer_layer_1', 'qa_outputs']
    """
    layers = []
    for _, _, value in _prunable_slots(model):
        layers.extend(value if isinstance(value, (list, tuple)) else [value])
    return layers


@functools.lru_cache(maxsize=None)
def _wrapper_class():
    """tfmot's `PruneLowMagnitude`, passing extra positional arguments on by name.

    tfmot exports `prune_low_magnitude` but not the wrapper class it returns,
    so the class is taken from a wrapper of a throwaway Dense layer. The
    wrapper's `call(inputs, training=None, **kwargs)` takes one positional
    input; `TransformerLayer` is called as `layer(x, attention_bias, ...)`,
    so the extra positional arguments are bound to the wrapped layer's own
    parameter names.
    """
    base = type(prune_low_magnitude(keras.layers.Dense(1)))

    class PruneLowMagnitude(base):
        def call(self, inputs, *args, training=None, **kwargs):
            if args:
                names = list(inspect.signature(self.layer.call).parameters)[1:1 + len(args)]
                kwargs.update(zip(names, args))
            return super().call(inputs, training=training, **kwargs)

    return PruneLowMagnitude


def _set_in_order(owner, name, value):
    """`setattr(owner, name, value)`, keeping `value` where the old value sat among the layers.

    Keras appends a newly assigned layer to the owner's tracked layers, which
    would change the order of `model.weights` (and so of `get_weights`) once
    the original layer is put back; the order is restored here.
    """
    old = getattr(owner, name)
    order = list(owner._self_tracked_trackables)
    setattr(owner, name, value)
    new, tracked = getattr(owner, name), owner._self_tracked_trackables
    if any(item is old for item in order) and not any(item is old for item in tracked):
        tracked[:] = [new if item is old else item for item in order]


@contextlib.contextmanager
def pruning_wrappers(model, pruning_schedule):
    """Puts tfmot's pruning wrapper in place of each prunable layer of `model`, then back.

    Inside the block, each of `prunable_layers(model)` is replaced, where the
    model holds it (`encoder.embedding_projection`, the entries of
    `encoder.transformer_layers`, the head's dense attributes), by a
    `prune_low_magnitude` wrapper around it with `pruning_schedule`; the
    model's own `call` runs them, and `fit` with tfmot's `UpdatePruningStep`
    prunes. On leaving, each kernel is multiplied by its final mask and the
    original layer objects are put back (in their original order, so
    `get_weights` lines up with a fresh model's); compiled train/predict
    functions, which captured the wrappers, are dropped.

    Yields:
        The wrappers, in model order (`wrapper.layer` is the model's layer).

    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=1, num_heads=2,
    ...                          intermediate_size=16)
    >>> tagger = ElectraTokenClassifier(encoder, num_classes=3)
    >>> logits = tagger.logits
    >>> with pruning_wrappers(tagger, pruning_schedule(0.5, total_steps=10)) as wrappers:
    ...     [type(w).__name__ for w in wrappers], tagger.logits is wrappers[-1]
    (['PruneLowMagnitude', 'PruneLowMagnitude'], True)
    >>> tagger.logits is logits
    True
    """
    slots = _prunable_slots(model)
    wrapper_class = _wrapper_class()

    def wrap(layer):
        wrapper = wrapper_class(layer, pruning_schedule=pruning_schedule,
                                dtype=layer.dtype_policy)
        wrapper.build(None)  # the layer is built; this adds the mask and threshold variables
        return wrapper

    wrappers, wrapped = [], []
    try:
        for owner, name, value in slots:
            if isinstance(value, (list, tuple)):
                # A new list rather than item assignment: tf's tracked list refuses to be
                # saved once an entry has been replaced, even after it is put back.
                replacement = [wrap(layer) for layer in value]
                wrappers.extend(replacement)
            else:
                replacement = wrap(value)
                wrappers.append(replacement)
            _set_in_order(owner, name, replacement)
            wrapped.append((owner, name, value))
        yield wrappers
        for wrapper in wrappers:  # the kernels as the last mask update left them
            wrapper.pruning_obj.weight_mask_op()
    finally:
        for owner, name, value in wrapped:
            _set_in_order(owner, name, value)
        model.train_function = model.test_function = model.predict_function = None


def prunable_kernels(model):
    """`(name, variable)` for every kernel that pruning touches, in model order.

    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=1,
    ...                          num_heads=2, intermediate_size=16)
    >>> [name.split("/", 1)[1] for name, _ in prunable_kernels(
    ...     ElectraTokenClassifier(encoder, num_classes=3))]
    ['transformer_layer_0/qkv/kernel', 'transformer_layer_0/attention_output/kernel',
     'transformer_layer_0/intermediate/kernel', 'transformer_layer_0/output/kernel',
     'logits/kernel']
    """
    kernels = []
    for layer in prunable_layers(model):
        kernels.extend(layer.get_prunable_weights() if isinstance(layer, PrunableLayer)
                       else [layer.kernel])
    return [(kernel.name.split(":")[0], kernel) for kernel in kernels]


def sparsity_report(model):
    """The fraction of exact zeros in each prunable kernel, and over all of them.

    Args:
        model: a task model (`ElectraClassifier`, `ElectraTokenClassifier`,
            `ElectraQuestionAnswering`).

    Returns:
        `{"layers": [{"name", "shape", "zeros", "size", "sparsity"}, ...],
        "overall_sparsity": zeros / size over those kernels,
        "model_sparsity": zeros / size over all the model's weights}`.

    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=1,
    ...                          num_heads=2, intermediate_size=16)
    >>> report = sparsity_report(ElectraClassifier(encoder, num_classes=2))
    >>> len(report["layers"]), report["overall_sparsity"]
    (5, 0.0)
    """
    layers = []
    for name, kernel in prunable_kernels(model):
        values = kernel.numpy()
        zeros = int(np.sum(values == 0))
        layers.append({"name": name, "shape": list(values.shape), "zeros": zeros,
                       "size": int(values.size), "sparsity": zeros / values.size})
    weights = model.get_weights()
    model_zeros = sum(int(np.sum(w == 0)) for w in weights)
    model_size = sum(int(w.size) for w in weights)
    return {
        "layers": layers,
        "overall_sparsity": sum(r["zeros"] for r in layers) / sum(r["size"] for r in layers),
        "model_sparsity": model_zeros / model_size,
    }


def format_sparsity_table(report):
    """`sparsity_report` as a text table, one kernel per row.

    >>> print(format_sparsity_table({"layers": [{"name": "logits/kernel", "shape": [8, 2],
    ...                                           "sparsity": 0.5}],
    ...                              "overall_sparsity": 0.5, "model_sparsity": 0.1}))
    kernel                     shape  sparsity
    logits/kernel                8x2     50.0%
    all pruned kernels                   50.0%
    whole model                          10.0%
    """
    width = max([len(row["name"]) for row in report["layers"]] + [len("all pruned kernels")])
    lines = [f"{'kernel':<{width}}  {'shape':>12}  {'sparsity':>8}"]
    for row in report["layers"]:
        shape = "x".join(str(d) for d in row["shape"])
        lines.append(f"{row['name']:<{width}}  {shape:>12}  {row['sparsity']:>8.1%}")
    lines.append(f"{'all pruned kernels':<{width}}  {'':>12}  {report['overall_sparsity']:>8.1%}")
    lines.append(f"{'whole model':<{width}}  {'':>12}  {report['model_sparsity']:>8.1%}")
    return "\n".join(lines)


def check_target_sparsity(target_sparsity):
    """A ValueError unless `target_sparsity` is a number in [0, 1), the fraction of zeros.

    >>> check_target_sparsity(1.0)
    Traceback (most recent call last):
    ...
    ValueError: `target_sparsity` (--sparsity) must be a number in [0, 1), the fraction of zeros
    each pruned kernel ends with; received 1.0.
    """
    if not is_number(target_sparsity) or not 0.0 <= target_sparsity < 1.0:
        raise ValueError(
            "`target_sparsity` (--sparsity) must be a number in [0, 1), the fraction of zeros "
            f"each pruned kernel ends with; received {target_sparsity!r}."
        )


def pruning_schedule(target_sparsity, total_steps, initial_sparsity=0.0):
    """tfmot's `PolynomialDecay` from `initial_sparsity` to `target_sparsity`.

    The ramp covers the first 70% of `total_steps` in about 10 mask updates;
    `end_step` falls on an update step, so the target is reached exactly.

    >>> schedule = pruning_schedule(0.5, total_steps=100)
    >>> config = schedule.get_config()["config"]
    >>> config["final_sparsity"], config["end_step"], config["frequency"]
    (0.5, 70, 7)
    """
    check_target_sparsity(target_sparsity)
    if not 0.0 <= initial_sparsity <= target_sparsity:
        raise ValueError(
            f"`initial_sparsity` must be in [0, target_sparsity={target_sparsity}]; "
            f"received {initial_sparsity!r}."
        )
    if not is_integer(total_steps) or total_steps < 1:
        raise ValueError(f"`total_steps` must be a positive integer; received {total_steps!r}.")
    ramp = max(1, int(RAMP_FRACTION * total_steps))
    frequency = max(1, ramp // MASK_UPDATES)
    end_step = frequency * max(1, ramp // frequency)
    return PolynomialDecay(
        initial_sparsity=initial_sparsity, final_sparsity=target_sparsity,
        begin_step=0, end_step=end_step, frequency=frequency,
    )


def prune_task_model(
    model,
    train_data,
    target_sparsity=0.5,
    epochs=1,
    steps_per_epoch=None,
    learning_rate=2e-5,
    log_dir=None,
    verbose=1,
    teacher=None,
    temperature=2.0,
    alpha=0.9,
):
    """Fine-tunes a copy of a task model while pruning its kernels to `target_sparsity`.

    The copy trains with its own loss (`compile()`'s "auto": cross-entropy
    for a classifier or tagger, the span loss for QA) inside
    `pruning_wrappers`. With a `teacher` (typically `model` itself,
    unpruned), it learns from the teacher's soft predictions as well as the
    labels (`ElectraDistiller`'s loss), which keeps it close to the function
    it had before pruning (Sanh et al. 2020 prune with alpha 0.9 and T 2).

    Args:
        model: a trained `ElectraClassifier`, `ElectraTokenClassifier` or
            `ElectraQuestionAnswering` (left unchanged).
        train_data: a tf.data.Dataset of `(features, labels)` batches, as the
            model's own `fit` takes them (`task_data.task_dataset`).
        target_sparsity: the fraction of zeros each pruned kernel ends with, in [0, 1).
        epochs: passes over `train_data` (or over `steps_per_epoch` batches).
        steps_per_epoch: batches per epoch; needed when `train_data` has no
            known length, or to prune on part of it.
        learning_rate: peak rate of the fine-tuning optimizer (warmup, linear decay).
        log_dir: TensorBoard directory for loss and per-layer sparsity
            (tfmot's `PruningSummaries`); None: no logs.
        verbose: Keras' progress output (1: a progress bar).
        teacher: optional trained task model of the same task to distil from
            while pruning; None trains on the labels only.
        temperature: softmax temperature of the teacher's soft targets.
        alpha: weight of the soft (teacher) term; 1 - alpha weighs the labels.

    Returns:
        `(pruned, history)`: a new model of `model`'s class whose kernels are
        sparse, and the Keras `History` of the fine-tuning.

    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=1,
    ...                          num_heads=2, intermediate_size=16)
    >>> prune_task_model(ElectraTokenClassifier(encoder, num_classes=3), [], target_sparsity=1.0)
    Traceback (most recent call last):
    ...
    ValueError: `target_sparsity` (--sparsity) must be a number in [0, 1), the fraction of zeros
    each pruned kernel ends with; received 1.0.
    """
    from electra_tf.optimization.layerwise_decay_adamw import create_finetuning_optimizer

    _check_task_model(model)
    check_target_sparsity(target_sparsity)
    train_data, steps_per_epoch = fit_steps(train_data, epochs, steps_per_epoch)
    total_steps = int(epochs * steps_per_epoch)
    schedule = pruning_schedule(target_sparsity, total_steps)

    pruned = copy_task_model(model)
    optimizer = create_finetuning_optimizer(
        learning_rate, total_steps, num_layers=pruned.encoder.num_layers)
    callbacks = [UpdatePruningStep()]
    if log_dir is not None:
        callbacks.append(PruningSummaries(log_dir=log_dir, update_freq=max(
            1, math.ceil(total_steps / 50))))
    with pruning_wrappers(pruned, schedule):
        # With a teacher, UpdatePruningStep finds the wrappers inside the distiller's student.
        trainer = compiled_trainer(pruned, optimizer, teacher, temperature, alpha)
        history = trainer.fit(train_data, epochs=epochs, steps_per_epoch=steps_per_epoch,
                              callbacks=callbacks, verbose=verbose)
    return pruned, history


def prune_classifier(classifier, train_data, **kwargs):
    """`prune_task_model` for an `ElectraClassifier`, with the same keyword arguments.

    >>> encoder = ElectraEncoder(vocab_size=10, hidden_size=8, num_layers=1,
    ...                          num_heads=2, intermediate_size=16)
    >>> prune_classifier(ElectraTokenClassifier(encoder, num_classes=3), [])
    Traceback (most recent call last):
    ...
    ValueError: Expected an ElectraClassifier; received ElectraTokenClassifier. Prune any task
    model with `prune_task_model`.
    """
    if not isinstance(classifier, ElectraClassifier):
        raise ValueError(f"Expected an ElectraClassifier; received {type(classifier).__name__}. "
                         "Prune any task model with `prune_task_model`.")
    return prune_task_model(classifier, train_data, **kwargs)
