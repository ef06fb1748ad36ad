"""The progress bar of madam.run: tqdm's (``tqdm.auto``: a widget in Jupyter, text in a terminal)
when tqdm is installed, else a one-line text bar on stderr with no dependencies.

Both count steps (so that one long run still moves the bar) and show the runs done, the runs
failed, the speed and an ETA. Runs in this process report their steps as they go; runs on an
executor's workers report at once when they complete (``finish_run``).
"""
import math
import os
import sys
import time
import warnings

import numpy as np


def _in_jupyter():
    """True inside a Jupyter (ipykernel) kernel, whatever stderr is."""
    if "ipykernel" not in sys.modules:
        return False
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    if get is None:
        return False
    try:
        shell = get()
    except Exception:  # noqa: BLE001 - any failure means: not a kernel we can draw in
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


def enabled(progress):
    """Whether to draw: True/False as given; None: in a terminal (stderr is a TTY) or a Jupyter
    kernel, and never under pytest."""
    if progress is None:
        if os.environ.get("PYTEST_CURRENT_TEST"):
            return False
        if _in_jupyter():
            return True
        return hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    if not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"progress must be True, False or None, got {progress!r}")
    return bool(progress)


def make_bar(runs, steps, done=0, failed=0):
    """A bar for ``runs`` runs of ``steps`` steps, ``done`` of them already finished (a resumed
    store), ``failed`` of those failed: tqdm's when importable, else :class:`TextBar`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tqdm warns at import in Jupyter sans ipywidgets
            from tqdm.auto import tqdm
    except ImportError:
        return TextBar(runs, steps, done, failed)
    return TqdmBar(tqdm, runs, steps, done, failed)


class _Counts:
    """Runs and steps done; ``advance`` counts the steps of the run in progress in this process,
    ``finish_run`` tops a run up to its full step count and counts it."""

    def __init__(self, runs, steps, done, failed):
        self.runs, self.steps = runs, steps
        self.runs_done, self.failed = done, failed
        self.total = max(runs * steps, 1)
        self.steps_done = done * steps
        self.start_steps = self.steps_done
        self.current = 0  # steps of the in-process run already counted

    def _count(self, n):
        self.current += n
        self.steps_done += n

    def _finish(self, failed):
        self.steps_done += max(self.steps - self.current, 0)
        self.current = 0
        self.runs_done += 1
        self.failed += bool(failed)

    def status(self):
        return f"runs {self.runs_done}/{self.runs}, {self.failed} failed"


class TextBar(_Counts):
    """One line on stderr, redrawn at most every 0.2 s."""

    def __init__(self, runs, steps, done=0, failed=0, stream=None):
        super().__init__(runs, steps, done, failed)
        self.stream = stream if stream is not None else sys.stderr
        self.start = self.last = time.monotonic()

    def advance(self, n, run=None):
        self._count(n)
        self._maybe_draw()

    def finish_run(self, failed=False):
        self._finish(failed)
        self._maybe_draw(force=self.runs_done >= self.runs)

    def _maybe_draw(self, force=False):
        now = time.monotonic()
        if force or now - self.last >= 0.2:
            self.last = now
            self._draw(now)

    def _draw(self, now):
        frac = min(self.steps_done / self.total, 1.0)
        elapsed = max(now - self.start, 1e-9)
        rate = (self.steps_done - self.start_steps) / elapsed
        eta = (self.total - self.steps_done) / rate if rate > 0 else float("inf")
        if self.steps_done >= self.total:
            eta = 0.0
        width = 24
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        self.stream.write(f"\rmadam.run [{bar}] {100 * frac:5.1f}%  {self.status()}  "
                          f"{_si(rate)} steps/s  ETA {_duration(eta)}   ")
        self.stream.flush()

    def close(self):
        self._draw(time.monotonic())
        self.stream.write("\n")
        self.stream.flush()


class TqdmBar(_Counts):
    """tqdm's bar (``tqdm.auto``) over the steps, the runs and failures as its postfix."""

    FORMAT = ("{desc} {percentage:5.1f}%|{bar}| {n_fmt}/{total_fmt} "
              "[{elapsed}<{remaining}, {rate_fmt}{postfix}]")

    def __init__(self, tqdm, runs, steps, done=0, failed=0):
        super().__init__(runs, steps, done, failed)
        self.bar = tqdm(total=self.total, initial=self.steps_done, desc="madam.run",
                        unit="steps", unit_scale=True, mininterval=0.2,
                        bar_format=self.FORMAT, postfix=self.status())

    def advance(self, n, run=None):
        self._count(n)
        self.bar.update(n)

    def finish_run(self, failed=False):
        before = self.steps_done
        self._finish(failed)
        self.bar.set_postfix_str(self.status(), refresh=False)
        self.bar.update(self.steps_done - before)

    def close(self):
        self.bar.set_postfix_str(self.status(), refresh=False)
        self.bar.refresh()
        self.bar.close()


def _si(value):
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f}{unit}"
    return f"{value:.0f}"


def _duration(seconds):
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
