# 卡盟 customer-service bot. `make demo` runs it; `make test` tests it. Everything else is a building block.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
RASA_VENV := .venv-rasa
PY := $(VENV)/bin/python
ifeq ($(V),1)
PIP_FLAGS ?= --disable-pip-version-check
else
PIP_FLAGS ?= --disable-pip-version-check -q
endif

.PHONY: help venv venv-rasa train demo demo-staff up down status test lint format nlu-validate nlu-test nlu-report nlu-independent simulate bench ops-bench chaos clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# set-up steps say what they do and how long they usually take; installer output goes to var/log/ (V=1 shows it)
STEP := scripts/step.sh
export V

$(VENV)/.installed: pyproject.toml constraints.txt
	@py="$$(scripts/find-python.sh main)" && \
	  $(STEP) "creating .venv with $$py (bot, actions, sandbox, tests)" "~1 min" var/log/venv.log \
	  bash -c '"$$0" -m venv $(VENV) && $(VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip && \
	    $(VENV)/bin/pip install $(PIP_FLAGS) -c constraints.txt -e ".[dev]"' "$$py"
	@touch $@

$(RASA_VENV)/.installed: nlu/requirements-rasa.txt nlu/constraints-rasa.txt
	@py="$$(scripts/find-python.sh rasa)" && \
	  $(STEP) "creating .venv-rasa with $$py and installing Rasa 3.6 (TensorFlow, spaCy…)" "~2-3 min" \
	  var/log/venv-rasa.log bash -c '"$$0" -m venv $(RASA_VENV) && \
	    $(RASA_VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip wheel && \
	    $(RASA_VENV)/bin/pip install $(PIP_FLAGS) -c nlu/constraints-rasa.txt -r nlu/requirements-rasa.txt' "$$py"
	@touch $@

venv: $(VENV)/.installed ## create the main venv (Python >= 3.11)

venv-rasa: $(RASA_VENV)/.installed ## create Rasa's venv (Python 3.10)

train: venv venv-rasa ## train the Rasa model (reuses the cached one when nlu/ is unchanged)
	$(PY) scripts/train.py

demo: ## the demo: sandbox + action server + Rasa + bot (terminal chat without TELEGRAM_BOT_TOKEN)
	@echo "make demo: checking the virtualenvs (.venv, .venv-rasa); the first run creates them (~3-4 min)" >&2
	@$(MAKE) --no-print-directory venv venv-rasa
	@$(PY) scripts/stack.py demo

demo-staff: venv ## a second terminal for the demo: be the merchant and the agent (needs `make demo` running)
	@$(PY) -m bot.staff_console

up: venv venv-rasa ## the stack in the background, waiting on health checks; logs in var/log
	$(PY) scripts/stack.py up

down: ## stop what `make up` started
	@test -x $(PY) && $(PY) scripts/stack.py down || true

status: ## which processes answer their health checks
	$(PY) scripts/stack.py status

lint: venv ## ruff (lint + format check) and mypy --strict
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: venv ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

nlu-validate: venv-rasa ## rasa data validate
	cd nlu && ../$(RASA_VENV)/bin/rasa data validate --fail-on-warnings

nlu-test: venv venv-rasa ## the test stories of nlu/tests/ against the trained model (part of make test)
	$(PY) scripts/train.py
	$(PY) -m pytest -q tests/nlu

nlu-report: venv venv-rasa ## 5-fold cross-validation → nlu/reports/cross_validation.md (fails under target)
	$(PY) scripts/nlu_report.py

nlu-independent: venv venv-rasa ## the trained model on the independent test set → nlu/reports/independent_set.md
	$(PY) scripts/nlu_report.py --independent

simulate: venv venv-rasa ## simulated buyers (300 conversations, zh+en) → nlu/reports/simulation.md; SIM_ARGS=--check etc.
	$(PY) scripts/simulate.py $(SIM_ARGS)

bench: venv venv-rasa ## latency p50/p95 vs bare Rasa, sustained load, RSS, handoff (escalation → first reply, relay) → var/bench.md
	$(PY) scripts/bench.py

ops-bench: venv ## /ops and /ops/api p95 on PostgreSQL with 100,000 conversations and 20,000 cancellations → var/ops-bench.md
	$(PY) scripts/ops_bench.py

chaos: venv venv-rasa ## kill each process under load (own Redis + PostgreSQL) → docs/chaos-report.md, var/chaos/
	$(PY) scripts/chaos.py

test: venv venv-rasa ## the whole suite: lint, unit, integration (PostgreSQL, Redis) and end-to-end
	$(MAKE) lint
	$(PY) scripts/train.py
	$(PY) -m pytest -q

clean: down ## remove venvs, models and runtime files
	rm -rf $(VENV) $(RASA_VENV) nlu/models var .mypy_cache .ruff_cache .pytest_cache
