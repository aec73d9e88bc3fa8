#!/usr/bin/env bash
# CI on another Node line: `.ci/node-line.sh 26` fetches the newest Node 26 from the npm
# registry (the node-linux-<arch> package carries the binary and its headers), then runs a
# clean install and the README's test command (`npm test`) with it, in a fresh copy of this
# checkout, so the machine's own node_modules is neither used nor touched.
# npm is this machine's, run by that node; native addons build against that node's headers.
set -euo pipefail
major="${1:?usage: .ci/node-line.sh <node major, e.g. 26>}"
[[ "$major" =~ ^[0-9]+$ ]] || { echo "node-line: the Node line is a major number, got \"$major\"" >&2; exit 2; }
repo="$(cd "$(dirname "$0")/.." && pwd)"
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "node-line: no node-linux package for $(uname -m)" >&2; exit 2 ;;
esac
npm_cli="$(readlink -f "$(command -v npm)")"

work="$(mktemp -d "${TMPDIR:-/tmp}/lively-node$major-XXXXXX")"
trap 'rm -rf "$work"' EXIT
started=$SECONDS
phase() { echo "node-line $major: $1 ($((SECONDS - started)) s)"; }

tarball="$(cd "$work" && npm pack "node-linux-$arch@$major" --silent)"
mkdir "$work/node"
tar -xzf "$work/$tarball" -C "$work/node" --strip-components=1
rm "$work/$tarball"
node_bin="$work/node/bin/node"
[[ -x "$node_bin" ]] || { echo "node-line: node-linux-$arch@$major has no bin/node" >&2; exit 1; }
phase "fetched Node $("$node_bin" --version)"

# The checkout without what installs and runs leave behind (dist/ too: `npm ci` builds it
# through `prepare`, with that node).
mkdir "$work/repo"
tar -C "$repo" --exclude=./.git --exclude=./node_modules --exclude=./.livelycouch --exclude=./bench/results --exclude=./dist -cf - . | tar -C "$work/repo" -xf -

# A shim puts this machine's npm on PATH run by that node, whatever npm's own shebang says.
mkdir "$work/shim"
printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$node_bin" "$npm_cli" > "$work/shim/npm"
chmod +x "$work/shim/npm"
export PATH="$work/shim:$work/node/bin:$PATH"
export npm_config_nodedir="$work/node"
[[ "$(node -p process.versions.node)" == "$major".* ]] || { echo "node-line: node on PATH is not Node $major" >&2; exit 1; }

cd "$work/repo"
npm ci --no-audit --no-fund
phase "npm ci done"
npm test
phase "npm test passed"
