"""Streams that 停止 can interrupt: a blocking stream run in a worker thread, with heartbeats."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

HEARTBEAT_S = 0.2  # the chat's generator yields at least this often, so 停止 takes effect at once


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


_DONE = object()


def background_stream(produce: Callable[[Callable[[], bool]], Iterator], heartbeat: float = HEARTBEAT_S) -> Iterator:
    """Run a blocking stream in a worker thread; yield its items, and None every ``heartbeat``
    seconds while none comes.

    Gradio stops a generator only between two of its steps, and a step that waits for the model
    (loading it, reading the prompt) can take many seconds: the heartbeat keeps every step short,
    so 停止 ends the request at once. Closing this generator tells the worker to close the stream
    at its next item, which releases what the stream holds (the bundled model's lock).

    Args:
        produce: called in the worker with a function that says whether the consumer has gone
            (the stream checks it before starting expensive work), returns the stream.
        heartbeat: seconds between the None items while waiting.
    """
    items: queue.Queue = queue.Queue()
    stop = threading.Event()

    def work() -> None:
        stream = produce(stop.is_set)
        try:
            for item in stream:
                if stop.is_set():
                    break
                items.put(item)
        except BaseException as exc:  # handed to the consumer
            items.put(_Failure(exc))
        finally:
            stream.close()
            items.put(_DONE)

    threading.Thread(target=work, daemon=True, name="answer-stream").start()
    try:
        while True:
            try:
                item = items.get(timeout=heartbeat)
            except queue.Empty:
                yield None
                continue
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
