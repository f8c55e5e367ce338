"""Reads the lake's Parquet files with pyarrow, independently of DuckDB, and prints them as JSON:
per symbol its ticks (ascending by ts, then seq) and its 1m candles, in the REST answers' shape."""
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pyarrow as pa


def read_kind(lake: Path, kind: str) -> pa.Table | None:
    files = sorted((lake / kind).glob("date=*/part-*.parquet"))
    if not files:
        return None
    return pa.concat_tables([pq.read_table(f) for f in files])


def main() -> None:
    lake = Path(sys.argv[1])
    out: dict = {}
    ticks = read_kind(lake, "ticks")
    if ticks is not None:
        rows = sorted(ticks.to_pylist(), key=lambda r: (r["symbol"], r["ts"], r["seq"]))
        for r in rows:
            out.setdefault(r["symbol"], {"ticks": [], "candles": []})["ticks"].append(
                {
                    "ts": r["ts"],
                    "price": r["price"],
                    "size": r["size"],
                    "id": r["id"],
                    "maShort": r["ma_short"],
                    "maLong": r["ma_long"],
                    "late": r["late"],
                }
            )
    candles = read_kind(lake, "candles")
    if candles is not None:
        rows = sorted(
            (r for r in candles.to_pylist() if r["interval"] == "1m"), key=lambda r: (r["symbol"], r["ts"])
        )
        for r in rows:
            out.setdefault(r["symbol"], {"ticks": [], "candles": []})["candles"].append(
                {
                    "symbol": r["symbol"],
                    "interval": r["interval"],
                    "ts": r["ts"],
                    "open": r["open"],
                    "high": r["high"],
                    "low": r["low"],
                    "close": r["close"],
                    "volume": r["volume"],
                    "trades": r["trades"],
                    "vwap": r["vwap"],
                    "final": True,
                }
            )
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
