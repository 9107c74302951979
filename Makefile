# The two commands of the README: `make demo` (the main job on embedded defaults) and
# `make test` (lint, types, the whole test suite). Both do their own set-up on a fresh clone.

PYTHON ?= python3
VENV := .venv
# snmpsim runs as an unprivileged user when started by root, so it gets a virtualenv on
# Debian's Python, which that user can read (the pyenv Python under /root it cannot).
SIM_PYTHON ?= /usr/bin/python3
SIM_VENV := .venv-sim

.PHONY: demo test lint bench setup postgres system-packages clean

setup: $(VENV)/.installed $(SIM_VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e ".[collector,test,demo]"
	touch $@

$(SIM_VENV)/.installed:
	$(SIM_PYTHON) -m venv $(SIM_VENV) || { apt-get update -qq && apt-get install -y -qq python3-venv && $(SIM_PYTHON) -m venv $(SIM_VENV); }
	$(SIM_VENV)/bin/pip install -q "snmpsim==1.2.2" "pysmi>=1.5" "pysnmp>=7.1,<8" cryptography
	touch $@

# PostgreSQL on 127.0.0.1:5432 is part of this machine; start it if it is down.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start

# Debian packages the tests use, installed when missing: Chromium and its driver (the
# portal's browser tests drive Debian's, not a downloaded one), systemd (its units verified).
system-packages:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver -a -x /usr/bin/systemd-analyze -a -x /usr/sbin/nginx -a -x /usr/bin/faketime || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver systemd nginx faketime; }

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

test: setup postgres system-packages lint
	$(VENV)/bin/pytest -q -rs

demo: $(VENV)/.installed
	$(VENV)/bin/python -m demo $(DEMO_ARGS)

bench: setup
	@command -v snmpget >/dev/null || { apt-get update -qq && apt-get install -y -qq snmp; }
	$(VENV)/bin/python bench/snmp_read.py --snmpsim $(SIM_VENV)/bin/snmpsim-command-responder

clean:
	rm -rf $(VENV) $(SIM_VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
