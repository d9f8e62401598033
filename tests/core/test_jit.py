"""The numba cache directory rule both compiled kernels share."""

from __future__ import annotations


def test_numba_cache_dir_is_keyed_by_sources_and_version(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A changed source or numba version gives another directory, so a stale compile never loads."""
    from aitrader.core.jit import numba_cache_dir

    monkeypatch.setenv("AITRADER_NUMBA_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "k.py"
    src.write_text("a = 1\n")
    first = numba_cache_dir([src], version="0.1", sub="portfolio")
    assert first.parent == tmp_path / "cache" / "portfolio" and first.is_dir()
    assert numba_cache_dir([src], version="0.1", sub="portfolio") == first
    assert numba_cache_dir([src], version="0.2", sub="portfolio") != first
    src.write_text("a = 2\n")
    assert numba_cache_dir([src], version="0.1", sub="portfolio") != first
