# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# The embedded default: SQLite under var/ and tasks in this process unless DATABASE_URL / REDIS_URL
# say otherwise; the periodic tasks run on a thread of the server (no celery beat).
RUN_ENV := DEBUG=true BERTH_TASK_MODE=thread

.PHONY: run test venv clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

## run: set up and serve Berth on http://127.0.0.1:8000 on the embedded default (SQLite, no broker)
run: venv
	$(RUN_ENV) $(PY) manage.py migrate --noinput
	$(RUN_ENV) $(PY) manage.py bootstrap
	$(RUN_ENV) BERTH_IN_PROCESS_BEAT=true $(PY) manage.py runserver --noreload $(HOST):$(PORT)

## test: the whole suite against real PostgreSQL, Redis, dockerd and sshd
test: venv
	$(PY) -m pytest --create-db $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var staticfiles
