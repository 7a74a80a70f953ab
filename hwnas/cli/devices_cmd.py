"""`hwnas devices`: list the device profiles and which devices are reachable now."""

from __future__ import annotations

import typer

from .common import EXIT_CODES, out_console


def register(app: typer.Typer) -> None:
    @app.command("devices", epilog=EXIT_CODES)
    def devices(
        check: bool = typer.Option(True, "--check/--no-check", help="probe each device (adb devices, agent /info)"),
    ) -> None:
        """List the device profiles (runtime, threads, delegate, connection, energy) and their reachability.

        Example: hwnas devices
        """
        from rich.table import Table

        from ..measure.device_profile import list_profiles
        from ..measure.runners import get_runner

        table = Table(title="devices")
        for col in ("name", "runtime", "threads", "delegate", "precision", "connection", "energy", "reachable"):
            table.add_column(col, overflow="fold")
        for p in list_profiles():
            conn = p.connection_type
            if conn == "agent":
                conn = f"agent {p.connection['host']}:{p.connection['port']}"
            elif conn == "adb":
                conn = f"adb {p.connection.get('serial') or '(only device)'}"
            pm = (p.energy.get("power_model") or {}).get("name")
            sensor = p.energy.get("sensor", "auto")
            if sensor == "none":
                energy = f"estimated:{pm}" if pm else "none"
            else:
                energy = sensor + (f", else estimated:{pm}" if pm else "")
            reach = "-"
            if check:
                ok, why = get_runner(p).reachable(p)
                reach = f"[green]yes[/] ({why})" if ok else f"[red]no[/] ({why})"
            table.add_row(p.name, p.runtime, str(p.threads), str(p.delegate or "default"), p.precision, conn, energy,
                          reach)
        out_console().print(table)
