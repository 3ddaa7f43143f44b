"""Settings for the whole suite.

* Hypothesis: no per-example deadline (these machines are shared and noisy: a deadline
  would fail tests for timing, which we never assert); ``MAILKEEP_FUZZ=long`` (``make
  fuzz``) runs many more examples in every property test.
* Every property test is marked ``fuzz`` so that ``make fuzz`` can select them.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "mailkeep",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    parent=settings.get_profile("mailkeep"),
    max_examples=5000,
)
settings.load_profile("long" if os.environ.get("MAILKEEP_FUZZ") == "long" else "mailkeep")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        function = getattr(item, "obj", None)
        if getattr(function, "is_hypothesis_test", False):
            item.add_marker(pytest.mark.fuzz)
