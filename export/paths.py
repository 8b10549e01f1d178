"""Per-user locations for exported graphs and fetched weight files.

``NST_CACHE_DIR`` overrides the platform default, so tests and CI can keep their own cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def cache_root() -> Path:
    override = os.environ.get("NST_CACHE_DIR")
    return Path(override) if override else Path(platformdirs.user_cache_dir("nst", appauthor=False))


def graphs_dir() -> Path:
    return cache_root() / "graphs"


def download_dir() -> Path:
    return cache_root() / "downloads"
