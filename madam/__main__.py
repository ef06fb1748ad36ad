"""Command line: ``python -m madam demo [--out FILE] [--steps N]``, ``python -m madam gallery
[--out FILE] [--steps N]`` and ``python -m madam config``."""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m madam", description=__doc__)
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
