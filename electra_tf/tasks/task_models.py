"""The task model classes by the task name `task.json` records: the package's one table.

    >>> from electra_tf.tasks.task_models import TASK_MODEL_CLASSES, task_of_class_name
    >>> sorted(TASK_MODEL_CLASSES)
    ['classify', 'qa', 'tag']
    >>> task_of_class_name("ElectraTokenClassifier")
    'tag'

This module imports only the three task models (which `import electra_tf` loads anyway),
so the distiller, pruning, conversion and the task-directory readers can share it without
pulling in the data pipelines.
"""

from electra_tf.tasks.electra_classifier import ElectraClassifier
from electra_tf.tasks.electra_question_answering import ElectraQuestionAnswering
from electra_tf.tasks.electra_token_classifier import ElectraTokenClassifier

TASK_MODEL_CLASSES = {
    "classify": ElectraClassifier,
    "tag": ElectraTokenClassifier,
    "qa": ElectraQuestionAnswering,
}


def check_task_model(model, what="Expected a task model"):
    """Raises a ValueError naming the task model classes unless `model` is one of them.

    >>> check_task_model("a string", "Pruning takes a task model")
    Traceback (most recent call last):
    ...
    ValueError: Pruning takes a task model (one of ElectraClassifier, ElectraTokenClassifier,
    ElectraQuestionAnswering); received str.
    """
    if not isinstance(model, tuple(TASK_MODEL_CLASSES.values())):
        raise ValueError(
            f"{what} (one of {', '.join(cls.__name__ for cls in TASK_MODEL_CLASSES.values())}); "
            f"received {type(model).__name__}."
        )


def task_of_class_name(class_name):
    """The task ("classify", "tag" or "qa") of a task model class name, or None."""
    for task, cls in TASK_MODEL_CLASSES.items():
        if cls.__name__ == class_name:
            return task
    return None
