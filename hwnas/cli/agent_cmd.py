"""`hwnas agent serve`: run the measurement agent on an edge board."""

from __future__ import annotations

from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    agent = typer.Typer(help="The measurement agent for edge boards (Raspberry Pi, Jetson).\n\n"
                             "Example: hwnas agent serve --port 8765", no_args_is_help=True)

    @agent.command("serve")
    def serve(
        port: int = typer.Option(8765, "--port", min=0, max=65535, help="TCP port"),
        host: str = typer.Option("0.0.0.0", "--host", help="address to listen on"),
        token: Optional[str] = typer.Option(None, "--token", help="shared secret clients must send (default $HWNAS_AGENT_TOKEN)"),
        verbose: bool = typer.Option(False, "--verbose", help="log every request"),
    ) -> None:
        """Serve measurements over HTTP: clients send a model, the agent measures it here and answers.

        Example: hwnas agent serve --port 8765
        """
        from ..measure.runners.agent import AgentServer

        server = AgentServer(host, port, token=token, verbose=verbose).bind()
        typer.echo(f"hwnas agent listening on http://{host}:{server.port} (no authentication beyond the optional token; "
                   f"trusted networks only; Ctrl-C stops)", err=False)
        import sys

        sys.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            typer.echo("agent stopped")

    app.add_typer(agent, name="agent")
