#!/usr/bin/env bash
# Print the path of a working Python X.Y: `pythonX.Y` on PATH, else the newest pyenv install.
#
#   scripts/find_python.sh 3.12
#
# Exits 1 with one line on stderr when there is none (install it, or set PYTHON).
set -euo pipefail
want="${1:?usage: find_python.sh X.Y}"
if command -v "python$want" >/dev/null && "python$want" -c "" 2>/dev/null; then
    command -v "python$want"
    exit 0
fi
root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
for candidate in $(ls -d "$root"/versions/"$want".*/bin/python"$want" 2>/dev/null | sort -V -r); do
    if "$candidate" -c "" 2>/dev/null; then
        echo "$candidate"
        exit 0
    fi
done
echo "Python $want is required (not on PATH, not under $root/versions): install it or set PYTHON." >&2
exit 1
