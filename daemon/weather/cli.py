"""`geowarn weather-warning`: hand a meteorological risk warning to the running service over
its HTTP API (the service owns the effects; this command only delivers the warning)."""
from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request

from geowarn.drivers.timestamps import format_ts

from .warning import parse_warning


def cmd_weather_warning(args) -> int:
    start = time.time() if args.valid_from is None else None
    doc = {"level": args.level, "valid_from": args.valid_from or format_ts(start),
           "valid_to": args.valid_to or format_ts((start or time.time()) + args.hours * 3600), "text": args.text}
    if args.counties:
        doc["counties"] = args.counties
    if args.box:
        doc["box"] = args.box
    if args.id:
        doc["id"] = args.id
    parse_warning(doc)  # the service's own checks first: a ValueError says what is wrong (exit 2)
    token = os.environ.get(args.token_env, "")
    req = urllib.request.Request(f"{args.url.rstrip('/')}/api/v1/weather-warnings", method="POST",
                                 data=json.dumps(doc, ensure_ascii=False).encode(),
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            print(r.read().decode())
            return 0
    except urllib.error.HTTPError as e:
        print(f"geowarn weather-warning: {e.code} {e.read().decode()}", file=sys.stderr)
        return 1
    except urllib.error.URLError as e:
        print(f"geowarn weather-warning: service not reachable at {args.url}: {e.reason}", file=sys.stderr)
        return 1


def add_cli(sub) -> None:
    sp = sub.add_parser("weather-warning", help="issue a meteorological geohazard risk warning to the running service")
    sp.add_argument("--level", required=True, help="blue/yellow/orange/red, 蓝色…红色 or 4…1")
    sp.add_argument("--counties", nargs="+", help="affected counties, as in the registry")
    sp.add_argument("--box", nargs=4, type=float, metavar=("LON_MIN", "LAT_MIN", "LON_MAX", "LAT_MAX"))
    sp.add_argument("--from", dest="valid_from", help="valid from (RFC 3339; default now)")
    sp.add_argument("--to", dest="valid_to", help="valid to (RFC 3339; default --hours from the start)")
    sp.add_argument("--hours", type=float, default=24.0)
    sp.add_argument("--id", help="the issuer's id (default: derived from the content)")
    sp.add_argument("--text", default="")
    sp.add_argument("--url", default="http://127.0.0.1:8787", help="the service's HTTP API")
    sp.add_argument("--token-env", default="GEOWARN_HTTP_TOKEN")
    sp.set_defaults(func=cmd_weather_warning)
