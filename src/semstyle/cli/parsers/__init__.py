"""The command line's flags, one module per command group; ``cli/main.py`` builds the parser from them.
They import only light modules (no torch), so ``semstyle --help`` is quick; the handlers that run a
command live in ``cli/<group>.py`` and are imported by name when it runs."""
