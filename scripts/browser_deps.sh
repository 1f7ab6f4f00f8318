#!/usr/bin/env bash
# Debian's chromium and chromium-driver for the dashboard's browser tests (tests/browser).
# Cached: nothing to do when /usr/bin/chromium is there. Installs only as root with apt-get;
# otherwise says loudly that the browser tests will be SKIPPED (pytest names the missing package).
set -uo pipefail
if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
    exit 0
fi
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
    echo "WARNING: chromium/chromium-driver missing and cannot be installed here (needs root and apt-get):" \
         "the browser tests will be SKIPPED. Install them: apt-get install chromium chromium-driver" >&2
    exit 0
fi
echo "Installing Debian's chromium and chromium-driver for the browser tests ..."
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver; } >/dev/null; then
    echo "WARNING: apt-get could not install chromium/chromium-driver: the browser tests will be SKIPPED." >&2
fi
exit 0
