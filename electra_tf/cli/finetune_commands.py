"""`electra-tf finetune|evaluate|predict classify|qa|tag` and `finetune glue`: argument parsing only.

Each task's arguments live in its own module (`classify_commands`,
`qa_commands`, `tag_commands`), which defines `add_finetune`, `add_evaluate`
and `add_predict`, each taking the task-level subparsers object. The jobs are
library functions under `electra_tf.tasks`.
"""

from electra_tf.cli import classify_commands, glue_commands, qa_commands, tag_commands

TASK_MODULES = {"classify": classify_commands, "qa": qa_commands, "tag": tag_commands}
# Modules with a `finetune` task only (no evaluate/predict).
FINETUNE_ONLY_MODULES = {"glue": glue_commands}


def add_subcommands(subparsers):
    """Adds `finetune`, `evaluate` and `predict`, each with `classify|qa|tag`."""
    for command, help_text in (
        ("finetune", "fine-tune a classifier, a question-answering model or a tagger"),
        ("evaluate", "evaluate a fine-tuned model on a labelled file"),
        ("predict", "predict with a fine-tuned model on text or JSON lines"),
    ):
        parser = subparsers.add_parser(command, help=help_text, description=help_text)
        tasks = parser.add_subparsers(dest="task", required=True, metavar="{classify,qa,tag}")
        for module in TASK_MODULES.values():
            getattr(module, f"add_{command}")(tasks)
        if command == "finetune":
            for module in FINETUNE_ONLY_MODULES.values():
                module.add_finetune(tasks)
            tasks.metavar = "{classify,qa,tag,glue}"
