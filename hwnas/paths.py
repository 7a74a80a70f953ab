"""Where hwnas keeps its files: ``$HWNAS_HOME`` else ``~/.hwnas``."""

from __future__ import annotations

import os
from pathlib import Path


def hwnas_home() -> Path:
    env = os.environ.get("HWNAS_HOME")
    return Path(env).expanduser() if env else Path.home() / ".hwnas"


def export_cache_dir() -> Path:
    return hwnas_home() / "cache" / "exports"


def project_root() -> Path | None:
    """The source checkout (holding device_profiles/ etc.) when running from one."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "device_profiles").is_dir() else None
