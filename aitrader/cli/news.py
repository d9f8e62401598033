"""CLI: ``aitrader news import|download|score``: headlines in, sentiment features out."""

from __future__ import annotations

import argparse
from typing import Any

import pandas as pd

from aitrader.core.errors import DataError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("news", help="store news headlines and score their sentiment")
    nsub = p.add_subparsers(dest="news_command", metavar="NEWS")
    imp = nsub.add_parser("import", help="import headlines from a CSV or JSON file")
    imp.add_argument("file")
    imp.set_defaults(func=cmd_import)
    dl = nsub.add_parser("download", help="download headlines from Alpaca's news API")
    dl.add_argument("--symbols", required=True, help="comma-separated symbols")
    dl.add_argument("--start", required=True)
    dl.add_argument("--end")
    dl.set_defaults(func=cmd_download)
    sc = nsub.add_parser("score", help="score a symbol's stored news and print its news_* features")
    sc.add_argument("--symbol", required=True)
    sc.add_argument("--scorer", choices=["lexicon", "llm"], default=None, help="default: sentiment.scorer")
    sc.add_argument("--tail", type=int, default=10, help="bars to print (default 10)")
    sc.set_defaults(func=cmd_score)
    p.set_defaults(func=lambda args, ctx: (p.print_help(), 2)[1])


def cmd_import(args: argparse.Namespace, ctx: Any) -> int:
    from aitrader.data.news_import import read_news_file
    from aitrader.data.news_store import NewsStore

    articles = read_news_file(args.file)  # validates every row before anything is written
    added = NewsStore(ctx.home).write(articles)
    print(f"imported {len(articles)} article(s): " + ", ".join(f"{s} +{n}" for s, n in added.items()))
    return 0


def _when(text: str | None, flag: str) -> pd.Timestamp | None:
    if text is None:
        return None
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise DataError(f"{flag} {text!r}: not a date") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts


def cmd_download(args: argparse.Namespace, ctx: Any) -> int:
    from aitrader.config import Secrets
    from aitrader.data.bars import check_symbol
    from aitrader.data.news_store import NewsStore
    from aitrader.venues.alpaca.news import AlpacaNews

    symbols = [check_symbol(s.strip().upper()) for s in args.symbols.split(",") if s.strip()]
    start, end = _when(args.start, "--start"), _when(args.end, "--end")
    assert start is not None
    if end is not None and end < start:
        raise DataError(f"--end {args.end} is before --start {args.start}")
    client = AlpacaNews.from_env(Secrets.from_env())
    articles = client.get_news(symbols, start.to_pydatetime(), None if end is None else end.to_pydatetime())
    added = NewsStore(ctx.home).write(articles)
    print(f"downloaded {len(articles)} article(s): " + (", ".join(f"{s} +{n}" for s, n in added.items()) or "none new"))
    return 0


def cmd_score(args: argparse.Namespace, ctx: Any) -> int:
    from aitrader.data.bars import check_symbol
    from aitrader.data.news_store import NewsStore
    from aitrader.features.news import make_scorer, news_features, score_frame

    symbol = check_symbol(args.symbol.upper())
    news = NewsStore(ctx.home).read(symbol)
    if news.empty:
        raise DataError(f"no stored news for {symbol}: run 'aitrader news import FILE' or 'aitrader news download'")
    tf = ctx.settings.timeframe_for(symbol)
    bars = ctx.workspace.bars(symbol, tf)
    scorer = make_scorer(ctx.settings, home=ctx.home, kind=args.scorer)
    feats = news_features(pd.DatetimeIndex(bars.index), score_frame(news, scorer), timeframe=tf)
    shown = feats[feats["news_count"] > 0].tail(args.tail)
    print(f"{symbol}: {len(news)} article(s), {int((feats['news_count'] > 0).sum())} bar(s) with news "
          f"(scorer: {getattr(scorer, 'name', 'lexicon')})")
    print(shown.round(4).to_string() if len(shown) else "no stored bar is decided after any stored article")
    return 0
