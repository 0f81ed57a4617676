#!/usr/bin/env bash
# Fetches PyMISP's event JSON schema (pymisp/data/schema.json, draft-04 "Validator for misp
# events") from the PyMISP wheel on PyPI, for the request-body validation tests.
#
#   bash tests/pymisp/fetch-schema.sh        # prints the schema's path on stdout
#
# Idempotent: the wheel and the extracted schema are cached under tests/pymisp/.cache/
# (gitignored, or $PYMISP_CACHE_DIR); a second run only prints the path. Needs python3 with
# pip (only `pip download --no-deps`: nothing is installed). Pin: PYMISP_VERSION.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VERSION="${PYMISP_VERSION:-2.5.34.4}"
CACHE="${PYMISP_CACHE_DIR:-$HERE/.cache}"
DEST="$CACHE/pymisp-$VERSION/schema.json"

if [ -s "$DEST" ]; then
  echo "$DEST"
  exit 0
fi
PY="${PYTHON:-python3}"
mkdir -p "$CACHE/wheels"
if ! ls "$CACHE/wheels"/pymisp-"$VERSION"-*.whl >/dev/null 2>&1; then
  "$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --dest "$CACHE/wheels" "pymisp==$VERSION" >&2
fi
WHEEL="$(ls "$CACHE/wheels"/pymisp-"$VERSION"-*.whl | head -n1)"
mkdir -p "$(dirname "$DEST")"
# A wheel is a zip; write to a temporary name first so an interrupted run leaves no half file.
"$PY" - "$WHEEL" "$DEST.tmp" <<'PYEOF'
import json, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    data = z.read("pymisp/data/schema.json")
json.loads(data)  # must be JSON
with open(out, "wb") as f:
    f.write(data)
PYEOF
mv "$DEST.tmp" "$DEST"
echo "$DEST"
