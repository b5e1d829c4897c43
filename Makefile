# Two commands on a fresh machine: `make run` serves the demo app, `make test` checks everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=
BENCH_ARGS ?=  # e.g. --quick for a 30 s smoke run

.PHONY: run test lint typecheck pytest bench clean system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/hybridserve $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check hybridserve tests bench
	$(BIN)/ruff format --check hybridserve tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# nginx and haproxy for the reverse-proxy tests, systemd-socket-activate for socket activation,
# tmux for `hybridserve top` in a real terminal: from Debian's packages when missing (needs root).
system-deps:
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light; } || \
	  echo "warning: could not install nginx; tests/integration/test_nginx.py will be skipped" >&2
	@command -v haproxy >/dev/null 2>&1 || test -x /usr/sbin/haproxy || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy; } || \
	  echo "warning: could not install haproxy; tests/integration/test_haproxy.py will be skipped" >&2
	@command -v systemd-socket-activate >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd; } || \
	  echo "warning: no systemd-socket-activate; test_systemd.py passes LISTEN_FDS itself" >&2
	@command -v tmux >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux; } || \
	  echo "warning: could not install tmux; tests/integration/test_top.py will be skipped" >&2
	@command -v curl >/dev/null 2>&1 && command -v h2load >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl nghttp2-client; } || \
	  echo "warning: no curl/h2load; their HTTP/2 tests in test_http2.py will be skipped" >&2

# Two test processes: most tests wait on a real server, so two halve the wall time on 2 cores.
pytest: $(STAMP) system-deps
	$(BIN)/pytest -n 2

test: lint typecheck pytest

# Side-by-side benchmark against the peers (their own virtualenv, wrk from Debian); writes
# bench/RESULTS.md. Loopback only, bounded to about 15 minutes.
bench: $(STAMP) system-deps  # nginx for the balance shape behind a proxy
	bash bench/setup.sh
	bench/.venv/bin/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
