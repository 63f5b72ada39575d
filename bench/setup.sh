#!/usr/bin/env bash
# Creates bench/.venv with the pinned librosa/mir_eval reference stack (bench/requirements.txt).
# Usage: bench/setup.sh   (from anywhere; needs python3.11 and PyPI)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3.11}"
if [ ! -x "$here/.venv/bin/python" ]; then
    "$python" -m venv "$here/.venv"
fi
"$here/.venv/bin/python" -m pip install --quiet --upgrade pip
"$here/.venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"
"$here/.venv/bin/python" -c "import librosa, mir_eval, numpy, soundfile; print('librosa', librosa.__version__, 'mir_eval', mir_eval.__version__, 'numpy', numpy.__version__, 'soundfile', soundfile.__version__)"
