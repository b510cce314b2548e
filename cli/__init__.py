"""The `genossm` command line: parses arguments and calls the library, nothing more.

One module per subcommand; each exposes `register(subparsers)` and `run(args)`. Options shared
by several subcommands are declared once in `options.py`.
"""
