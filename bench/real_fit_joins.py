"""How many of the fit's joins land on true downbeats, on the real-music development set.

    bench/.venv/bin/python bench/real_fit_joins.py TRAINER [DIR] [--given-tempo] [--beat-model M]
        [--bar-line-at-truth] [--half-beat-at-truth]

Runs `TRAINER edit SONG --target T --json` on every `*.wav` of DIR (default
/work/data/realset, built by `real_set.py`) for targets of 50, 60, 70, 80 and 90 % of the
song's length, and counts the joins of each best edit whose cut and resume times both lie
within 70 ms of a true downbeat (the song's `*.truth.json`). The fit stands on the tracker's
bar lines, so this is what a user fitting a real song hears at the joins. `--given-tempo`
gives each song its true tempo (`--bpm`, the median interval of its true beats), as a user
who knows it would. `--beat-model M` tracks with the beat network in file M instead of the
one built into TRAINER (`trainer edit --beat-model`: a fold's model of a cross-validation,
with no build of its own). It also says where the other joins' ends lie: on a true beat that
is not a downbeat, or on no true beat at all, and how many joins remove a whole number of
true bars (each end on the same beat of the bar, whatever beat that is: the music's meter
runs on across the join). `--bar-line-at-truth` gives each song one bar line (`--bar-line`, the
first true downbeat from 5 s on), as a user who checks the first bar they hear and moves the
bar lines there would; where the grid has no beat there `trainer edit` refuses it, and the
song is fitted as heard (counted as "refused"). `--half-beat-at-truth` does the same, and where
the bar line is refused but the grid lies on the off-beats there (that downbeat within a quarter
of a gap of the middle of two found beats, by `trainer analyze`), the user first moves the beats
half a beat there (`--half-beat`, the editor's ½ beat) and then gives the bar line.
"""

import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

TOLERANCE_S = 0.07
FRACTIONS = (0.5, 0.6, 0.7, 0.8, 0.9)


def off_beat_at(trainer, wav, t, bpm=None, beat_model=None):
    """Whether the found grid lies on the off-beats at `t`: halfway between two of its beats,
    within a quarter of their gap."""
    tempo = ["--bpm", f"{bpm:.3f}"] if bpm else []
    network = ["--beat-model", beat_model] if beat_model else []
    result = subprocess.run(
        [trainer, "analyze", wav, "--json", *tempo, *network], capture_output=True, text=True
    )
    beats = np.array(json.loads(result.stdout)["beats"]) if result.returncode == 0 else []
    after = int(np.searchsorted(beats, t))
    if after == 0 or after >= len(beats):
        return False
    before, following = beats[after - 1], beats[after]
    return abs(t - 0.5 * (before + following)) <= 0.25 * (following - before)


def joins_of(trainer, wav, target_s, out, bpm=None, beat_model=None, bar_line=None, half_beat=None):
    """The joins of the best fit, or None where `--bar-line` was refused (no beat there)."""
    tempo = ["--bpm", f"{bpm:.3f}"] if bpm else []
    network = ["--beat-model", beat_model] if beat_model else []
    bars = ["--bar-line", f"{bar_line:.3f}"] if bar_line is not None else []
    half = ["--half-beat", f"{half_beat:.3f}"] if half_beat is not None else []
    result = subprocess.run(
        [trainer, "edit", wav, "--target", f"{target_s:.1f}", "--out", out, "--json", *tempo, *network, *bars, *half],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        if bars and "expected the time of a beat that starts a bar" in result.stderr:
            return None
        print(f"{os.path.basename(wav)} at {target_s:.1f} s failed: {result.stderr[-200:]}")
        return []
    return json.loads(result.stdout)["joins"]


def place(t, beats, downbeats):
    """Where time `t` lies on the truth: 'down', 'beat' or 'off', and its beat of the bar."""
    if len(beats) == 0:
        return "off", None
    i = int(np.argmin(np.abs(beats - t)))
    if abs(beats[i] - t) >= TOLERANCE_S:
        return "off", None
    bar = np.searchsorted(downbeats, beats[i] + TOLERANCE_S) - 1
    if bar < 0:
        return "beat", None
    in_bar = int(np.sum((beats > downbeats[bar] - TOLERANCE_S) & (beats < beats[i] - TOLERANCE_S)))
    return ("down" if in_bar == 0 else "beat"), in_bar


def main():
    args = sys.argv[1:]
    given = "--given-tempo" in args
    beat_model = None
    if "--beat-model" in args:
        at = args.index("--beat-model")
        beat_model = args[at + 1]
        del args[at : at + 2]
    half_at_truth = "--half-beat-at-truth" in args
    at_truth = "--bar-line-at-truth" in args or half_at_truth
    args = [a for a in args if a not in ("--given-tempo", "--bar-line-at-truth", "--half-beat-at-truth")]
    refused = moved_half = 0
    trainer = args[0]
    folder = args[1] if len(args) > 1 else "/work/data/realset"
    on = total = 0
    ends = {"down": 0, "beat": 0, "off": 0}
    whole_bars = 0
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "edit.wav")
        for wav in sorted(glob.glob(os.path.join(folder, "*.wav"))):
            truth = json.load(open(wav[:-4] + ".truth.json"))
            downbeats = np.array(truth["downbeats"])
            near = lambda t: np.min(np.abs(downbeats - t)) < TOLERANCE_S
            bpm = 60 / np.median(np.diff(truth["beats"])) if given else None
            bar_line = next((t for t in downbeats if t >= 5.0), None) if at_truth else None
            half_beat = None
            joins = []
            for f in FRACTIONS:
                target_s = truth["duration_s"] * f
                found = joins_of(trainer, wav, target_s, out, bpm, beat_model, bar_line, half_beat)
                if found is None and half_beat is None and half_at_truth:
                    if off_beat_at(trainer, wav, bar_line, bpm, beat_model):
                        half_beat = bar_line
                        moved_half += 1
                        found = joins_of(trainer, wav, target_s, out, bpm, beat_model, bar_line, half_beat)
                if found is None:
                    refused += 1
                    bar_line = None
                    found = joins_of(trainer, wav, target_s, out, bpm, beat_model, None, half_beat)
                joins += found
            hits = sum(near(j["from_s"]) and near(j["to_s"]) for j in joins)
            beats = np.array(truth["beats"])
            for j in joins:
                (a, pa), (b, pb) = (place(j[k], beats, downbeats) for k in ("from_s", "to_s"))
                ends[a] += 1
                ends[b] += 1
                whole_bars += pa is not None and pa == pb
            on, total = on + hits, total + len(joins)
            print(f"{os.path.basename(wav)[:-4]:32} {hits}/{len(joins)}")
    print(f"joins on true downbeats: {on} of {total} ({100 * on / max(total, 1):.0f} %)")
    if at_truth:
        print(f"bar line refused (no beat at the first true downbeat from 5 s) on {refused} songs")
    if half_at_truth:
        print(f"beats moved half a beat first (the grid on the off-beats there) on {moved_half} songs")
    print(
        f"join ends on a true downbeat {ends['down']}, on another true beat {ends['beat']}, "
        f"on no true beat {ends['off']}; joins removing whole true bars {whole_bars} of {total}"
    )


if __name__ == "__main__":
    main()
