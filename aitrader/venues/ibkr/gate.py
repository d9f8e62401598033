"""IBKR's side of the live gate: which port and which account is paper or live.

Pure rules, checked before connecting (the port) and right after (the accounts), so paper
mode can never talk to a live account whatever ``IB_PORT`` says.
"""

from __future__ import annotations

from collections.abc import Sequence

from aitrader.core.errors import LiveTradingRefused

# IB's default API ports: which side of the live gate each one is on.
LIVE_PORTS = {7496: "TWS live", 4001: "IB Gateway live"}
PAPER_PORTS = {7497: "TWS paper", 4002: "IB Gateway paper"}
PAPER_ACCOUNT_PREFIX = "D"  # IB paper accounts: DU1234567 (DF... for advisors)


def check_ib_port(port: int, *, live: bool) -> None:
    """Refuse (before connecting) IB's default live port in paper mode and its paper port
    in live mode. Other ports cannot be judged: the account check after connecting decides."""
    if not live and port in LIVE_PORTS:
        raise LiveTradingRefused(
            f"IB_PORT={port} is the {LIVE_PORTS[port]} port but the agent runs in paper mode; use the paper port "
            "(7497 TWS, 4002 IB Gateway) or trade live with --live and mode: live")
    if live and port in PAPER_PORTS:
        raise LiveTradingRefused(
            f"IB_PORT={port} is the {PAPER_PORTS[port]} port but live trading was asked for; "
            "use the live port (7496 TWS, 4001 IB Gateway) or run without --live")


def check_ib_accounts(accounts: Sequence[str], *, live: bool) -> None:
    """The venue's own word: paper account ids start with ``D``; any mismatch is refused."""
    for acct in accounts:
        is_paper = acct.upper().startswith(PAPER_ACCOUNT_PREFIX)
        if is_paper and live:
            raise LiveTradingRefused(f"IB account {acct} is a paper account but live trading was asked for; "
                                     "check IB_PORT and which TWS/IB Gateway login is running")
        if not is_paper and not live:
            raise LiveTradingRefused(f"IB account {acct} is a live account but the agent runs in paper mode; "
                                     "check IB_PORT and log TWS/IB Gateway in to the paper account")
