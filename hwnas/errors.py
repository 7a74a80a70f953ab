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


class ParametersError(HwnasError):
    """A problem with the values of parameters, worded with their Python names in backticks (``address only
    makes sense with `executor` ray``). The CLI words each backticked name as the flag of that name (``--address
    only makes sense with --executor ray``), so the library speaks Python and the command line speaks flags from
    one message. (The CLI does that for every HwnasError's message, so an error wrapped in another's keeps its
    wording; a backticked lowercase word in an error message is always a parameter name.)"""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ParameterError(ParametersError):
    """A bad value of one parameter, worded with the parameter's name (``k must be at least 1, got 0``). The
    library speaks Python: this is what a caller of the function sees. The CLI words it with the flag of that
    name (``--k must be at least 1, got 0``): every ``name`` is also a flag (``_`` -> ``-``, or the CLI's table of
    the few names that differ). Other parameters the problem names are in backticks, as in ParametersError."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"{name} {problem}")
        self.name, self.problem = name, problem

    def __reduce__(self):  # picklable (Ray workers send errors back) with its attributes
        return (type(self), (self.name, self.problem))
