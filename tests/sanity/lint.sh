#!/usr/bin/env bash
# The linters and the ecosystem's gatekeepers, each as a newcomer would run it in a clone:
# ansible-lint (production profile, from .ansible-lint), ruff, antsibull-docs (the docs site's
# checks), antsibull-changelog, and galaxy-importer on the tarball `ansible-galaxy collection
# build` makes (Galaxy's import checks).
set -euo pipefail
venv=${1:?usage: lint.sh VENV}
cd "$(dirname "$0")/../.."
root=$PWD
export PATH="$venv/bin:$PATH"
# The Makefile points these at build/collections; a bare run in a clone has neither, and each
# tool here must find the collection by itself.
unset ANSIBLE_COLLECTIONS_PATH PYTHONPATH

step() { printf '== %s\n' "$1"; SECONDS=0; }
took() { printf '   (%ss)\n' "$SECONDS"; }

step "ansible-lint (bare, as in a clone)"
ansible-lint --nocolor -q
took

step "ruff (lint, and the one formatter)"
ruff check --quiet plugins extensions tests bench
ruff format --check --quiet plugins extensions tests bench
took

step "mypy (plugins, as the collection package; the lab)"
(cd build/collections && mypy --config-file "$root/mypy.ini" -p ansible_collections.badgateway.k8s.plugins)
(cd tests/lab && mypy --config-file "$root/mypy.ini" badlab)
took

step "antsibull-docs lint-collection-docs --plugin-docs ."
antsibull-docs lint-collection-docs --plugin-docs .
took

step "antsibull-changelog lint"
antsibull-changelog lint
antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
took

step "galaxy-importer on the built tarball"
work=$(mktemp -d "${TMPDIR:-/tmp}/badgateway-k8s-galaxy.XXXXXX")
trap 'rm -rf "$work"' EXIT
ansible-galaxy collection build --output-path "$work" "$root" >/dev/null
tarball=$(ls "$work"/badgateway-k8s-*.tar.gz)
# galaxy-importer writes importer_result.json into the current directory.
if ! (cd "$work" && GALAXY_IMPORTER_CONFIG="$root/tests/sanity/galaxy-importer.cfg" \
      python -m galaxy_importer.main "$tarball" >"$work/import.log" 2>&1); then
  cat "$work/import.log"; echo "galaxy-importer: the import failed"; exit 1
fi
# Galaxy shows its warnings on the collection's import log: they count as failures here.
if grep -E '^(WARNING|ERROR)' "$work/import.log"; then
  echo "galaxy-importer: the import has the warnings or errors above"; exit 1
fi
tail -n 1 "$work/import.log"
took
