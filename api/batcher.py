"""Micro-batching in front of the models: concurrent door queries are gathered for a few
milliseconds into one batched detect / embed / discriminator pass, on one or more worker threads
(each with its own models: on 2 CPU cores two workers answered 1.5x the queries of one).

The queue is bounded: a query that finds it full is refused at once (`Overloaded`, the API's
503 with Retry-After) instead of joining a pile-up, and a query still waiting when its deadline
passes is dropped before any model work (`TimedOut`)."""

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any


class Overloaded(Exception):
    """The queue is full; `retry_after_s` is the estimated time to drain it."""

    def __init__(self, queued: int, retry_after_s: float):
        super().__init__(f"{queued} queries are already waiting")
        self.queued = queued
        self.retry_after_s = retry_after_s


class TimedOut(Exception):
    """The query waited past its deadline and was not run."""


@dataclass
class _Waiting:
    payload: Any
    future: Future
    enqueued: float
    deadline: float


class MicroBatcher:
    """Runs `run(payloads, worker) -> results` (one result or exception per payload, in order) on
    batches of at most `max_batch` payloads, on `workers` threads (worker = 0 .. workers - 1). A batch starts when it is full or when its oldest payload has
    waited `window_s`; payloads that queued while a batch ran go into the next one at once.

    Keywords:
        max_batch: payloads per call of `run`.
        window_s: how long the oldest payload may wait for others to join it.
        max_queue: payloads that may wait; one more is refused with `Overloaded`.
        timeout_s: a payload not started within this is failed with `TimedOut`.
        on_batch: called with (batch size, seconds) after each batch (metrics).
    """

    def __init__(
        self,
        run: Callable[[Sequence[Any], int], Sequence[Any]],
        max_batch: int = 8,
        window_s: float = 0.005,
        max_queue: int = 64,
        timeout_s: float = 10.0,
        on_batch: Callable[[int, float], None] | None = None,
        workers: int = 1,
        name: str = "facegate-batcher",
    ):
        if max_batch < 1 or max_queue < 1 or workers < 1:
            raise ValueError("max_batch, max_queue and workers must be at least 1")
        self._run = run
        self.max_batch = max_batch
        self.window_s = window_s
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self._on_batch = on_batch
        self._queue: deque[_Waiting] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._busy = 0  # workers running a batch
        self._per_query_s = 0.2  # running estimate for Retry-After, refined by each batch
        self._threads = [
            threading.Thread(target=self._loop, args=(i,), name=f"{name}-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def submit(self, payload: Any) -> Future:
        """Queue one payload; its future gets the result, or TimedOut, or run's exception."""
        now = time.monotonic()
        with self._cond:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            if len(self._queue) >= self.max_queue:
                waiting = len(self._queue) + self.max_batch * self._busy
                raise Overloaded(len(self._queue), self.retry_after(waiting))
            future: Future = Future()
            self._queue.append(_Waiting(payload, future, now, now + self.timeout_s))
            self._cond.notify()
        return future

    def retry_after(self, waiting: int) -> float:
        """Seconds until `waiting` queries would have been answered, at the measured pace."""
        return max(1.0, math.ceil(waiting * self._per_query_s / len(self._threads)))

    def close(self, timeout: float = 30.0) -> None:
        """Refuse new payloads, answer what is queued, and stop the worker."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    def _take(self) -> list[_Waiting] | None:
        with self._cond:
            while True:
                while not self._queue:
                    if self._closed:
                        return None
                    self._cond.wait()
                # wait for company only while the oldest query is younger than the window;
                # another worker may take the queue meanwhile: then wait for the next one
                while self._queue and len(self._queue) < self.max_batch and not self._closed:
                    left = self._queue[0].enqueued + self.window_s - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                if self._queue:
                    break
            batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            self._busy += 1
            return batch

    def _loop(self, worker: int) -> None:
        while (batch := self._take()) is not None:
            now = time.monotonic()
            live = []
            for item in batch:
                if not item.future.set_running_or_notify_cancel():
                    continue  # the caller gave up
                if now > item.deadline:
                    item.future.set_exception(
                        TimedOut(
                            f"waited {now - item.enqueued:.1f} s, the limit is {self.timeout_s:g} s"
                        )
                    )
                    continue
                live.append(item)
            started = time.monotonic()
            if live:
                try:
                    results = self._run([item.payload for item in live], worker)
                except BaseException as error:  # every query of the batch gets the failure
                    results = [error] * len(live)
                for item, result in zip(live, results, strict=True):
                    if isinstance(result, BaseException):
                        item.future.set_exception(result)
                    else:
                        item.future.set_result(result)
            took = time.monotonic() - started
            with self._cond:
                self._busy -= 1
                if live:
                    self._per_query_s = 0.8 * self._per_query_s + 0.2 * took / len(live)
            if live and self._on_batch is not None:
                self._on_batch(len(live), took)
