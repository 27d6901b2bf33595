"""The label conventions the input pipelines write and the task heads read.

They live with the data because the pipelines produce them; `ElectraClassifier` and
`ElectraTokenClassifier` import them from here (a task depends on its data, not the reverse).

>>> IGNORE_LABEL
-100
"""

# What an `ElectraClassifier` predicts: one class (softmax), any subset of classes (sigmoid
# per class), or a real number (regression).
PROBLEM_TYPES = ("single_label", "multi_label", "regression")

# The label of positions the loss and metrics skip: [CLS], [SEP], padding and
# every word piece after a word's first. -100 is the value transformers and
# PyTorch's cross-entropy use, so label files and code carry over.
IGNORE_LABEL = -100
