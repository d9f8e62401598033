"""CLI commands: journal (stub until its issue lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's subcommands to the top-level parser."""
