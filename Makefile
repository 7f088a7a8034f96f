# TagSense: `make run` serves the portal on the embedded default; `make test` runs the suite.
.PHONY: run test install lint typecheck imports ci lock clean

VENV := .venv
INSTALLED := $(VENV)/.installed

# pyproject.toml: its console scripts (tagsense-ci) are installed with the project.
$(INSTALLED): requirements.lock pyproject.toml
	scripts/venv.sh

install: $(INSTALLED)

run: install
	scripts/run-embedded.sh

test: install
	scripts/services.sh
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy with django-stubs on the modules [tool.mypy] in pyproject.toml lists.
typecheck: install
	$(VENV)/bin/mypy

# The import contracts of [tool.importlinter] in pyproject.toml.
imports: install
	$(VENV)/bin/lint-imports

ci:
	bash .ci/run

# Re-resolve every dependency to its newest allowed version and record it with hashes.
lock: install
	$(VENV)/bin/python -m pip install --quiet uv
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
		--generate-hashes --upgrade -o requirements.lock

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
