"""Why a model cannot be loaded or run: one family of errors the worker reports per job."""

from __future__ import annotations

from tintype.media.errors import ModelFailure


class ModelError(ModelFailure):
    """A model cannot be loaded or run; the message says which and why."""


class UnknownModel(ModelError):
    """A name that is not in the model table."""


class WeightsError(ModelError):
    """A weight file is missing or does not match its recorded sha256."""
