"""How the command line words what the library says: parameter names as flags (``data_dir`` -> ``--data-dir``).

The library speaks Python (``ParameterError("k", ...)``, `` `data_dir` `` in a message); every command prints
through these, so one message serves both."""

from __future__ import annotations

from ..errors import HwnasError


# Library parameter names whose flag is not the name with ``_`` -> ``-``: lists given by a repeated singular flag;
# the agent's token, which the command line takes from a file only (never argv, where `ps` shows it).
FLAG_OF = {"objectives": "--objective", "constraints": "--constraint", "token": "--token-file"}


def flag_of(name: str) -> str:
    """The flag that sets the library parameter ``name``: ``data_dir`` -> ``--data-dir``."""
    return FLAG_OF.get(name) or "--" + name.replace("_", "-")


def reword(text: str) -> str:
    """Each backticked parameter name (```data_dir```) as its flag (``--data-dir``)."""
    import re

    return re.sub(r"(?<!`)`([a-z][a-z0-9_]*)`(?!`)", lambda m: flag_of(m.group(1)), text)


def as_flags(exc: HwnasError) -> str:
    """The error as the command line says it: a ParameterError names the flag of its parameter's name
    (``k must be at least 1`` -> ``--k must be at least 1``), and each parameter a message backticks is named by
    its flag (in any error: one wrapped in another's message keeps its parameters)."""
    from ..errors import ParameterError

    if isinstance(exc, ParameterError):
        return f"{flag_of(exc.name)} {reword(exc.problem)}"
    return reword(str(exc))
