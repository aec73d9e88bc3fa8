#!/usr/bin/env bash
# Packs each isolated-vm-<major>/package.json into the tarball package.json depends on.
# Run it after changing one of them, then `npm install` to update the lockfile.
set -euo pipefail
cd "$(dirname "$0")"
for dir in isolated-vm-*/; do
  (cd "$dir" && npm pack --silent --pack-destination ..)
done
