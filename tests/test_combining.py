"""The combiner behind the Redis store's shared round trips: real threads, real locks."""

from __future__ import annotations

import random
import threading
import time

import pytest

from policyd.engine.combining import Combiner


class Held:
    """A batch function whose first batch waits until the test lets it go."""

    def __init__(self):
        self.go = threading.Event()
        self.entered = threading.Event()
        self.batches: list[list] = []

    def __call__(self, items: list) -> list:
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.entered.set()
            assert self.go.wait(10)
        return [item * 10 for item in items]


def _submit_all(combiner: Combiner, items, results: dict) -> list[threading.Thread]:
    def one(item):
        try:
            results[item] = combiner.submit(item)
        except Exception as exc:  # the test inspects it
            results[item] = exc

    threads = [threading.Thread(target=one, args=(item,)) for item in items]
    for t in threads:
        t.start()
    return threads


def _queued(combiner: Combiner, n: int) -> None:
    end = time.monotonic() + 10
    while len(combiner._queue) < n:
        assert time.monotonic() < end, "callers never queued"
        time.sleep(0.001)


def test_a_caller_alone_runs_a_batch_of_one():
    combiner = Combiner(lambda items: [item + 1 for item in items])
    assert [combiner.submit(i) for i in range(3)] == [1, 2, 3]
    assert (combiner.batches, combiner.items) == (3, 3)


def test_callers_arriving_during_a_batch_share_the_next_one():
    run = Held()
    combiner = Combiner(run)
    results: dict = {}
    first = _submit_all(combiner, [1], results)
    assert run.entered.wait(10)
    rest = _submit_all(combiner, [2, 3, 4, 5, 6], results)
    _queued(combiner, 5)
    run.go.set()
    for t in first + rest:
        t.join(10)
    assert results == {i: i * 10 for i in range(1, 7)}
    assert [sorted(b) for b in run.batches] == [[1], [2, 3, 4, 5, 6]]
    assert combiner._busy is False and not combiner._queue


def test_batches_never_exceed_max_batch_and_keep_arrival_order():
    run = Held()
    combiner = Combiner(run, max_batch=2)
    results: dict = {}
    threads = _submit_all(combiner, [0], results)
    assert run.entered.wait(10)
    for item in (1, 2, 3, 4, 5):  # one at a time, so the queue's order is known
        threads += _submit_all(combiner, [item], results)
        _queued(combiner, item)
    run.go.set()
    for t in threads:
        t.join(10)
    assert run.batches == [[0], [1, 2], [3, 4], [5]]
    assert results == {i: i * 10 for i in range(6)}


def test_a_failing_batch_fails_each_caller_with_its_own_error_and_the_next_batch_runs():
    calls = []

    def run(items):
        calls.append(items)
        if len(calls) == 1:
            raise ConnectionError("gone")
        return list(items)

    combiner = Combiner(run)
    with pytest.raises(RuntimeError, match="batch failed: ConnectionError: gone"):
        combiner.submit("a")
    assert combiner.submit("b") == "b"


def test_an_exception_result_is_raised_in_its_own_caller_only():
    combiner = Combiner(lambda items: [ValueError(i) if i == "bad" else i for i in items])
    with pytest.raises(ValueError, match="bad"):
        combiner.submit("bad")
    assert combiner.submit("good") == "good"


def test_a_wrong_number_of_results_is_an_error_not_a_mismatch():
    combiner = Combiner(lambda items: [])
    with pytest.raises(RuntimeError, match="0 results for 1 item"):
        combiner.submit(1)


def test_a_caller_never_taken_leaves_after_its_patience_and_nothing_hangs():
    run = Held()
    combiner = Combiner(run, patience=0.2, timeout_error=TimeoutError)
    results: dict = {}
    first = _submit_all(combiner, [1], results)
    assert run.entered.wait(10)
    late = _submit_all(combiner, [2], results)
    late[0].join(10)
    assert isinstance(results[2], TimeoutError)  # it left; the batch under way goes on
    assert not combiner._queue
    run.go.set()
    first[0].join(10)
    assert results[1] == 10
    assert combiner.submit(3) == 30 and combiner._busy is False


def test_many_threads_each_get_their_own_result():
    def run(items):
        time.sleep(random.random() / 2000)
        return [("done", item) for item in items]

    combiner = Combiner(run, max_batch=5)
    results: dict = {}

    def worker(w):
        for i in range(150):
            item = (w, i)
            results[item] = combiner.submit(item)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 1200
    assert all(result == ("done", item) for item, result in results.items())
    assert combiner.items == 1200 and combiner.batches < 1200  # some batches were shared
    assert combiner._busy is False and not combiner._queue
