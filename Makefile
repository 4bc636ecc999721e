# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test venv migrate serve clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

## run: set up and serve Berth on http://127.0.0.1:8000 on the embedded default (SQLite, no broker)
run: venv
	DEBUG=true $(PY) manage.py migrate --noinput
	DEBUG=true $(PY) manage.py bootstrap
	DEBUG=true BERTH_IN_PROCESS_BEAT=true $(PY) manage.py runserver --noreload $(HOST):$(PORT)

## test: the whole suite against real PostgreSQL, Redis, dockerd and sshd
test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var staticfiles
