"""Pipelines: the user-level procedures built from models/ and functional.py."""
