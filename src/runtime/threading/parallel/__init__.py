"""``runtime.threading.parallel``: the producer/consumer queue and the parallel operations.

This module only re-exports; the implementation lives in the private modules of this
package. The submodule :mod:`runtime.threading.parallel.pipeline` is reachable as the
attribute ``pipeline``.
"""

from .._errors import (
    DistributionAlreadyStartedError,
    ParallelException,
    QueueCompletedError,
    QueueLinkedToAnotherQueueError,
)
from . import pipeline
from ._operations import (
    BackgroundProto,
    Distributor,
    ForEachProto,
    MapProto,
    ProcessProto,
    background,
    distribute,
    for_each,
    map,
    process,
)
from ._pcqueue import ProducerConsumerQueue, ProducerConsumerQueueIterator

__all__ = (
    "ProducerConsumerQueue",
    "ProducerConsumerQueueIterator",
    "process",
    "ProcessProto",
    "map",
    "MapProto",
    "for_each",
    "ForEachProto",
    "background",
    "BackgroundProto",
    "distribute",
    "Distributor",
    "ParallelException",
    "DistributionAlreadyStartedError",
    "QueueCompletedError",
    "QueueLinkedToAnotherQueueError",
)
