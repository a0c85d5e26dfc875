#!/usr/bin/env bash
# `make demo`: the seed incident of "502 Is Not 520", start to finish, on the lab.
# Usage: demo.sh [REPORT_PATH]   (run through `make demo`, which sets up .venv and PYTHONPATH)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
py=$root/.venv/bin/python
report=${1:-}
lab=$(mktemp -d /tmp/badgateway-demo.XXXXXX)
export PYTHONPATH=$root/tests/lab:$root/build/collections
export ANSIBLE_COLLECTIONS_PATH=$root/build/collections
export ANSIBLE_NOCOLOR=1 ANSIBLE_DEPRECATION_WARNINGS=0 ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false
# Easier on the eyes than the defaults: results as YAML, no "skipping" lines.
export ANSIBLE_CALLBACK_RESULT_FORMAT=yaml ANSIBLE_DISPLAY_SKIPPED_HOSTS=false

stop_lab() { "$py" -m badlab down --dir "$lab" >/dev/null 2>&1 || true; rm -rf "$lab"; }
trap stop_lab EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "Start the lab: scenario stale_upstream (an app pod was replaced; nginx still has its old IP)"
"$py" -m badlab up --scenario "$root/tests/lab/scenarios/stale_upstream.yml" --dir "$lab"
url=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["proxy_url"])' "$lab/lab.json")
export KUBECONFIG=$lab/kubeconfig

step "The symptom: what a user's browser gets"
code=$(curl -s -o /dev/null -w '%{http_code}' "$url")
echo "$ curl $url -> HTTP $code"
[ "$code" = 502 ] || { echo "expected the lab's proxy to answer 502 before the diagnosis, got $code"; exit 1; }

step "What the cluster looks like (kubectl against the lab's API server)"
show kubectl get pods -A -o wide

step "Diagnose, with remediation allowed: ansible-playbook badgateway.k8s.diagnose_502"
args=(-e "@$lab/vars.yml" -e diagnose_502_remediate=true)
[ -n "$report" ] && args+=(-e "diagnose_502_report_file=$report")
show "$root/.venv/bin/ansible-playbook" "$root/playbooks/diagnose_502.yml" "${args[@]}"

step "After the reload"
code=$(curl -s -o /dev/null -w '%{http_code}' "$url")
echo "$ curl $url -> HTTP $code"
[ "$code" = 200 ] || { echo "expected 200 after the remediation, got $code"; exit 1; }
[ -n "$report" ] && echo "The structured result is in $report"
step "Done: the lab is stopped, nothing is left running"
