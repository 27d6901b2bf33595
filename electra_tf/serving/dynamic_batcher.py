"""DynamicBatcher: merges concurrent requests into batches run on worker threads."""

import asyncio
import collections
import concurrent.futures

from electra_tf.utils.checks import is_integer, is_number


class QueueFullError(RuntimeError):
    """The batcher's queue is full: the service is overloaded (HTTP 503)."""


_Item = collections.namedtuple("_Item", ["payload", "size", "future", "arrival"])


class DynamicBatcher:
    """Batches requests that arrive together, runs each batch off the event loop.

    Requests are submitted with a key (e.g. the signature name): only requests
    with the same key share a batch. A batch starts with the oldest waiting
    request and takes more while they fit into `max_batch_size` instances and
    `batch_timeout_ms` has not passed since the batch could first run (that
    first request arrived and a worker was free); a request bigger than
    `max_batch_size` runs alone. While all workers are busy, requests queue up,
    and when a worker frees up the batch takes them and waits, up to the
    timeout, for the clients the last batch just answered: with 16 closed-loop
    clients this makes batches of 16 instead of two alternating batches of 8.
    It stops waiting as soon as it holds as many instances as the last batch
    answered, since those clients are then all back.

    `run_batch(key, payloads)` runs on a worker thread and returns one result per
    payload, in order; a result that is an `Exception` is raised to that
    request's caller only, so one bad request does not fail its batch-mates.

    Args:
        run_batch: `(key, list of payloads) -> list of results` (thread-safe).
        max_batch_size: most instances in one batch.
        batch_timeout_ms: how long a batch waits for more requests.
        max_queue: most requests waiting (not yet running); more raise
            `QueueFullError`.
        num_workers: batches that may run at the same time (threads).
        on_batch: optional callback `(key, num_instances)` after each batch,
            for metrics.

    Example:
    >>> calls = []
    >>> def run_batch(key, payloads):
    ...     calls.append(len(payloads))
    ...     return [text.upper() for text in payloads]
    >>> async def main():
    ...     batcher = DynamicBatcher(run_batch, max_batch_size=8, batch_timeout_ms=20)
    ...     results = await asyncio.gather(*[batcher.submit("default", t) for t in "abc"])
    ...     await batcher.close()
    ...     return results
    >>> asyncio.run(main()), calls
    (['A', 'B', 'C'], [3])
    """

    def __init__(self, run_batch, max_batch_size=32, batch_timeout_ms=5.0, max_queue=1024,
                 num_workers=1, on_batch=None):
        for name, value in (("max_batch_size", max_batch_size), ("max_queue", max_queue),
                            ("num_workers", num_workers)):
            if not is_integer(value) or value < 1:
                raise ValueError(f"`{name}` must be an integer >= 1; received {name}={value!r}.")
        if not is_number(batch_timeout_ms) or batch_timeout_ms < 0:
            raise ValueError(
                f"`batch_timeout_ms` must be a number >= 0; received {batch_timeout_ms!r}."
            )
        self.run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.batch_timeout_ms = batch_timeout_ms
        self.max_queue = max_queue
        self.num_workers = num_workers
        self.on_batch = on_batch
        self._queues = {}
        self._collectors = {}
        self._running = set()
        self._last_batch_size = {}  # key -> instances in its last answered batch
        self._waiting = 0
        self._workers = None
        self._executor = None
        self._closed = False

    @property
    def queued(self):
        """Requests waiting for a batch."""
        return self._waiting

    async def submit(self, key, payload, size=1):
        """Queues one request of `size` instances; returns its result when its batch ran."""
        if self._closed:
            raise QueueFullError("The server is shutting down; retry on another replica.")
        if self._waiting >= self.max_queue:
            raise QueueFullError(
                f"The server is overloaded: {self._waiting} requests are already queued "
                f"(--max-queue {self.max_queue}); retry later."
            )
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                self.num_workers, thread_name_prefix="electra-tf-batch")
            self._workers = asyncio.Semaphore(self.num_workers)
        loop = asyncio.get_running_loop()
        if key not in self._queues:
            self._queues[key] = asyncio.Queue()
            self._collectors[key] = loop.create_task(self._collect(key))
        future = loop.create_future()
        self._waiting += 1
        self._queues[key].put_nowait(_Item(payload, size, future, loop.time()))
        return await future

    async def _collect(self, key):
        queue = self._queues[key]
        loop = asyncio.get_running_loop()
        carried = None
        while True:
            first = carried or await queue.get()
            carried = None
            # Wait for a free worker before collecting the rest: meanwhile requests
            # queue up, and the batch takes them without waiting.
            await self._workers.acquire()
            batch, size = [first], first.size
            # The batch may wait for more requests until `batch_timeout_ms` after it
            # could first run: after the oldest request arrived, and after a worker
            # became free. Under load the second matters: clients answered by the
            # last batch send their next requests a few ms later, and join this one.
            deadline = max(first.arrival, loop.time()) + self.batch_timeout_ms / 1000.0
            expected = self._last_batch_size.get(key, self.max_batch_size)
            while size < self.max_batch_size:
                try:
                    if queue.empty():
                        if size >= expected:  # the last batch's clients are all back
                            break
                        remaining = deadline - loop.time()
                        if remaining <= 0:
                            break
                        item = await asyncio.wait_for(queue.get(), remaining)
                    else:
                        item = queue.get_nowait()
                except asyncio.TimeoutError:
                    break
                if size + item.size > self.max_batch_size:
                    carried = item  # starts the next batch
                    break
                batch.append(item)
                size += item.size
            self._waiting -= len(batch)
            task = loop.create_task(self._run(key, batch, size))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, key, batch, size):
        try:
            try:
                results = await asyncio.get_running_loop().run_in_executor(
                    self._executor, self.run_batch, key, [item.payload for item in batch])
                if len(results) != len(batch):
                    raise RuntimeError(
                        f"run_batch returned {len(results)} results for {len(batch)} requests.")
            except Exception as error:  # the batch failed as a whole: every request hears why
                results = [error] * len(batch)
            self._last_batch_size[key] = size
            for item, result in zip(batch, results):
                if item.future.done():  # its caller went away
                    continue
                if isinstance(result, Exception):
                    item.future.set_exception(result)
                else:
                    item.future.set_result(result)
            if self.on_batch is not None:
                self.on_batch(key, size)
        finally:
            self._workers.release()

    async def close(self):
        """Finishes queued and running batches, then stops; later submits fail."""
        self._closed = True
        while self._waiting or self._running:
            await asyncio.sleep(0.01)
        for task in self._collectors.values():
            task.cancel()
        await asyncio.gather(*self._collectors.values(), return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
