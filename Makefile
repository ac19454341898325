# geowarn: `make demo` and `make test` work on a fresh Debian/Ubuntu with Python 3.11+ and make.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ROOT   := $(shell id -u 2>/dev/null)

.PHONY: demo test venv dist test-deps system-deps bench bench-ingest bench-core bench-export bench-alert bench-warm soak clean

$(PY):
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  if [ "$(ROOT)" = "0" ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); \
	  else echo "python3 -m venv failed: install python3-venv (Debian/Ubuntu)"; exit 1; fi; }
	$(PY) -m pip install -q --upgrade pip

venv: $(PY)
	$(PY) -m pip install -q -e '.[demo]'

# The wheel and sdist an operator installs (README "Running as a service"). The wheel is built
# from the sdist; old build leftovers go first, setuptools would add what an old egg-info listed.
dist: $(PY)
	$(PY) -m pip install -q -e '.[dist]'
	rm -rf dist build *.egg-info && $(PY) -m build --outdir dist .

# What the tests use for real: Mosquitto, VictoriaMetrics (InfluxDB write API), systemd-analyze,
# and for the console's browser tests Debian's chromium with its chromedriver and CJK fonts.
system-deps:
	@missing=""; \
	command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	command -v victoria-metrics >/dev/null || [ -x /usr/bin/victoria-metrics ] || missing="$$missing victoria-metrics"; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 ] || command -v faketime >/dev/null || missing="$$missing faketime"; \
	command -v chattr >/dev/null || missing="$$missing e2fsprogs"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || [ -x /usr/bin/chromedriver ] || missing="$$missing chromium-driver"; \
	[ -d /usr/share/fonts/opentype/noto ] && ls /usr/share/fonts/opentype/noto | grep -q CJK || missing="$$missing fonts-noto-cjk"; \
	if [ -n "$$missing" ]; then \
	  if [ "$(ROOT)" = "0" ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing:$$missing (run as root, or install them)"; exit 1; fi; \
	fi

test-deps: $(PY) system-deps
	$(PY) -m pip install -q -e '.[test]'

test: test-deps
	$(PY) -m pytest -q

demo: venv
	$(PY) -m geowarn.simulators.demo

# every benchmark, CI-sized, one JSON object on stdout (docs/performance.md)
bench: test-deps
	$(PY) bench/run_all.py

bench-warm: test-deps
	$(PY) bench/bench_warm.py

bench-ingest: test-deps
	$(PY) bench/bench_ingest.py

bench-export: test-deps
	$(PY) bench/bench_export.py

bench-core: test-deps
	$(PY) bench/bench_core.py

bench-alert: test-deps
	$(PY) bench/bench_alert.py

# 30 simulated days of the whole network through Mosquitto in ~10 min (docs/performance.md, Soak)
soak: test-deps
	$(PY) bench/soak.py

clean:
	rm -rf $(VENV) build dist *.egg-info state
