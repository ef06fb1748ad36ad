"""Shared pytest configuration: the hypothesis profiles of the property suite (test_properties*.py).

Profiles (select one with ``pytest --hypothesis-profile=NAME``; the default is "ci"):

* ``ci``   - the default: a few hundred examples per cheap target (fewer for the expensive ones,
  which scale their own budgets from the profile's max_examples), derandomised so that every CI
  run tries the same examples, no deadline (timings on shared runners are noise, not failures).
* ``dev``  - a quick smoke run while editing (25 examples per target).
* ``nightly`` - a bug hunt that fits a scheduled job: 2 000 examples per target (scaled),
  random (not derandomised), so every run explores new inputs.
* ``long`` - a long hunt: 20 000 examples per target (scaled per target like "ci"), random
  (not derandomised); every failure prints a ``@reproduce_failure`` blob.

The environment variable ``MADAM_HYPOTHESIS_PROFILE`` picks the default profile too (the command
line option wins, since hypothesis' pytest plugin loads it after this file).
"""
import os

try:
    from hypothesis import HealthCheck, Phase, settings
except ImportError:  # hypothesis is in the "test" extra; without it the property files skip
    settings = None

if settings is not None:
    _SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
    settings.register_profile(
        "ci", max_examples=200, deadline=None, derandomize=True, database=None,
        suppress_health_check=_SLOW_OK, print_blob=True,
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink))
    settings.register_profile(
        "dev", max_examples=25, deadline=None, derandomize=False,
        suppress_health_check=_SLOW_OK, print_blob=True)
    settings.register_profile(
        "nightly", max_examples=2_000, deadline=None, derandomize=False,
        suppress_health_check=_SLOW_OK, print_blob=True)
    settings.register_profile(
        "long", max_examples=20_000, deadline=None, derandomize=False,
        suppress_health_check=_SLOW_OK, print_blob=True)
    settings.load_profile(os.environ.get("MADAM_HYPOTHESIS_PROFILE", "ci"))
