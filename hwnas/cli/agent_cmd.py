"""`hwnas agent serve`: run the measurement agent on an edge board (safe defaults: docs/security.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import EXIT_CODES


def register(app: typer.Typer) -> None:
    agent = typer.Typer(help="The measurement agent for edge boards (Raspberry Pi, Jetson).\n\n"
                             "Example: hwnas agent serve --host 0.0.0.0 --token-file ~/.hwnas-agent-token",
                        no_args_is_help=True)

    @agent.command("serve", epilog=EXIT_CODES)
    def serve(
        port: int = typer.Option(8765, "--port", min=0, max=65535, help="TCP port"),
        host: str = typer.Option("127.0.0.1", "--host",
                                 help="address to listen on; anything but loopback needs a token"),
        token_file: Optional[Path] = typer.Option(None, "--token-file",
                                                  help="file holding the shared secret clients must send "
                                                       "(default: $HWNAS_AGENT_TOKEN)"),
        token: Optional[str] = typer.Option(None, "--token", hidden=True),
        max_model_mb: int = typer.Option(96, "--max-model-mb", min=1, max=4096,
                                         help="largest model accepted (the request body is checked before it is read)"),
        workers: int = typer.Option(4, "--workers", min=1, max=64, help="connections served at once (the rest get 503)"),
        read_timeout_s: float = typer.Option(10.0, "--read-timeout-s", min=0.1, max=600,
                                             help="a stalled client is cut off after this long"),
        max_time_s: float = typer.Option(60.0, "--max-time-s", min=0.1, max=3600,
                                         help="cap on a client's protocol max_time_s / warmup_max_s"),
        energy_supply: Optional[str] = typer.Option(None, "--energy-supply",
                                                    help="power supply to read for sensor 'battery' (e.g. BAT0); "
                                                         "set here, never by clients"),
        energy_sysfs_root: Optional[Path] = typer.Option(None, "--energy-sysfs-root",
                                                         help="read energy sensors under this root instead of / "
                                                              "(containers); set here, never by clients"),
        verbose: bool = typer.Option(False, "--verbose", help="log every request"),
    ) -> None:
        """Serve measurements over HTTP: clients send a model, the agent measures it here and answers.

        Listens on 127.0.0.1 unless --host says otherwise; any other address needs a token from
        $HWNAS_AGENT_TOKEN or --token-file (never the command line, where `ps` shows it).

        Example: hwnas agent serve --host 0.0.0.0 --port 8765 --token-file ~/.hwnas-agent-token
        """
        from ..errors import HwnasError
        from ..measure.runners.agent import AgentServer, read_token_file

        if token is not None:
            raise HwnasError("--token is not accepted: a secret on the command line shows in ps; "
                             "use $HWNAS_AGENT_TOKEN or --token-file")
        secret = read_token_file(token_file) if token_file is not None else None
        server = AgentServer(host, port, token=secret, sysfs_root=energy_sysfs_root, verbose=verbose,
                             energy_supply=energy_supply,
                             max_model_bytes=max_model_mb * 2**20, read_timeout_s=read_timeout_s,
                             workers=workers, max_time_s=max_time_s).bind()
        auth = "token required" if server.token else "no token: loopback only"
        typer.echo(f"hwnas agent listening on http://{host}:{server.port} ({auth}; models up to {max_model_mb} MiB, "
                   f"{workers} workers; Ctrl-C stops)")
        import sys

        sys.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            typer.echo("agent stopped")

    app.add_typer(agent, name="agent")
