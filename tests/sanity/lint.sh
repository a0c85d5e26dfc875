#!/usr/bin/env bash
# ansible-lint (production profile) over the collection, and ruff over all Python.
set -euo pipefail
venv=${1:?usage: lint.sh VENV}
cd "$(dirname "$0")/../.."
export PATH="$venv/bin:$PATH"
echo "== ansible-lint --profile production"
"$venv/bin/ansible-lint" --offline --profile production --nocolor -q
echo "== ruff"
"$venv/bin/ruff" check --quiet plugins tests bench
