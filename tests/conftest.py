"""Shared test setup: offline hub, and a per-session cache folder so tests never write into ~/.cache."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    previous = os.environ.get("PTDIAG_CACHE_DIR")
    os.environ["PTDIAG_CACHE_DIR"] = str(tmp_path_factory.mktemp("ptdiag-cache"))
    yield
    if previous is None:
        os.environ.pop("PTDIAG_CACHE_DIR", None)
    else:
        os.environ["PTDIAG_CACHE_DIR"] = previous
