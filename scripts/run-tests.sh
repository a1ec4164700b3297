#!/usr/bin/env bash
# The test command (README, .ci/run): set up, type-check, lint, then jest on the real services
# that test/global-setup.ts starts (libvirtd, Temporal dev server, PostgreSQL) and the storage
# suites start themselves (nfs-ganesha, tgtd, single-node Ceph). Extra arguments go to jest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
npx tsc --noEmit -p tsconfig.json
npx eslint .
NODE_OPTIONS=--experimental-vm-modules npx jest "$@"
