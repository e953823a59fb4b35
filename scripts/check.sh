#!/usr/bin/env bash
# Every check CI runs, in order, stopping at the first that fails: ruff's lint, ruff's
# formatting, mypy (scripts/typecheck.py) and the test suite. Arguments go to pytest
# (`bash scripts/check.sh -x tests/test_codec.py`). Expects the .venv of scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== ruff check" && .venv/bin/ruff check .
echo "== ruff format --check" && .venv/bin/ruff format --check .
echo "== mypy" && .venv/bin/python scripts/typecheck.py
echo "== pytest" && exec .venv/bin/python -m pytest "$@"
