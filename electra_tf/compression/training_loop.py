"""What every compression job's fine-tuning shares: its step count and its trainer.

    train_data, steps_per_epoch = fit_steps(train_data, epochs=1, steps_per_epoch=None)
    trainer = compiled_trainer(model, optimizer, teacher=None)  # or an ElectraDistiller
    trainer.fit(train_data, epochs=1, steps_per_epoch=steps_per_epoch)
"""

import tensorflow as tf


def fit_steps(train_data, epochs, steps_per_epoch):
    """`(train_data, steps_per_epoch)` for `fit`: the data repeated when the steps need it.

    >>> data = tf.data.Dataset.range(4).batch(2)
    >>> fit_steps(data, epochs=1, steps_per_epoch=None)[1]
    2
    >>> int(fit_steps(data, epochs=2, steps_per_epoch=3)[0].cardinality())  # repeated: infinite
    -1
    """
    if not isinstance(train_data, tf.data.Dataset):
        raise ValueError(
            f"`train_data` must be a tf.data.Dataset of (features, labels) batches; received "
            f"{type(train_data).__name__}."
        )
    cardinality = int(train_data.cardinality())
    if steps_per_epoch is None:
        if cardinality < 1:
            raise ValueError("`train_data` has no known number of batches; pass `steps_per_epoch`.")
        return train_data, cardinality
    if cardinality > 0 and steps_per_epoch * epochs > cardinality:
        train_data = train_data.repeat()
    return train_data, steps_per_epoch


def compiled_trainer(model, optimizer, teacher=None, temperature=2.0, alpha=0.5):
    """`model` compiled with its own loss, or, with a `teacher`, an `ElectraDistiller` of it.

    Either way `fit` updates `model`'s weights only; the distiller's loss adds
    the teacher's soft predictions (weight `alpha`, temperature `temperature`).
    """
    if teacher is None:
        model.compile(optimizer=optimizer)
        return model
    from electra_tf.compression.electra_distiller import ElectraDistiller

    trainer = ElectraDistiller(teacher, model, temperature=temperature, alpha=alpha)
    trainer.compile(optimizer=optimizer)
    return trainer
