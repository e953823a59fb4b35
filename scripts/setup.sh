#!/usr/bin/env bash
# Creates .venv (if missing) and installs symbolic_nas with its dev tools and Ray (the
# Ray executor is tested in CI against a local Ray).
# torch==2.13.0 is pinned first: on this project's CPU machines it is a local CPU wheel;
# any other release would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[dev,ray]"
