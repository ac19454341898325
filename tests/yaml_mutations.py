"""Line-level mutations of a valid YAML file: what a hurried edit or a broken copy does to a
configuration (deleted or doubled lines, wrong indentation, junk values and keys, stray bytes)."""
from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import strategies as st

YAML_JUNK = ["", "~", "-1", "0", "1e999", "-.inf", ".nan", "2020-13-45", "2020-02-30", "2001-12-14t21:59:43.10-99:00",
             "[", "]", "{a: 1}", "[1, 2]", "{", "!!binary xx", "!!python/name:os.system", "*nope", "&a x", "yes",
             "0x1F", '"\\ud800"', "'", "|", ">", "@", "`", "%x", "12345678901234567890123", "null", '""', "- x",
             "? a", "!!int abc", "!!float x", "!!timestamp 2020-99-99", "<<: *a", "<<: 1", "a: b: c",
             "é" * 3, "\t", "9" * 50, "!!set {a, b}", "!!omap [a]", "-"]
KEYS = ["id", "kind", "sites", "devices", "registry", "intake", "rules", "extra", "<<", "hazard", "lon",
        "interval_s", "protocol", "kinds", "threshold", "site", "levels", "1", "null"]


def trimmed_registry_text(path: Path, sites: int) -> str:
    """The default registry with its first `sites` sites: the same shapes, cheap to load."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["sites"] = doc["sites"][:sites]
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


@st.composite
def mutated_yaml(draw, text: str, max_ops: int = 4) -> bytes:
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, max_ops))):
        if not lines:
            lines = [""]
        i = draw(st.integers(0, len(lines) - 1))
        line = lines[i]
        indent = line[: len(line) - len(line.lstrip())]
        op = draw(st.integers(0, 6))
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, line)
        elif op == 2 and ":" in line:  # a junk value
            lines[i] = line.split(":", 1)[0] + ": " + draw(st.sampled_from(YAML_JUNK))
        elif op == 3:  # indentation off by one or two
            lines[i] = draw(st.sampled_from([" ", "  ", "\t"])) + line if draw(st.booleans()) else line[1:]
        elif op == 4:  # a junk key
            rest = line.split(":", 1)[1] if ":" in line else " x"
            lines[i] = indent + draw(st.sampled_from(KEYS)) + ":" + rest
        elif op == 5:  # a new line
            lines.insert(i, indent + draw(st.sampled_from(KEYS)) + ": " + draw(st.sampled_from(YAML_JUNK)))
        else:  # a list item turned into junk, or a line cut short
            lines[i] = (indent + "- " + draw(st.sampled_from(YAML_JUNK))) if line.lstrip().startswith("-") \
                else line[: draw(st.integers(0, len(line)))]
    data = "\n".join(lines).encode("utf-8")
    if draw(st.integers(0, 15)) == 0:  # stray bytes: invalid UTF-8, NUL, a BOM in the middle
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\x00", b"\xef\xbb\xbf", b"\xc3"])) + data[at:]
    return data
