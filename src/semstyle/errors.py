"""User-facing errors: each carries a one-line message that says what to fix."""

from __future__ import annotations


class SemstyleError(Exception):
    """Base class of every error semstyle reports to a user (CLI, API, web app)."""


class InputError(SemstyleError, ValueError):
    """A bad image, label map, option value or output path."""


class WeightsError(SemstyleError):
    """Weights that cannot be found, downloaded, verified or loaded into a network."""
