"""A correlation sweep held open in another thread, for tests of what waits for it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections, transaction

from apps.incidents.correlation import correlate_company


@contextmanager
def sweep_held_open(company_id: int) -> Iterator[object]:
    """Run a sweep of ``company_id`` in a thread and keep its transaction open (its row
    locks held) until the block ends; yields the sweep's result."""
    swept, release, outcome = threading.Event(), threading.Event(), []

    def sweep() -> None:
        try:
            with transaction.atomic():
                outcome.append(correlate_company(company_id=company_id))
                swept.set()
                release.wait(30)
        except Exception as error:  # the test reads what the sweep ended with
            outcome.append(error)
            swept.set()
        finally:
            connections.close_all()

    thread = threading.Thread(target=sweep)
    thread.start()
    try:
        assert swept.wait(30), "the sweep did not finish in 30 s"
        assert not isinstance(outcome[0], Exception), outcome[0]
        yield outcome[0]
    finally:
        release.set()
        thread.join(30)
    assert len(outcome) == 1, outcome
