"""Where hwnas keeps its files: ``$HWNAS_HOME`` else ``~/.hwnas``."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import HwnasError, ParameterError

# A device name is one path component (it names latency_models/<device>/ and store rows): letters, digits, '_',
# '.', '-', not starting with '.' or '-' (so never '', '.', '..', an absolute path or an option).
_DEVICE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")


def check_device_name(name, what: str | None = None) -> str:
    """``name`` if it is a valid device name, else a one-line error: about the parameter ``device`` (a
    ParameterError, which the CLI words as ``--device``), or about ``what`` where the name came from elsewhere
    (an objective, a device profile). The one validator every command and objective uses for device names."""
    if not isinstance(name, str) or not _DEVICE_NAME.match(name):
        problem = (f"{name!r}: a device name is letters, digits, '_', '.' and '-' (at most 128, not starting with "
                   "'.' or '-'; no '/'), e.g. pixel2 or raspberry-pi-4")
        raise ParameterError("device", problem) if what is None else HwnasError(f"{what} {problem}")
    return name


def hwnas_home() -> Path:
    env = os.environ.get("HWNAS_HOME")
    return Path(env).expanduser() if env else Path.home() / ".hwnas"


def export_cache_dir() -> Path:
    return hwnas_home() / "cache" / "exports"


def project_root() -> Path | None:
    """The source checkout (holding device_profiles/ etc.) when running from one."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "device_profiles").is_dir() else None
