#!/usr/bin/env bash
# Rebuild the shipped ONNX models, their manifests and licence texts (see models/README.md).
#
# torch lives only in a throwaway venv outside the repo; the app never imports it.
# Usage: bash models/export/make_models.sh [--only embedder,keypoints,keypoints_stages,matcher,matcher_int8] [--skip-venv]
# Env:   WILDID_EXPORT_VENV  venv folder (default ${TMPDIR:-/tmp}/wildid-export-venv)
#        PYTHON              interpreter that creates the venv (default python3, must be 3.11)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${WILDID_EXPORT_VENV:-${TMPDIR:-/tmp}/wildid-export-venv}"
python="${PYTHON:-python3}"
skip_venv=0
args=()
for a in "$@"; do
  if [[ "$a" == "--skip-venv" ]]; then skip_venv=1; else args+=("$a"); fi
done

if [[ $skip_venv -eq 0 ]]; then
  if [[ ! -x "$venv/bin/python" ]]; then
    echo "== creating export venv in $venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
  fi
  echo "== installing pinned export packages (torch is large; the first run takes minutes)"
  "$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"
fi

cd "$repo"
OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" "$venv/bin/python" "$here/export_models.py" \
  --out "$repo/models" ${args[@]+"${args[@]}"}
