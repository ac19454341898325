"""Packages found, not listed: each of the card's top-level folders is one subpackage of
`geowarn` (daemon/ is geowarn.daemon, drivers/ is geowarn.drivers, …) and every folder under it
is found here, data folders included (as namespace packages), so a new module, folder or data
file cannot be left out of the wheel. Which files ship: MANIFEST.in. Everything else: pyproject.toml."""
from setuptools import find_namespace_packages, setup

TOP_LEVEL = ("daemon", "drivers", "alert_rules", "simulators")

packages: list[str] = []
package_dir: dict[str, str] = {}
for top in TOP_LEVEL:
    package_dir[f"geowarn.{top}"] = top
    packages.append(f"geowarn.{top}")
    packages += [f"geowarn.{top}.{sub}" for sub in
                 find_namespace_packages(top, exclude=["__pycache__", "*.__pycache__"])]

setup(packages=packages, package_dir=package_dir)
