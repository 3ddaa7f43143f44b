"""Puts the repository root on ``sys.path`` so that the test modules here can import the
top-level ``bench`` package (it is not installed). Imported first by every test module in
this directory; a plain module, not a conftest.py, because mypy sees every conftest.py of
a directory without ``__init__.py`` as the same module, and an ``__init__.py`` here would
make this directory the package ``bench``."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
