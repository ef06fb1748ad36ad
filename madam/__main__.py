"""Command line: ``madam demo [--out FILE] [--steps N]``, ``madam gallery [--out FILE]
[--steps N]``, ``madam config`` and ``madam --version`` (also as ``python -m madam ...``)."""
import argparse
import os
import sys


def _prog():
    """How the user invoked us: ``python -m madam`` (argv[0] is this file) or the script name."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if not name or name == "__main__.py":
        return "python -m madam"
    return name


class _VersionAction(argparse.Action):
    """--version: print ``madam <version>`` (imports madam only when asked)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="print madam's version and exit"):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        import madam

        print(f"madam {madam.__version__}")
        parser.exit()


def main(argv=None):
    parser = argparse.ArgumentParser(prog=_prog(), description=__doc__)
    parser.add_argument("--version", action=_VersionAction)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="where Adam bends a front, and metric vs momentum: re-run the studies' "
        "clearest pieces live, write a figure")
    demo.add_argument("--out", default="madam-demo.png", help="output image (default: %(default)s)")
    demo.add_argument("--steps", type=int, default=None, help="steps per run (default 1000)")
    gallery = commands.add_parser(
        "gallery", help="every single-objective optimiser on Rosenbrock and a quadratic")
    gallery.add_argument("--out", default="madam-gallery.png",
                         help="output image (default: %(default)s)")
    gallery.add_argument("--steps", type=int, default=None, help="steps per run (default 3000)")
    commands.add_parser("config", help="print the compiled core's configuration")
    args = parser.parse_args(argv)

    import madam

    if args.command == "config":
        madam.show_config()
        return 0
    if args.command == "demo":
        from madam import demo as module
    else:
        from madam import gallery as module
    steps = module.STEPS if args.steps is None else args.steps
    if steps < 1:
        parser.error("--steps must be >= 1")
    out = module.main(args.out, steps)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
