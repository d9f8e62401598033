"""CLI command: ``aitrader dashboard`` serves the read-only Streamlit dashboard.

It runs ``streamlit run aitrader/dashboard/app.py`` headless, bound to
``settings.dashboard.host`` (127.0.0.1 by default), with usage statistics off. The home
directory and config file reach the app through ``AITRADER_HOME`` / ``AITRADER_CONFIG``.
A non-loopback address from the config file is refused: exposing the dashboard on the
network needs an explicit ``--host`` (and then prints a warning).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from aitrader.core.errors import ConfigError

APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_bind(*, configured_host: str, configured_port: int, host: str | None, port: int | None,
                 ) -> tuple[str, int, str | None]:
    """The (host, port, warning) to serve on.

    Raises :class:`ConfigError` for a non-loopback host that came from the config rather
    than from an explicit ``--host``; an explicit one is allowed with a warning.
    """
    chosen_port = configured_port if port is None else port
    if not 1 <= chosen_port <= 65535:
        raise ConfigError(f"dashboard port {chosen_port} out of range 1..65535")
    if host is None:
        if not is_loopback(configured_host):
            raise ConfigError(
                f"dashboard.host {configured_host!r} is not a loopback address; the dashboard binds 127.0.0.1 unless "
                f"you pass --host {configured_host} explicitly"
            )
        return configured_host, chosen_port, None
    if not is_loopback(host):
        return host, chosen_port, (
            f"aitrader: warning: serving the dashboard on {host}:{chosen_port}, reachable from the network; it "
            "is read-only but shows positions and P&L to anyone who can reach it"
        )
    return host, chosen_port, None


def streamlit_command(*, host: str, port: int) -> list[str]:
    """The ``streamlit run`` command line for the dashboard app."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        "--global.developmentMode", "false",
        "--client.toolbarMode", "viewer",
    ]


def _run(args: argparse.Namespace, ctx: Any) -> int:
    settings = ctx.settings
    home = ctx.home
    host, port, warning = resolve_bind(configured_host=settings.dashboard.host, configured_port=settings.dashboard.port,
                                       host=args.host, port=args.port)
    if warning:
        print(warning, file=sys.stderr)
    env = dict(os.environ)
    env["AITRADER_HOME"] = str(home.root)
    config_file = getattr(ctx, "config_file", None)
    if config_file:
        env["AITRADER_CONFIG"] = str(Path(config_file).resolve())
    else:
        env.pop("AITRADER_CONFIG", None)
    print(f"aitrader: dashboard for {home.root} on http://{host}:{port} (read-only; Ctrl-C stops it)", flush=True)
    proc = subprocess.Popen(streamlit_command(host=host, port=port), env=env)
    # Stopping this command (SIGTERM from a service manager or a test) must stop the server too.
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda signum, frame: proc.terminate())
    try:
        return int(proc.wait())
    except KeyboardInterrupt:
        proc.terminate()
        raise
    finally:
        if proc.poll() is None:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        signal.signal(signal.SIGTERM, previous)


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's subcommands to the top-level parser."""
    p = sub.add_parser("dashboard", help="serve the read-only dashboard (Streamlit, 127.0.0.1 by default)",
                       description="Serve the read-only Streamlit dashboard for --home.")
    p.add_argument("--host", default=None,
                   help="address to bind (default: dashboard.host, 127.0.0.1); a non-loopback one is allowed only here")
    p.add_argument("--port", type=int, default=None, help="port (default: dashboard.port, 8501)")
    p.set_defaults(func=_run)
