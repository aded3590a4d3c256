"""The micro-batcher in front of the models: queries that arrive together are decided together,
each gets its own answer (or its own failure), a full queue refuses at once, and a query that
waited past its deadline is dropped unrun."""

import threading
import time
from contextlib import contextmanager

import pytest

from api.batcher import MicroBatcher, Overloaded, TimedOut


class Recorder:
    """A batch function that remembers its batches and can be held at a gate."""

    def __init__(self):
        self.batches: list[list] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, payloads, worker):
        self.entered.set()
        self.gate.wait(10)
        self.batches.append(list(payloads))
        return [ValueError(f"bad {p}") if p < 0 else p * 10 for p in payloads]


@contextmanager
def batching(**options):
    """A Recorder behind a MicroBatcher, closed afterwards."""
    run = Recorder()
    batcher = MicroBatcher(run, **options)
    try:
        yield run, batcher
    finally:
        batcher.close()


def test_queries_waiting_together_go_in_one_batch_and_each_gets_its_answer():
    with batching(max_batch=4, window_s=0.001, max_queue=16) as (run, batcher):
        run.gate.clear()
        first = batcher.submit(1)
        assert run.entered.wait(5)  # the worker is busy with the first query
        waiting = [batcher.submit(p) for p in (2, -3, 4, 5, 6)]
        run.gate.set()
        assert first.result(5) == 10
        assert [f.exception(5) is None for f in waiting] == [True, False, True, True, True]
        assert str(waiting[1].exception()) == "bad -3"  # one query's failure is its own
        assert [waiting[i].result() for i in (0, 2, 3, 4)] == [20, 40, 50, 60]
        # the five that queued behind the first went at once, in batches of at most 4
        assert run.batches == [[1], [2, -3, 4, 5], [6]]


def test_the_window_gathers_queries_arriving_a_moment_apart():
    with batching(max_batch=8, window_s=0.2, max_queue=16) as (run, batcher):
        futures = [batcher.submit(1)]
        time.sleep(0.02)
        futures.append(batcher.submit(2))
        assert [f.result(5) for f in futures] == [10, 20]
        assert run.batches == [[1, 2]]


def test_a_full_queue_refuses_at_once_with_a_retry_time():
    with batching(max_batch=1, window_s=0, max_queue=2) as (run, batcher):
        run.gate.clear()
        running = batcher.submit(1)
        assert run.entered.wait(5)
        queued = [batcher.submit(2), batcher.submit(3)]
        t0 = time.perf_counter()
        with pytest.raises(Overloaded) as refused:
            batcher.submit(4)
        assert time.perf_counter() - t0 < 0.05  # no waiting in line
        assert refused.value.queued == 2 and refused.value.retry_after_s >= 1
        run.gate.set()
        assert [f.result(5) for f in [running, *queued]] == [10, 20, 30]
        assert batcher.submit(5).result(5) == 50  # room again


def test_a_query_past_its_deadline_is_dropped_unrun():
    with batching(max_batch=1, window_s=0, max_queue=4, timeout_s=0.1) as (run, batcher):
        run.gate.clear()
        running = batcher.submit(1)
        assert run.entered.wait(5)
        late = batcher.submit(2)
        time.sleep(0.3)
        run.gate.set()
        assert running.result(5) == 10
        assert isinstance(late.exception(5), TimedOut)
        assert run.batches == [[1]]  # the late query never reached the models


def test_two_workers_decide_two_batches_at_once():
    seen = []
    both = threading.Barrier(2, timeout=5)

    def run(payloads, worker):
        seen.append(worker)
        both.wait()  # returns only when the other worker is inside a batch too
        return list(payloads)

    batcher = MicroBatcher(run, max_batch=1, window_s=0, max_queue=4, workers=2)
    try:
        futures = [batcher.submit(i) for i in range(2)]
        assert [f.result(5) for f in futures] == [0, 1]
        assert sorted(seen) == [0, 1]
    finally:
        batcher.close()


def test_close_answers_what_is_queued_then_refuses():
    run = Recorder()
    batcher = MicroBatcher(run, max_batch=2, window_s=0.5, max_queue=4)
    future = batcher.submit(7)
    batcher.close()
    assert future.result(1) == 70
    with pytest.raises(RuntimeError):
        batcher.submit(8)


def test_a_worker_waiting_for_company_survives_another_taking_the_queue():
    # two workers: one waits out the window for company while the other, freed, takes the query
    # first; the waiting one must go back to waiting, not die (an IndexError killed batcher
    # threads in the faults benchmark)
    with batching(max_batch=8, window_s=0.003, max_queue=64, workers=2) as (run, batcher):
        answered = 0
        for i in range(300):
            futures = [batcher.submit(i)]
            if i % 3 == 0:
                time.sleep(0.002)
                futures.append(batcher.submit(i + 1))
            answered += sum(f.result(5) is not None for f in futures)
            time.sleep(0.001 * (i % 4))
        assert all(t.is_alive() for t in batcher._threads)
        assert answered == 400
