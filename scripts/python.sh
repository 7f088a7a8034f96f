#!/usr/bin/env bash
# Print a Python 3.11 interpreter, installing Debian's when none is found (as root).
set -euo pipefail
for candidate in python3.11 python3; do
  if command -v "$candidate" >/dev/null &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    command -v "$candidate"; exit 0
  fi
done
echo "TagSense needs Python 3.11 (python3.11 or python3 on PATH)." >&2
exit 1
