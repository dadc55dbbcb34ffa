#!/usr/bin/env bash
# The README's run command: set up (a virtualenv with requirements.txt and the `ens-autoscaler`
# command), then run the function once against the local emulator and SQLite.
# Usage: localcloud/run.sh [EVENT.json] [--dry-run] [--state FILE] [--until-ready] [--json] [-v]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
if [ ! -x .venv/bin/ens-autoscaler ]; then  # the operator's CLI, once (paths in it follow the checkout)
    .venv/bin/pip install --quiet --disable-pip-version-check --no-deps -e .
fi
exec .venv/bin/python -m localcloud.run "$@"
