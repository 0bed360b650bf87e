#!/usr/bin/env bash
# What a library user installs: packs this checkout (`npm pack`, without running `prepare`: run
# `npm run build:wasm && npm run build` first) and installs the tarball into an empty folder,
# once as `npm install` does by default (--omit=dev) and once with --omit=dev --omit=optional;
# prints the tarball size and each installed node_modules size and package list, and checks
# that the library and the CLI load in each.
#   bash scripts/install-size.sh [CHECKOUT]     (default: this checkout)
set -euo pipefail
checkout=$(cd "${1:-$(dirname "$0")/..}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tarball=$(cd "$checkout" && npm pack --ignore-scripts --silent --pack-destination "$work")
echo "tarball: $(du -k "$work/$tarball" | cut -f1) KiB ($tarball)"
for omit in "--omit=dev" "--omit=dev --omit=optional"; do
  app="$work/app-$RANDOM"
  mkdir "$app"
  (cd "$app" && npm init -y >/dev/null && npm install $omit --no-audit --no-fund --silent "$work/$tarball")
  packages=$(cd "$app/node_modules" && shopt -s nullglob && printf '%s\n' [!@.]* @*/*)
  echo "npm install $omit: node_modules $(du -sk "$app/node_modules" | cut -f1) KiB, $(echo "$packages" | wc -l) packages"
  echo "  $(echo "$packages" | tr '\n' ' ')"
  # The library and the CLI load without the optional packages.
  (cd "$app" && node --input-type=module -e 'const m = await import("vitprune"); console.log(`  import("vitprune"): ${Object.keys(m).length} exports`)' && echo "  $(node_modules/.bin/vitprune --version)")
done
