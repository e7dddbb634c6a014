#!/usr/bin/env bash
# Installs the Debian packages wildid needs, only when they are missing.
#   sysdeps.sh       the test suite's: Xvfb and the libraries of Qt's xcb platform plugin
#   sysdeps.sh app   the app's alone (`make run`): the xcb plugin's libraries. A desktop
#                    install often lacks libxcb-cursor0, without which PySide6 >= 6.5 cannot
#                    open a window at all.
set -euo pipefail
[ "$(uname -s)" = Linux ] || exit 0  # macOS and Windows: Qt brings what it needs
need=()
if [ "${1:-}" != app ]; then
  command -v Xvfb >/dev/null 2>&1 || need+=(xvfb xauth)
  command -v xvfb-run >/dev/null 2>&1 || need+=(xvfb)
fi
# Qt's xcb platform plugin (the app's windows; real windows under Xvfb for screenshots).
# ldconfig lives in /sbin, which a Debian user's PATH lacks: without it every library would
# look missing and `make run` would ask for sudo each time.
ldconfig=$(command -v ldconfig || echo /sbin/ldconfig)
# read once: `ldconfig -p | grep -q` under pipefail failed whenever grep stopped reading first
# (ldconfig then dies of SIGPIPE), and a present library counted as missing
known_libs=$("$ldconfig" -p 2>/dev/null || true)
for lib in libEGL.so.1 libxkbcommon.so.0 libfontconfig.so.1 libGL.so.1 libdbus-1.so.3 \
           libxcb-icccm.so.4 libxcb-keysyms.so.1 libxcb-cursor.so.0 libxkbcommon-x11.so.0 \
           libxcb-image.so.0 libxcb-render-util.so.0 libxcb-shape.so.0 libxcb-randr.so.0; do
  grep -qF "$lib" <<<"$known_libs" || case "$lib" in
    libEGL.so.1) need+=(libegl1) ;;
    libxkbcommon.so.0) need+=(libxkbcommon0 libxkbcommon-x11-0) ;;
    libfontconfig.so.1) need+=(libfontconfig1) ;;
    libGL.so.1) need+=(libgl1) ;;
    libdbus-1.so.3) need+=(libdbus-1-3) ;;
    libxcb-icccm.so.4) need+=(libxcb-icccm4) ;;
    libxcb-keysyms.so.1) need+=(libxcb-keysyms1) ;;
    libxcb-cursor.so.0) need+=(libxcb-cursor0) ;;
    libxkbcommon-x11.so.0) need+=(libxkbcommon-x11-0) ;;
    libxcb-image.so.0) need+=(libxcb-image0) ;;
    libxcb-render-util.so.0) need+=(libxcb-render-util0) ;;
    libxcb-shape.so.0) need+=(libxcb-shape0) ;;
    libxcb-randr.so.0) need+=(libxcb-randr0) ;;
  esac
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ -n "${WILDID_SYSDEPS_DRY_RUN:-}" ]; then  # tests: say what would be installed
  echo "would install: ${need[*]}"
  exit 0
fi
echo "Installing Debian packages: ${need[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "apt-get not found: install ${need[*]} with your package manager" >&2
  exit 0
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
