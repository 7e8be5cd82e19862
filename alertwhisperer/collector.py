"""The garbage collector of the long-running processes: the web servers and the Celery
workers (docs/decisions.md, "The collector of the long-running processes").

Everything a process has loaded once the application is ready (modules, the URL
resolver, models, templates) lives as long as the process, yet CPython's collector walks
all of it in every full collection, and it collects the youngest generation after every
700 new container objects, which a sweep of thousands of alerts creates by the million.
Measured with `make bench` (session 22): full collections of 170 k objects took 320–450 ms
in each webhook worker, twice during the half-rate phase, in the three workers within half
a second of each other; the correlation sweep spends a quarter to a third of its CPU in
collections (`bench/inprocess.py --mode storm`, with and without `--default-collector`).
"""

from __future__ import annotations

import gc

# The youngest generation's threshold in the Celery workers: container objects allocated
# (net) between two of its collections (CPython's default is 700). Not in the web servers:
# there a collection of 50,000 young objects took 27–90 ms of one request (`make bench`),
# where default ones are short and frequent.
WORKER_YOUNG_THRESHOLD = 50_000


def settle(*, young_threshold: int | None = None) -> None:
    """Freeze what is loaded so far out of every later collection and, with
    ``young_threshold``, collect the youngest generation that much less often. Call once,
    the application loaded."""
    gc.collect()
    gc.freeze()
    if young_threshold is not None:
        gc.set_threshold(young_threshold, *gc.get_threshold()[1:])
