"""Cutscore's own beat tracker on songs with ground truth, scored with mir_eval.

For every `*.wav` in DIR with a `*.truth.json` beside it, runs `trainer analyze WAV --json`
(the offline tracker; `--streaming` runs the plugin's causal tracker instead) and scores its
`beats`, `downbeats` and `tempo_bpm` with `beat_eval.py` (the same columns as
`librosa_beats.py` and `madmom_beats.py`). Build the binary first:
`cargo build --release -p cutscore-trainer`.

Usage: bench/.venv/bin/python bench/cutscore_beats.py DIR [--json OUT]
       [--trainer PATH] [--streaming]
"""

import json
import subprocess
import sys
from pathlib import Path

import mir_eval
import numpy as np

import beat_eval

TRAINER = Path(__file__).resolve().parent.parent / "target" / "release" / "trainer"


def main():
    parser = beat_eval.parser(__doc__)
    parser.add_argument("--trainer", type=Path, default=TRAINER, help="the trainer binary")
    parser.add_argument("--streaming", action="store_true", help="the plugin's causal tracker")
    args = parser.parse_args()
    if not args.trainer.is_file():
        sys.exit(f"error: {args.trainer} not found (cargo build --release -p cutscore-trainer)")

    def track(wav):
        command = [str(args.trainer), "analyze", str(wav), "--json"]
        found = json.loads(subprocess.run(command + ["--streaming"] * args.streaming,
                                          check=True, capture_output=True, text=True).stdout)
        return found["beats"], found["downbeats"], found["tempo_bpm"]

    version = subprocess.run([str(args.trainer), "--version"], capture_output=True, text=True)
    beat_eval.run(
        track,
        f"trainer analyze --json ({'streaming' if args.streaming else 'offline'} tracker)",
        {"trainer": version.stdout.strip(), "mir_eval": mir_eval.__version__,
         "numpy": np.__version__},
        args,
    )


if __name__ == "__main__":
    main()
