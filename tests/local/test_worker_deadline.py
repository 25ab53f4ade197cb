"""Local mode's --timeout is the model's own deadline, as the deployed container's is: a request whose caller
stopped waiting does not keep the single worker busy. Queued work is dropped here; running work stops at the
deadline inside the model (tests/models/test_generation_deadline.py)."""

from __future__ import annotations

import threading

import pytest

from local.toolkit import ModelError, ModelWorker


def test_a_request_still_queued_when_its_caller_gives_up_never_runs():
    worker = ModelWorker(deadline_seconds=0.2)
    release, ran, first_caller = threading.Event(), [], []

    def wait_for_the_first():
        try:
            worker.run(release.wait, 5)
        except ModelError as error:  # its caller gives up too; the work itself runs on until released
            first_caller.append(error.status)

    first = threading.Thread(target=wait_for_the_first)
    first.start()
    with pytest.raises(ModelError) as late:
        worker.run(ran.append, "second")  # waits behind the first, past its deadline
    assert (late.value.status, late.value.message) == (504, "the model did not answer within 0.2 s")
    release.set()
    first.join()
    assert first_caller == [504]
    assert worker.run(ran.append, "third") is None
    assert ran == ["third"]  # the abandoned second request never ran


def test_without_a_deadline_a_caller_waits_as_long_as_it_takes():
    worker = ModelWorker()
    assert worker.deadline_seconds is None and worker.run(sum, [1, 2]) == 3
