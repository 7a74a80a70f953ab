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
