"""`hwnas` entry point. Each command lives in its own module and registers itself in ``build_app``."""

from __future__ import annotations

import sys

import typer

from ..errors import HwnasError

app = typer.Typer(
    name="hwnas",
    help="Hardware-aware, multi-objective neural architecture search: profile, predict, search, guard.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from . import (agent_cmd, ci_check_cmd, devices_cmd, export_cmd, fit_predictor_cmd, measurements_cmd,
                   pareto_search_cmd, predict_cmd, profile_cmd, propose_cmd, report_cmd, retrain_cmd, spaces_cmd,
                   store_cmd, supernet_cmd)

    for module in (spaces_cmd, export_cmd, profile_cmd, devices_cmd, measurements_cmd, agent_cmd, fit_predictor_cmd,
                   predict_cmd, propose_cmd, pareto_search_cmd, report_cmd, retrain_cmd, supernet_cmd, ci_check_cmd,
                   store_cmd):
        module.register(app)


_register()


def _click_classes(name: str) -> tuple[type, ...]:
    """``name`` from click and, where typer vendors its own copy (typer >= 0.20), from ``typer._click`` too."""
    import importlib

    found = []
    for module in ("click.exceptions", "typer._click.exceptions"):
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if isinstance(cls, type):
            found.append(cls)
    return tuple(found)


# Library parameter names whose flag is not the name with ``_`` -> ``-``: lists given by a repeated singular flag;
# the agent's token, which the command line takes from a file only (never argv, where `ps` shows it).
FLAG_OF = {"objectives": "--objective", "constraints": "--constraint", "token": "--token-file"}


def flag_of(name: str) -> str:
    """The flag that sets the library parameter ``name``: ``data_dir`` -> ``--data-dir``."""
    return FLAG_OF.get(name) or "--" + name.replace("_", "-")


def _reword(text: str) -> str:
    """Each backticked parameter name (```data_dir```) as its flag (``--data-dir``)."""
    import re

    return re.sub(r"(?<!`)`([a-z][a-z0-9_]*)`(?!`)", lambda m: flag_of(m.group(1)), text)


def as_flags(exc: HwnasError) -> str:
    """The error as the command line says it: a ParameterError names the flag of its parameter's name
    (``k must be at least 1`` -> ``--k must be at least 1``), and each parameter a message backticks is named by
    its flag (in any error: one wrapped in another's message keeps its parameters)."""
    from ..errors import ParameterError

    if isinstance(exc, ParameterError):
        return f"{flag_of(exc.name)} {_reword(exc.problem)}"
    return _reword(str(exc))


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; bad input becomes a one-line error and exit code 2, never a traceback."""
    try:
        rv = app(args=argv, standalone_mode=False)
        # typer turns Ctrl-C into Exit(130) and, outside standalone mode, returns exit codes instead of raising
        if isinstance(rv, int) and not isinstance(rv, bool) and rv != 0:
            if rv == 130:
                typer.echo("interrupted: everything finished so far is kept", err=True)
            return rv
    except HwnasError as exc:
        typer.echo(f"error: {as_flags(exc)}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted: everything finished so far is kept", err=True)
        return 130
    except OSError as exc:  # the environment, not hwnas: a read-only disk, an unwritable HWNAS_HOME ...
        where = f": {exc.filename}" if exc.filename else ""
        typer.echo(f"error: {exc.strerror or exc}{where}", err=True)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except Exception as exc:  # click usage errors (typer may vendor its own click: catch both)
        if isinstance(exc, _click_classes("Abort")):
            typer.echo("aborted", err=True)
            return 130
        if isinstance(exc, _click_classes("ClickException")):
            exc.show()
            return 2
        if isinstance(exc, _click_classes("Exit")):
            return int(getattr(exc, "exit_code", 0) or 0)
        raise
    return 0


def run() -> None:  # pragma: no cover - console script shim
    sys.exit(main())
