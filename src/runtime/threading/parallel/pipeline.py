"""``runtime.threading.parallel.pipeline``: pipeline stages, contexts and iteration protocols.

This module only re-exports. The pipeline stages (``PFn``, ``NullPFn``, ``PFilter``,
``PFork``) come from :mod:`runtime.threading.parallel._pipeline`.
"""

from .._errors import PipelineException
from .._protocols import PIterable, PIterator
from ..tasks._context import PContext
from ._pipeline import NullPFn, PFilter, PFn, PFork

__all__ = (
    "PIterable",
    "PIterator",
    "PContext",
    "PFn",
    "NullPFn",
    "PFilter",
    "PFork",
    "PipelineException",
)
