"""`geowarn shard-import`: after a re-sharding, give an instance the history of the sites it now
owns, so its detector windows warm from it at the next start (docs/scale-out.md).

    geowarn export --state-dir /var/lib/geowarn/shard-0 > shard-0.csv     # from each old journal
    geowarn shard-import --config /etc/geowarn/shard-1.yaml --state-dir /var/lib/geowarn/shard-1 shard-*.csv

Rows are written straight into the journal, never through the broker or the core: history is
not news, and nothing it held is warned again. Only rows of sites this instance's shard owns,
from devices the registry places at that site, are taken; the journal ignores rows it holds.
Run it while the instance is stopped.
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from geowarn.drivers.base import Reading

from .config import load_config
from .journal import Entry, Journal, journal_path
from .replay import read_rows
from .shard import Shard

CHUNK = 50_000  # rows per transaction


def import_history(config: str | None, state_dir: str | Path, files: list[str]) -> dict[str, int]:
    cfg = load_config(config)
    shard = Shard.of(cfg.settings.shard)
    counts: Counter = Counter()
    with Journal(journal_path(state_dir), cfg.settings.journal.synchronous) as journal:
        for name in files:
            rows = read_rows(Path(name), counts)
            entry = Entry()
            for row in rows:
                device = cfg.registry.device(row.device)
                if not shard.owns(row.site):
                    counts["other_shards"] += 1
                elif device is None or device.site != row.site or device.kind != row.kind:
                    counts["not_in_registry"] += 1
                else:
                    entry.readings.append((Reading(row.device, row.kind, row.channel, row.ts, row.value), row.site))
                if len(entry.readings) >= CHUNK:
                    counts["imported"] += journal.write(entry).new_readings
                    entry = Entry()
            counts["imported"] += journal.write(entry).new_readings
            counts["rows"] += len(rows)
    counts["already_held"] = counts["rows"] - counts["imported"] - counts["other_shards"] - counts["not_in_registry"]
    return dict(counts)


def cmd_shard_import(args) -> int:
    json.dump(import_history(args.config, args.state_dir, args.files), sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def add_cli(sub, with_config) -> None:
    sp = with_config(sub.add_parser("shard-import",
                                    help="after a re-sharding: readings of this shard's sites from exported CSV"))
    sp.add_argument("--state-dir", required=True)
    sp.add_argument("files", nargs="+", help="CSV ts,site,device,kind,channel,value (geowarn export)")
    sp.set_defaults(func=cmd_shard_import)
