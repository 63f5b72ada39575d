"""Builds a training set of composed music with exact beats from MIDI in Debian packages.

Every song is a MIDI file written by a person (game soundtracks) or arranged by MMA, the Musical
MIDI Accompaniment generator, whose standard library holds 118 styles of human-written
grooves (rock, funk, swing, latin, waltzes, ballads; 1,143 grooves with their fills and
variations). Its beats and bars are read from the file's own tempo map and time signatures, so
no beat tracker is involved, and it is rendered with a General MIDI SoundFont drawn per song. For every song this writes to OUT_DIR:

- `<slug>.wav`: stereo 44.1 kHz 16-bit, peak-normalised to -1 dBFS (rendered by FluidSynth);
- `<slug>.truth.json`: beats and bars in the schema of the Rust `SongTruth`
  (`synth/src/truth.rs`), from the first to the last note.

Sources (Debian packages; the audio is never committed):

- `freedoom`: the music lumps of freedoom1.wad and freedoom2.wad (rock and metal written for
  Doom engines, 8 of the 67 with tempo changes);
- `openttd-openmsx`: OpenMSX, the OpenTTD soundtrack (jazz, blues, ragtime, pop);
- `planetblupi-music-midi`: Planet Blupi's soundtrack (the first 4 minutes of each track);
- `mma`: `--mma N` songs, each a groove of MMA's standard library (changing to one of the same
  file's variations every 8 bars, as an arranger would) over a chord progression, at a tempo
  drawn from the groove's natural range (ballads and slow grooves 56-100 BPM; polkas,
  marches, fast swing and the like 120-200; the rest 76-160).

Kept are songs in 3/4 and 4/4 throughout (a quarter-note beat), with a starting tempo of 50-220
BPM; others (6/8, 2/2, odd meters) are skipped and listed, since which level is "the beat"
there is a matter of convention this set should not decide. The demo projects of Debian's
`lmms-common` are reserved for independent testing and are never used here.

Usage: bench/.venv/bin/python bench/midi_set.py OUT_DIR [--mma 150] [--seed 0]
(needs `apt-get install freedoom openttd-openmsx planetblupi-music-midi mma fluidsynth
fluid-soundfont-gm musescore-general-soundfont-small timgm6mb-soundfont`).
"""

import argparse
import json
import random
import re
import struct
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mido
import numpy as np
import soundfile

SR = 44100
PEAK_DBFS = -1.0
MAX_SECONDS = 240.0  # Planet Blupi's tracks loop for 10-30 minutes: the first 4 are kept
DRUM_CHANNEL = 9
WADS = [Path("/usr/share/games/doom/freedoom1.wad"), Path("/usr/share/games/doom/freedoom2.wad")]
MIDI_FOLDERS = [
    ("openmsx", Path("/usr/share/games/openttd/baseset/openmsx")),
    ("blupi", Path("/usr/share/planetblupi/music")),
]
MMA_LIB = Path("/usr/share/mma/lib/stdlib")
SOUNDFONTS = [
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf3/MuseScore_General.sf3"),
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
]
PROGRESSIONS = [
    "C G Am F",
    "Am F C G",
    "C Am F G",
    "Dm7 G7 Cmaj7 Cmaj7",
    "E A B A",
    "Em C G D",
    "A D E D",
    "C C7 F Fm",
    "Gm Eb F Gm",
    "C F C G7",
    "Bb Bb Eb F7",
    "D Bm G A",
]


def wad_music(path):
    """(lump name, MIDI bytes) of every lump of a WAD that is a standard MIDI file."""
    data = path.read_bytes()
    count, table = struct.unpack_from("<ii", data, 4)
    for i in range(count):
        offset, size, raw = struct.unpack_from("<ii8s", data, table + 16 * i)
        if data[offset : offset + 4] == b"MThd":
            yield raw.rstrip(b"\0").decode("ascii").lower(), data[offset : offset + size]


def grooves_of(file):
    return re.findall(r"^\s*DefGroove\s+(\S+)", file.read_text(errors="replace"), re.M | re.I)


def natural_tempo(groove):
    """The BPM range a groove is played at: a ballad at 190 BPM or a polka at 60 would teach
    a metrical level no listener hears."""
    if re.search(r"ballad|slow|lullaby|hymn|nite|mellow|bolero|evans", groove):
        return 56, 100
    if re.search(r"fast|quick|polka|bluegrass|ska|charleston|zydeco|samba|march|twist|jive", groove):
        return 120, 200
    return 76, 160


def mma_song(rng, index, work):
    """Writes one MMA arrangement as MIDI into `work`; returns its path and the style's name."""
    files = [f for f in sorted(MMA_LIB.glob("*.mma")) if not f.stem.startswith(("metronome", "none"))]
    file = rng.choice(files)
    grooves = grooves_of(file) or [file.stem]
    main = [g for g in grooves if not re.search(r"(intro|end|fill)", g, re.I)] or grooves
    lines = [f"Tempo {rng.randint(*natural_tempo(file.stem))}"]
    progression = rng.choice(PROGRESSIONS).split()
    bars = rng.choice([24, 32, 40])
    for bar in range(bars):
        if bar % 8 == 0:
            lines.append(f"Groove {rng.choice(main) if bar else main[0]}")
        lines.append(f"{bar + 1} {progression[bar % len(progression)]}")
    source = work / f"mma{index:03}.mma"
    source.write_text("\n".join(lines) + "\n")
    out = work / f"mma{index:03}.mid"
    run = subprocess.run(["mma", "-f", str(out), str(source)], capture_output=True, text=True)
    if run.returncode != 0 or not out.exists():
        raise RuntimeError(f"mma failed on {file.stem}: {run.stdout[-300:]} {run.stderr[-300:]}")
    return out, file.stem


class Skip(Exception):
    pass


def truth_of(midi):
    """Beats and bars of a MIDI file from its tempo map and time signatures."""
    if midi.type == 2:
        raise Skip("type 2 MIDI")
    tpb = midi.ticks_per_beat
    events = []
    for track in midi.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            events.append((tick, msg))
    events.sort(key=lambda e: e[0])
    tempos = [(0, 500000)]
    signatures = [(0, 4, 4)]
    notes, drums, last = [], [], 0
    for tick, msg in events:
        if msg.type == "set_tempo":
            tempos.append((tick, msg.tempo))
        elif msg.type == "time_signature":
            signatures.append((tick, msg.numerator, msg.denominator))
        elif msg.type == "note_on" and msg.velocity > 0:
            notes.append(tick)
            if msg.channel == DRUM_CHANNEL:
                drums.append(tick)
        if msg.type in ("note_on", "note_off"):
            last = max(last, tick)
    if not notes:
        raise Skip("no notes")
    first, last_note = min(notes), max(notes)

    def seconds(tick):
        t, at, tempo = 0.0, 0, tempos[0][1]
        for change, value in tempos:
            if change > tick:
                break
            t += (change - at) * tempo / (1e6 * tpb)
            at, tempo = change, value
        return t + (tick - at) * tempo / (1e6 * tpb)

    def signature(tick):
        current = signatures[0]
        for s in signatures:
            if s[0] <= tick:
                current = s
        return current[1], current[2]

    beats, positions = [], []
    bar = 0
    while bar <= last:
        numerator, denominator = signature(bar)
        if denominator != 4 or numerator not in (3, 4):
            if bar + tpb * 4 * numerator // denominator > first:
                raise Skip(f"{numerator}/{denominator}")
        for k in range(numerator):
            tick = bar + k * tpb
            if first - tpb // 8 <= tick <= last_note:
                beats.append(tick)
                positions.append(k)
        bar += tpb * 4 * numerator // denominator
    if len(beats) < 16:
        raise Skip("fewer than 16 beats")
    times = [seconds(t) for t in beats]
    bpm = 60e6 / next((v for c, v in reversed(tempos) if c <= beats[0]), tempos[0][1])
    if not 50 <= bpm <= 220:
        raise Skip(f"{bpm:.0f} BPM")
    meters = [signature(t)[0] for t in beats]
    return {
        "beats": times,
        "downbeats": [t for t, p in zip(times, positions) if p == 0],
        "beat_in_bar": positions,
        "meter": max(set(meters), key=meters.count),
        "bpm": bpm,
        "sections": [],
        "drums_enter_s": seconds(min(drums)) if drums else None,
    }


def render(midi_path, soundfont, wav_path):
    """FluidSynth's offline render, peak-normalised; returns the duration in seconds."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as raw:
        subprocess.run(
            ["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", str(SR), "-F", raw.name,
             str(soundfont), str(midi_path)],
            check=True, capture_output=True,
        )
        audio, rate = soundfile.read(raw.name, dtype="float64", always_2d=True)
    assert rate == SR, rate
    audio = audio[: int(MAX_SECONDS * SR)]
    peak = np.max(np.abs(audio))
    if peak <= 0:
        raise Skip("silent render")
    audio *= 10 ** (PEAK_DBFS / 20) / peak
    soundfile.write(wav_path, np.round(audio * 32767).astype(np.int16), SR, subtype="PCM_16")
    return len(audio) / SR


def build(job):
    slug, midi_path, soundfont, out_dir = job
    try:
        truth = truth_of(mido.MidiFile(str(midi_path), clip=True))
    except Skip as why:
        return slug, f"skipped: {why}"
    except (OSError, ValueError, EOFError, KeyError) as error:
        return slug, f"skipped: unreadable ({error})"
    try:
        duration = render(midi_path, soundfont, out_dir / f"{slug}.wav")
    except Skip as why:
        return slug, f"skipped: {why}"
    keep = [i for i, t in enumerate(truth["beats"]) if t < duration - 0.1]
    truth["beats"] = [truth["beats"][i] for i in keep]
    truth["beat_in_bar"] = [truth["beat_in_bar"][i] for i in keep]
    truth["downbeats"] = [t for t in truth["downbeats"] if t < duration - 0.1]
    truth["duration_s"] = duration
    (out_dir / f"{slug}.truth.json").write_text(json.dumps(truth))
    return slug, (
        f"{truth['bpm']:5.1f} BPM {truth['meter']}/4 {len(truth['beats']):4} beats "
        f"{duration:6.1f} s {soundfont.stem}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--mma", type=int, default=150, help="MMA arrangements to make")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    fonts = [f for f in SOUNDFONTS if f.exists()]
    if not fonts:
        sys.exit("no SoundFont found; install fluid-soundfont-gm")
    with tempfile.TemporaryDirectory(prefix="midi_set.") as work:
        build_all(args, rng, fonts, Path(work))


def build_all(args, rng, fonts, work):
    """Writes every source's song; `work` holds the MIDI files made on the way."""
    sources = []
    for wad in WADS:
        if wad.exists():
            for name, data in wad_music(wad):
                path = work / f"{wad.stem}_{name}.mid"
                path.write_bytes(data)
                sources.append((f"{wad.stem}_{name}", path))
    for prefix, folder in MIDI_FOLDERS:
        for path in sorted(folder.glob("*.mid")):
            sources.append((f"{prefix}_{path.stem}", path))
    for i in range(args.mma):
        path, groove = mma_song(rng, i, work)
        sources.append((f"mma{i:03}_{groove}", path))
    jobs = [(slug, path, rng.choice(fonts), args.out_dir) for slug, path in sources]
    kept = 0
    with ThreadPoolExecutor(2) as pool:
        for slug, result in pool.map(build, jobs):
            kept += not result.startswith("skipped")
            print(f"{slug:40} {result}", flush=True)
    print(f"{kept} of {len(jobs)} songs written to {args.out_dir}")


if __name__ == "__main__":
    main()
