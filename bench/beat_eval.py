"""Scoring and tables shared by the bench/*_beats.py trackers (librosa, madmom, Cutscore).

A tracker is a function `track(wav) -> (beats, downbeats or None, tempo)` in seconds and BPM.
`run(track, tool, versions, parser(__doc__).parse_args())` finds every `*.wav` in DIR with a
`*.truth.json` beside it (the `SongTruth` schema: `trainer synth --evaluation-set`,
`bench/real_set.py`), runs the tracker on it (timed, decoding included) and scores it
with mir_eval after discarding the first 5 s (`mir_eval.beat.trim_beats`): beat F-measure
(+-70 ms), CMLc, CMLt, AMLc, AMLt; downbeat F (the beat F-measure on the trimmed downbeats);
`dev`, the median signed distance in ms from an estimated beat to the nearest reference beat
within 70 ms (positive: the tracker is late);
tempo Acc1 (within 4 % of the truth's start tempo) and Acc2 (the same, allowing factors 2, 3,
1/2, 1/3). It prints one row per song, the mean and the mean per category (the song name up to
its first `_`, plus `meter3` for every 3/4 song); `--json OUT` writes the same numbers.
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import mir_eval
import numpy as np
import soundfile

METRICS = ("f_measure", "cml_c", "cml_t", "aml_c", "aml_t", "downbeat_f", "dev_ms", "acc1",
           "acc2")


def tempo_accuracy(estimate, truth):
    close = lambda t: abs(estimate - t) <= 0.04 * t
    return float(close(truth)), float(any(close(truth * k) for k in (1, 2, 3, 0.5, 1 / 3)))


def deviation_ms(reference, estimate, window=0.07):
    """Median signed distance from each estimated beat to the nearest reference beat within the
    window, in ms; None when none is that close."""
    if len(reference) == 0 or len(estimate) == 0:
        return None
    nearest = reference[np.abs(reference[None, :] - estimate[:, None]).argmin(axis=1)]
    close = (estimate - nearest)[np.abs(estimate - nearest) <= window]
    return float(1000 * np.median(close)) if len(close) else None


def score(truth, beats, downbeats, tempo):
    """mir_eval's scores of one song; downbeat_f is None when the tracker has no downbeats."""
    trim = lambda times: mir_eval.beat.trim_beats(np.asarray(times, dtype=float))
    reference, estimate = trim(truth["beats"]), trim(beats)
    cml_c, cml_t, aml_c, aml_t = mir_eval.beat.continuity(reference, estimate)
    acc1, acc2 = tempo_accuracy(tempo, truth["bpm"])
    downbeat_f = None
    if downbeats is not None:
        downbeat_f = float(mir_eval.beat.f_measure(trim(truth["downbeats"]), trim(downbeats)))
    return {
        "f_measure": float(mir_eval.beat.f_measure(reference, estimate)),
        "cml_c": float(cml_c),
        "cml_t": float(cml_t),
        "aml_c": float(aml_c),
        "aml_t": float(aml_t),
        "downbeat_f": downbeat_f,
        "dev_ms": deviation_ms(reference, estimate),
        "acc1": acc1,
        "acc2": acc2,
    }


def mean(rows):
    out = {"songs": len(rows)}
    for m in METRICS:
        values = [r[m] for r in rows if r[m] is not None]
        out[m] = float(np.mean(values)) if values else None
    return out


def cell(value, digits=3):
    return f"{'-':>6s}" if value is None else f"{value:6.{digits}f}"


def cells(row):
    return " ".join(cell(row[m], 1 if m == "dev_ms" else 3) for m in METRICS[:7])


def parser(doc):
    """The command line every tracker script shares: DIR [--json OUT]."""
    out = argparse.ArgumentParser(description=doc.splitlines()[0])
    out.add_argument("dir", type=Path, help="folder of *.wav + *.truth.json")
    out.add_argument("--json", type=Path, help="write the results here as JSON")
    return out


def run(track, tool, versions, args):
    """Tracking, scoring, table and JSON for one tracker over args.dir."""
    warnings.simplefilter("ignore")
    pairs = [(w, w.with_suffix(".truth.json")) for w in sorted(args.dir.glob("*.wav"))]
    pairs = [(w, t) for w, t in pairs if t.is_file()]
    if not pairs:
        sys.exit(f"error: no *.wav with a *.truth.json beside it in {args.dir}")

    header = (f"{'song':32s} {'bpm':>6s} {'tempo':>6s} {'F':>6s} {'CMLc':>6s} {'CMLt':>6s} "
              f"{'AMLc':>6s} {'AMLt':>6s} {'dbF':>6s} {'dev':>6s}")
    print(header)
    print("-" * len(header))
    rows = []
    for wav, truth_path in pairs:
        truth = json.loads(truth_path.read_text())
        started = time.perf_counter()
        beats, downbeats, tempo = track(wav)
        seconds = time.perf_counter() - started
        row = {
            "name": wav.stem,
            "category": wav.stem.split("_")[0],
            "meter": truth["meter"],
            "bpm": truth["bpm"],
            "tempo": float(tempo),
            **score(truth, beats, downbeats, tempo),
            "audio_s": soundfile.info(str(wav)).duration,
            "tracker_s": seconds,
        }
        rows.append(row)
        print(f"{row['name']:32s} {row['bpm']:6.1f} {row['tempo']:6.1f} {cells(row)}", flush=True)

    overall = mean(rows)
    categories = {c: mean([r for r in rows if r["category"] == c])
                  for c in sorted({r["category"] for r in rows})}
    meter3 = [r for r in rows if r["meter"] == 3]
    if meter3:
        categories["meter3"] = mean(meter3)

    def line(label, m):
        return (f"{label:32s} {'':6s} {'':6s} {cells(m)}"
                f"  Acc1 {m['acc1']:.2f} Acc2 {m['acc2']:.2f} ({m['songs']} songs)")

    print("-" * len(header))
    print(line("mean", overall))
    for category, m in categories.items():
        print(line(f"  {category}", m))
    audio = sum(r["audio_s"] for r in rows)
    spent = sum(r["tracker_s"] for r in rows)
    print(f"{tool}: {spent:.2f} s for {audio:.0f} s of audio ({audio / spent:.0f}x real time)")

    if args.json:
        result = {
            "tool": tool,
            "versions": versions,
            "songs": rows,
            "mean": overall,
            "categories": categories,
            "speed_x_real_time": audio / spent,
        }
        args.json.write_text(json.dumps(result, indent=2))
