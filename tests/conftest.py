"""Shared fixtures. ``built_book``: the README's book command, run once per test session into a
temporary folder; the whole-book, HTML-scan and browser tests all read that one build.

``GEOMLIB_TEST_BUILD=<folder>`` reuses a finished build instead (a folder with ``build/`` and
``_build/html`` from ``tools/run_book.py --build <folder>/build --html-out <folder>``), for
working on those tests without re-running the book. ``GEOMLIB_KEEP_BUILD=<folder>`` builds into
that folder instead of a temporary one and keeps it (the CI workflow uploads and publishes it)."""
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class BuiltBook:
    root: Path
    returncode: int
    log: str

    @property
    def build(self) -> Path:
        return self.root / "build"

    @property
    def html(self) -> Path:
        return self.root / "_build" / "html"


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> BuiltBook:
    reuse = os.environ.get("GEOMLIB_TEST_BUILD")
    if reuse:
        return BuiltBook(Path(reuse).resolve(), 0, f"reused the build in {reuse}")
    keep = os.environ.get("GEOMLIB_KEEP_BUILD")
    root = Path(keep).resolve() if keep else tmp_path_factory.mktemp("book")
    root.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "run_book.py"), "--build", str(root / "build"),
                        "--html-out", str(root)], capture_output=True, text=True, timeout=3600)  # ~23 min on 2 cores
    return BuiltBook(root, r.returncode, r.stdout[-5000:] + r.stderr[-5000:])


@pytest.fixture(scope="session")
def html(built_book) -> Path:
    """The built book's HTML folder; fails (not skips) when the build failed."""
    assert built_book.returncode == 0, built_book.log
    return built_book.html
