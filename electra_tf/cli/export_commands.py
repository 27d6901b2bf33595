"""`electra-tf export`: argument parsing only. (Being written.)"""


def add_subcommands(subparsers):
    """Adds `export` to the top-level subparsers."""
    parser = subparsers.add_parser("export", help="(not implemented yet)")
    parser.set_defaults(run=_not_yet)


def _not_yet(args):
    raise ValueError("this command is not implemented yet")
