"""`electra-tf compress`: argument parsing only. (Being written.)"""


def add_subcommands(subparsers):
    """Adds `compress` to the top-level subparsers."""
    parser = subparsers.add_parser("compress", help="(not implemented yet)")
    parser.set_defaults(run=_not_yet)


def _not_yet(args):
    raise ValueError("this command is not implemented yet")
