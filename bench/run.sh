#!/usr/bin/env bash
# The benchmark command (README "Performance"; not part of the test command): set up the
# virtualenv with requirements.txt (as localcloud/run.sh does), then run every benchmark
# against the local emulator and print one table. Takes about a minute.
# Usage: bench/run.sh [--json] [--reps 7] [--warm-events 200] [--warm-ledger 20]
#                     [--no-bytecode] [--only cold,warm,planner,batch] [--function-dir DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
exec .venv/bin/python -m bench "$@"
