"""`electra-tf serve`: argument parsing only. (Being written.)"""


def add_subcommands(subparsers):
    """Adds `serve` to the top-level subparsers."""
    parser = subparsers.add_parser("serve", help="(not implemented yet)")
    parser.set_defaults(run=_not_yet)


def _not_yet(args):
    raise ValueError("this command is not implemented yet")
