"""Builds a beat-tracking test set of songs made in LMMS, from the projects Debian's
`lmms-common` ships outside its reserved demos.

LMMS (Linux MultiMedia Studio) is the free DAW whose users are the closest to Cutscore's: its
projects are electronic productions built from its synthesisers, sample kits and effects, on
a grid fixed by the project's tempo and time signature. `lmms-common` installs a few short
projects as `projects/shorties` (five songs of 14-92 s by LMMS users) beside its demo
projects. **The demo projects (`projects/demos`) are reserved for the independent test of
Cutscore's analysis and are never rendered or read here**: the script refuses any project
below a `demos` folder, and the install below keeps them off the disk altogether (a copy of one
under another name would pass the script's check, so the disk rule is the one to rely on).

For every project this renders the song with LMMS's own command-line renderer (`lmms render`,
no display needed) and writes to OUT_DIR:

- `<slug>.wav`: the render, stereo 44.1 kHz 16-bit, peak -1 dBFS;
- `<slug>.truth.json`: beats and bars in the schema of the Rust `SongTruth`
  (`synth/src/truth.rs`), trimmed to where the music plays, as `real_set.py` does (a render has
  no count-in, so music heard within the first beat starts at 0).

Beat times come from the project, never from a beat tracker: the song starts on a bar line at
tick 0 and LMMS counts 48 ticks a quarter note, so beat k lies at k * 60 / BPM s with the
project's tempo, and bars every `timesig_numerator` beats (a project whose tempo or time
signature is automated or driven by a controller, whose tempo automation holds another tempo,
or whose time signature is not in quarter notes, is skipped: none of the shorties is). The
audio checks the grid as `tracker_set.py` checks module rows (`real_set.py`'s functions): the
attacks' median offset on the eighth-note grid over the first and second half of the song (a
wrong tempo shows as drift between them), the beat / "and" onset ratio and the onset strength
per bar position. They are printed and written to `OUT_DIR/quality.json`.

Install (Debian, as root): keep the reserved demos off the disk, then LMMS itself:

    echo 'path-exclude=/usr/share/lmms/projects/demos/*' \\
        > /etc/dpkg/dpkg.cfg.d/cutscore-reserved-lmms-demos
    apt-get install --no-install-recommends lmms

Usage: bench/.venv/bin/python bench/lmms_set.py OUT_DIR [--projects DIR]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import warnings
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import librosa
import numpy as np
import soundfile

from real_set import (ENV_SR, SR, attack_bias, attack_times, cues, eighths, envelope_peak,
                      grid_offset, music_span, onset_envelope, write_wav)

PROJECTS = Path("/usr/share/lmms/projects/shorties")
RESERVED = "demos"  # lmms-common's projects/demos: the independent test, never touched here


class Skip(Exception):
    pass


def refuse_reserved(path):
    """Exits if `path` (a project or a folder; links followed) lies in a `demos` folder."""
    if RESERVED in Path(path).resolve().parts:
        sys.exit(f"error: {path} lies in lmms-common's demo projects, reserved for the "
                 "independent test of Cutscore's analysis: never rendered or evaluated here")


def project_xml(path):
    """The project's XML: `.mmp` is plain, `.mmpz` is zlib-compressed behind a 4-byte length
    (Qt's `qCompress`)."""
    data = path.read_bytes()
    if path.suffix == ".mmpz":
        data = zlib.decompress(data[4:])
    return ET.fromstring(data)


def tempo_and_meter(root):
    """The project's tempo (BPM) and beats per bar; Skip unless both hold for the whole song."""
    head = root.find("head")
    fields = ("bpm", "timesig_numerator", "timesig_denominator")
    # LMMS 1.x saves an automated or controller-driven value as a child element of the head in
    # place of its attribute.
    if head is None or any(head.get(f) is None for f in fields) or len(head):
        raise Skip("tempo or time signature automated, driven by a controller, or missing")
    if head.get("timesig_denominator") != "4":
        raise Skip(f"time signature in {head.get('timesig_denominator')}ths")
    bpm = float(head.get("bpm"))
    for pattern in root.iter("automationpattern"):
        # Older projects keep the tempo's automation in the song's global track; it acts only
        # when connected to the tempo (an <object>).
        values = {float(p.get("value")) for p in pattern.findall("time")}
        if pattern.get("name") == "Tempo" and pattern.find("object") is not None and values - {bpm}:
            raise Skip("tempo automated")
    return bpm, int(head.get("timesig_numerator"))


def render(path, out_wav):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    command = ["lmms", "render", str(path), "--format", "wav", "--output", str(out_wav)]
    if os.geteuid() == 0:
        command.insert(1, "--allowroot")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0 or not out_wav.exists():
        raise Skip(f"lmms render failed ({done.returncode}): {done.stderr.strip()[-200:]}")


def slug_of(path):
    return re.sub(r"[^a-z0-9]+", "_", path.stem.lower()).strip("_")


def build_song(path, out_dir, bias):
    refuse_reserved(path)
    bpm, meter = tempo_and_meter(project_xml(path))
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "render.wav"
        render(path, raw)
        audio, rate = soundfile.read(raw, always_2d=True)
    if rate != SR:
        audio = librosa.resample(audio.T, orig_sr=rate, target_sr=SR).T
    peak = np.abs(audio).max()
    if peak == 0:
        raise Skip("silent render")
    mix = audio[:, :2] * 10 ** (-1 / 20) / peak
    duration = len(mix) / SR
    period = 60.0 / bpm
    beats = np.arange(0.0, duration, period)
    positions = np.arange(len(beats)) % meter

    mono = mix.mean(axis=1)
    attacks = attack_times(mono) - bias
    coarse = librosa.resample(mono, orig_sr=SR, target_sr=ENV_SR)
    env = onset_envelope(coarse)
    start, end = music_span(env)
    if start < period:  # the onset envelope misses an attack at the very start of the file
        start = 0.0
    keep = (beats >= max(0.0, start - 0.07)) & (beats <= min(end + 0.07, duration))
    beats, positions = beats[keep], positions[keep]
    if len(beats) < 16:
        raise Skip(f"{len(beats)} beats where the music plays")
    half = beats[len(beats) // 2]
    grid = eighths(beats, period)
    offsets = [grid_offset(a, grid) for a in (attacks[attacks < half], attacks[attacks >= half])]
    offset, used = grid_offset(attacks, grid)
    shift, _ = envelope_peak(env, beats, period)
    phase, bars = cues(coarse, env, beats, positions, meter, period, shift)

    slug = slug_of(path)
    write_wav(out_dir / f"{slug}.wav", mix)
    truth = {
        "beats": [round(float(t), 6) for t in beats],
        "downbeats": [round(float(t), 6) for t in beats[positions == 0]],
        "beat_in_bar": [int(p) for p in positions],
        "meter": meter,
        "bpm": bpm,
        "sections": [],
        "drums_enter_s": None,
        "duration_s": round(duration, 6),
    }
    (out_dir / f"{slug}.truth.json").write_text(json.dumps(truth))
    return {
        "song": slug,
        "file": str(path),
        "duration_s": duration,
        "bpm": bpm,
        "meter": meter,
        "annotated_s": [float(beats[0]), float(beats[-1])],
        "beats": len(beats),
        "offset_ms": 1000 * offset,
        "offset_ms_by_half": [1000 * o for o, _ in offsets],
        "attacks_used": used,
        "beat_over_and": phase,
        "by_bar_position": bars,
    }


def summary(q):
    phase = ", ".join(f"{name} {v:.2f}" for name, v in q["beat_over_and"].items())
    onset = "/".join(f"{v:.2f}" for v in q["by_bar_position"]["onset"])
    first, second = q["offset_ms_by_half"]
    return (f"{q['song']}: {q['bpm']:g} BPM {q['meter']}/4, {q['duration_s']:.0f} s, "
            f"{q['beats']} beats; offset {q['offset_ms']:+.1f} ms ({q['attacks_used']} attacks; "
            f"halves {first:+.1f} / {second:+.1f})\n"
            f"  on the beat / on the 'and': {phase}; onset by bar position {onset}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--projects", type=Path, default=PROJECTS,
                        help=f"folder of .mmp/.mmpz projects (default {PROJECTS})")
    args = parser.parse_args()
    refuse_reserved(args.projects)
    paths = sorted(p for p in args.projects.glob("*") if p.suffix in (".mmp", ".mmpz"))
    if not paths:
        sys.exit(f"error: no LMMS projects in {args.projects} (apt-get install lmms; see --help)")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", category=UserWarning)
    bias = attack_bias()
    songs, skipped = [], []
    for path in paths:
        try:
            q = build_song(path, args.out_dir, bias)
        except Skip as why:
            skipped.append({"file": str(path), "why": str(why)})
            print(f"skipped {path.name}: {why}")
            continue
        songs.append(q)
        print(summary(q))
    (args.out_dir / "quality.json").write_text(
        json.dumps({"attack_bias_ms": 1000 * bias, "songs": songs, "skipped": skipped}, indent=1))
    print(f"{len(songs)} songs in {args.out_dir}, {len(skipped)} skipped")


if __name__ == "__main__":
    main()
