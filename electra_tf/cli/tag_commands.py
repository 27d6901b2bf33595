"""`electra-tf finetune|evaluate|predict tag`: argument parsing only. (Being written.)"""


def _placeholder(subparsers, command):
    parser = subparsers.add_parser("tag", help="(not implemented yet)")
    parser.set_defaults(run=_not_yet)


def _not_yet(args):
    raise ValueError("this command is not implemented yet")


def add_finetune(subparsers):
    _placeholder(subparsers, "finetune")


def add_evaluate(subparsers):
    _placeholder(subparsers, "evaluate")


def add_predict(subparsers):
    _placeholder(subparsers, "predict")
