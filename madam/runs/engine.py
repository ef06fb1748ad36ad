"""Where madam.run's runs execute: in this process, in a pool of forked processes
(``workers=``), or on any ``concurrent.futures.Executor`` (``executor=``: a
ProcessPoolExecutor, a Dask ``Client.get_executor()``, ...).

Every finished run is handed to ``on_done`` as it completes (completion order; the caller puts
it in grid order). On an executor, the grid's specifications travel once per task as one
pickled bundle (deserialised once per worker process), each run as plain data, with a bounded
number of tasks in flight so that a grid of any size never sits in the executor's queue at once.
"""
import pickle
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait

from .execute import _BUNDLES, _execute_or_record, dumps_bundle, plain_task, run_task, thread_count


def _in_flight(executor):
    """How many tasks to keep submitted: 4 per worker slot (at least 16)."""
    slots = getattr(executor, "_max_workers", None)
    client = getattr(executor, "_client", None)   # dask.distributed's ClientExecutor
    if client is not None:
        try:
            slots = sum(client.nthreads().values())
        except Exception:  # noqa: BLE001 - a guess is enough
            pass
    return max(16, 4 * int(slots or 4))


def _drive(executor, key, data, plains, threads, record, on_done):
    pending = {}
    queue = iter(plains)
    window = _in_flight(executor)

    def top_up():
        while len(pending) < window:
            plain = next(queue, None)
            if plain is None:
                return
            pending[executor.submit(run_task, key, data, plain, threads, record)] = plain[0]

    try:
        top_up()
        while pending:
            finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in sorted(finished, key=pending.get):
                del pending[future]
                on_done(future.result())
            top_up()
    except BaseException:
        for future in pending:
            future.cancel()
        raise


def execute(tasks, bundle, *, executor, workers, threads, record, progress, on_done):
    """Run ``tasks`` (a list of _Task); ``on_done(output)`` for each as it finishes.

    ``threads``: madam's thread count inside each run (None: 1 on workers, unchanged in this
    process); ``record``: an exception becomes a failed run (else it propagates, and the runs
    still in flight are cancelled); ``progress``: a bar (its ``advance`` is fed by the runs of
    this process, its ``finish_run`` by every completion) or None."""
    cfg = bundle.cfg
    if not tasks:
        return
    if executor is None and (workers == 1 or len(tasks) <= 1):
        for task in tasks:
            with thread_count(threads):
                out = _execute_or_record(task, cfg, progress, record)
            if progress is not None:
                progress.finish_run(out["row"]["failed"])
            on_done(out)
        return

    def done(out):
        if progress is not None:
            progress.finish_run(out["row"]["failed"])
        on_done(out)

    threads = 1 if threads is None else threads
    plains = [plain_task(t) for t in tasks]
    if isinstance(executor, ThreadPoolExecutor):   # same process: no pickling needed
        key = f"threads-{id(bundle)}"
        _BUNDLES[key] = bundle
        try:
            _drive(executor, key, None, plains, threads, record, done)
        finally:
            _BUNDLES.pop(key, None)
        return
    if executor is not None:
        try:
            key, data = dumps_bundle(bundle)
        except Exception as exc:
            raise TypeError(
                "executor= sends the grid's specifications to its workers, and they could not "
                f"be pickled ({type(exc).__name__}: {exc}). Pass problems, solvers and "
                "optimisers as registry names, (class, kwargs) pairs or module-level functions "
                "and classes (with cloudpickle installed, lambdas work too)") from exc
        try:   # what fails to unpickle would fail on every worker: say so once, here
            pickle.loads(data)
        except Exception as exc:
            raise TypeError(
                "executor= sends the grid's specifications to its workers: they pickle but do "
                f"not unpickle ({type(exc).__name__}: {str(exc)[:200]}); an object whose "
                "__getattr__ forwards every name (also during unpickling) is a common cause: "
                "give its class __reduce__ or __getstate__/__setstate__") from exc
        _drive(executor, key, data, plains, threads, record, done)
        return

    # workers > 1: a pool of forked processes that inherit the bundle (no pickling of specs)
    import multiprocessing

    try:
        ctx = multiprocessing.get_context("fork")
    except ValueError:
        raise ValueError("workers > 1 needs the 'fork' start method (Linux, macOS); on other "
                         "systems pass executor=concurrent.futures.ProcessPoolExecutor(n)") \
            from None
    key = f"fork-{id(bundle)}"
    _BUNDLES[key] = bundle
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
            pool = ProcessPoolExecutor(min(workers, len(tasks)), mp_context=ctx)
            try:
                _drive(pool, key, None, plains, threads, record, done)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
    finally:
        _BUNDLES.pop(key, None)
