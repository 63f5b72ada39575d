"""librosa's beat tracker on songs with ground truth, scored with mir_eval.

For every `*.wav` in DIR with a `*.truth.json` beside it (as written by
`trainer synth --evaluation-set DIR`), runs `librosa.beat.beat_track` with its default settings
on the file loaded the default way (`librosa.load`: mono, resampled to 22050 Hz), and scores the
beats with mir_eval after discarding the first 5 s: F-measure (+-70 ms), CMLc, CMLt, AMLc, AMLt.
librosa has no downbeat tracker, so there is no downbeat score. Tempo accuracy is reported as
Acc1 (within 4 % of the truth's start tempo) and Acc2 (the same, allowing factors 2, 3, 1/2, 1/3).

Prints a table per song, the mean, and the mean per category (the song name up to its first
`_`, plus `meter3` for every 3/4 song); `--json OUT` writes the same numbers.

Usage: bench/.venv/bin/python bench/librosa_beats.py DIR [--json OUT]
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import librosa
import mir_eval
import numpy as np
import soundfile

METRICS = ("f_measure", "cml_c", "cml_t", "aml_c", "aml_t", "acc1", "acc2")


def tempo_accuracy(estimate, truth):
    close = lambda t: abs(estimate - t) <= 0.04 * t
    return float(close(truth)), float(any(close(truth * k) for k in (1, 2, 3, 0.5, 1 / 3)))


def score_song(wav, truth_path):
    truth = json.loads(truth_path.read_text())
    y, sr = librosa.load(wav)
    started = time.perf_counter()
    tempo, beats = librosa.beat.beat_track(y=y, sr=sr, units="time")
    seconds = time.perf_counter() - started
    tempo = float(np.atleast_1d(tempo)[0])
    reference = mir_eval.beat.trim_beats(np.asarray(truth["beats"], dtype=float))
    estimate = mir_eval.beat.trim_beats(np.asarray(beats, dtype=float))
    cml_c, cml_t, aml_c, aml_t = mir_eval.beat.continuity(reference, estimate)
    acc1, acc2 = tempo_accuracy(tempo, truth["bpm"])
    return {
        "name": wav.stem,
        "category": wav.stem.split("_")[0],
        "meter": truth["meter"],
        "bpm": truth["bpm"],
        "tempo": tempo,
        "f_measure": float(mir_eval.beat.f_measure(reference, estimate)),
        "cml_c": float(cml_c),
        "cml_t": float(cml_t),
        "aml_c": float(aml_c),
        "aml_t": float(aml_t),
        "acc1": acc1,
        "acc2": acc2,
        "audio_s": soundfile.info(str(wav)).duration,
        "beat_track_s": seconds,
    }


def mean(rows):
    return {m: float(np.mean([r[m] for r in rows])) for m in METRICS} | {"songs": len(rows)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="folder of *.wav + *.truth.json")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args()

    warnings.simplefilter("ignore")
    pairs = []
    for wav in sorted(args.dir.glob("*.wav")):
        truth = wav.with_suffix(".truth.json")
        if truth.is_file():
            pairs.append((wav, truth))
    if not pairs:
        sys.exit(f"error: no *.wav with a *.truth.json beside it in {args.dir}")

    rows = [score_song(wav, truth) for wav, truth in pairs]
    header = f"{'song':24s} {'bpm':>6s} {'tempo':>6s} {'F':>6s} {'CMLc':>6s} {'CMLt':>6s} {'AMLc':>6s} {'AMLt':>6s}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['name']:24s} {r['bpm']:6.1f} {r['tempo']:6.1f} {r['f_measure']:6.3f} "
            f"{r['cml_c']:6.3f} {r['cml_t']:6.3f} {r['aml_c']:6.3f} {r['aml_t']:6.3f}"
        )
    overall = mean(rows)
    categories = {}
    for category in sorted({r["category"] for r in rows}):
        categories[category] = mean([r for r in rows if r["category"] == category])
    meter3 = [r for r in rows if r["meter"] == 3]
    if meter3:
        categories["meter3"] = mean(meter3)

    def line(label, m):
        return (
            f"{label:24s} {'':6s} {'':6s} {m['f_measure']:6.3f} {m['cml_c']:6.3f} "
            f"{m['cml_t']:6.3f} {m['aml_c']:6.3f} {m['aml_t']:6.3f}  "
            f"Acc1 {m['acc1']:.2f} Acc2 {m['acc2']:.2f} ({m['songs']} songs)"
        )

    print("-" * len(header))
    print(line("mean", overall))
    for category, m in categories.items():
        print(line(f"  {category}", m))
    audio = sum(r["audio_s"] for r in rows)
    spent = sum(r["beat_track_s"] for r in rows)
    print(f"beat_track: {spent:.2f} s for {audio:.0f} s of audio ({audio / spent:.0f}x real time)")

    if args.json:
        result = {
            "tool": "librosa.beat.beat_track (defaults)",
            "versions": {
                "librosa": librosa.__version__,
                "mir_eval": mir_eval.__version__,
                "numpy": np.__version__,
            },
            "songs": rows,
            "mean": overall,
            "categories": categories,
            "speed_x_real_time": audio / spent,
        }
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
