"""The ``semstyle`` command line."""
