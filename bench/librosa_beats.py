"""librosa's beat tracker on songs with ground truth, scored with mir_eval.

For every `*.wav` in DIR with a `*.truth.json` beside it (as written by
`trainer synth --evaluation-set DIR` or `bench/real_set.py`), runs `librosa.beat.beat_track`
with its default settings on the file loaded the default way (`librosa.load`: mono, resampled to
22050 Hz). Scoring, table and JSON are `beat_eval.py`'s: F-measure (+-70 ms), CMLc, CMLt, AMLc,
AMLt after discarding the first 5 s, tempo Acc1/Acc2 against the truth's start tempo. librosa
has no downbeat tracker, so its downbeat F is "-".

Usage: bench/.venv/bin/python bench/librosa_beats.py DIR [--json OUT]
"""

import librosa
import mir_eval
import numpy as np

import beat_eval


def track(wav):
    y, sr = librosa.load(wav)
    tempo, beats = librosa.beat.beat_track(y=y, sr=sr, units="time")
    return beats, None, float(np.atleast_1d(tempo)[0])


if __name__ == "__main__":
    beat_eval.run(
        track,
        "librosa.beat.beat_track (defaults)",
        {"librosa": librosa.__version__, "mir_eval": mir_eval.__version__,
         "numpy": np.__version__},
        beat_eval.parser(__doc__).parse_args(),
    )
