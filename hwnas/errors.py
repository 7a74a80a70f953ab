"""Errors that the CLI turns into a one-line message and exit code 2."""


class HwnasError(Exception):
    """Bad input or an infrastructure problem the user can fix; never a bug."""

    exit_code = 2


class UnknownNameError(HwnasError, KeyError):
    """An unknown space, device, predictor, strategy, op ..."""

    def __str__(self) -> str:  # KeyError quotes its message; we do not want that
        return str(self.args[0]) if self.args else ""


def unknown(kind: str, name: str, known) -> UnknownNameError:
    known = sorted(known)
    return UnknownNameError(f"unknown {kind} {name!r}; known: {', '.join(known) if known else '(none)'}")


class ParameterError(HwnasError):
    """A bad value of one parameter, worded with the parameter's name (``k must be at least 1, got 0``). The
    library speaks Python: this is what a caller of the function sees. The CLI words it with the flag of that
    name (``--k must be at least 1, got 0``): every ``name`` is also a flag (``_`` -> ``-``)."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"{name} {problem}")
        self.name, self.problem = name, problem
