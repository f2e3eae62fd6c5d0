"""``runtime.threading.concurrent``: the thread-safe double-ended FIFO :class:`Queue`."""

from ._queue import Queue as Queue

__all__ = ("Queue",)
