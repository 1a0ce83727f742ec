# Two commands do everything: `make run` and `make test`.
ADDR ?= 127.0.0.1:8000
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test system-packages lint format migrations-check bench demo

$(PY):
	@PYTHON_BIN=$$(./.ci/find-python) || exit 1; \
	echo "Creating $(VENV) with $$PYTHON_BIN"; \
	"$$PYTHON_BIN" -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# The gallery with demo data on the embedded default (SQLite, local media).
run: $(VENV)/.installed
	DJANGO_DEBUG=on $(PY) manage.py compile_catalogues
	DJANGO_DEBUG=on $(PY) manage.py migrate --noinput
	DJANGO_DEBUG=on $(PY) manage.py seed_demo
	@echo ""
	@echo "  Gallery:     http://$(ADDR)/"
	@echo "  Staff login: http://$(ADDR)/admin/  user: demo  password: demo-gallery-2026"
	@echo ""
	DJANGO_DEBUG=on $(PY) manage.py runserver --noreload $(ADDR)

test: system-packages $(VENV)/.installed-dev
	DJANGO_DEBUG=on $(PY) manage.py compile_catalogues
	DJANGO_SECRET_KEY=$${DJANGO_SECRET_KEY:-test-only-secret-key} DJANGO_HTTPS=off $(PY) -m pytest $(PYTEST_ARGS)

# Debian's chromium for the browser tests: installed when root on Debian/Ubuntu, else asked for.
system-packages:
	@./.ci/system-packages

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

migrations-check: $(VENV)/.installed
	DJANGO_DEBUG=on $(PY) manage.py makemigrations --check --dry-run

bench: $(VENV)/.installed-dev
	DJANGO_DEBUG=on $(PY) bench/images.py
