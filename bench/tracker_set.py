"""Builds a beat-tracking evaluation set of electronic productions from tracker modules.

Debian's game packages ship their music as tracker modules (MOD, S3M, XM, IT): songs made in
ProTracker, Scream Tracker, FastTracker and Impulse Tracker with sampled instruments and
drums, mixed by their composers: electronic productions like the ones Cutscore's users
make. A module is a score played by a sample player, so its grid is exact: this script renders
every module once with libopenmpt (through ctypes; Debian's `libopenmpt0`) and records, while
rendering, the sample at which every pattern row starts. For every song it writes to OUT_DIR:

- `<slug>.wav`: the module rendered once (no loop), stereo 44.1 kHz 16-bit, peak -1 dBFS;
- `<slug>.truth.json`: beats and bars in the schema of the Rust `SongTruth`
  (`synth/src/truth.rs`), trimmed to where the music plays, as `real_set.py` does.

How rows become beats. A tracker's tempo field T counts beats of 24 ticks (a tick lasts
2.5 / T s) and its speed is ticks per row, so with the usual speed 6 a beat is 4 rows, which
is how trackers highlight their patterns. At other speeds a beat is the number of rows nearest
(in ratio) to 24 ticks that fills the song's patterns with whole 4-beat bars (else 3-beat
ones): speed 3 gives 8 rows, speed 4 gives 6 rows in patterns of 48 rows but 8 (32 ticks) in
patterns of 64, speed 2 gives 16 rows (32 ticks) in patterns of 64, the speed and pattern length being the song's
most common ones. A beat is every row whose index in its pattern is a multiple of that, a bar
every 4 beats (3 where the patterns hold whole 3-beat bars only), counted from each pattern's
first row: composers start patterns on bar lines, and a pattern cut short by a break starts the
next bar afresh, as the music does. Tempo changes, swing by alternating speeds and pattern
delays are in the row times, since the player is what measures them. Which level is the beat
stays a convention where it cannot be 24 ticks (speeds 1, 2, 4, 5, 7, 8, 9 in 64-row
patterns): AMLt, which accepts double and half, is the column to read there.

The audio checks the grid as `real_set.py` checks charts (its functions): the attacks' median
offset on the eighth-note grid (reported, not corrected), and where the tempo holds, the beat /
"and" onset ratio (the metrical phase) and the onset strength per bar position. They
are printed and written to `OUT_DIR/quality.json` for reading, not used to change the grid: the
set measures what a composer wrote, like the charts of the real set.

The first set is split in halves by package (bench/README.md): the shipped beat model trains on
T, E is held out. The second set (`--set second`, other packages) is held out whole. Modules
shorter than 30 s (jingles) and byte-identical copies are left out.

Usage: bench/.venv/bin/python bench/tracker_set.py OUT_DIR [--set first|second] [--packages ...]
"""

import argparse
import ctypes
import hashlib
import json
import re
import sys
import warnings
from pathlib import Path

import librosa
import numpy as np

from real_set import (ENV_SR, SR, attack_bias, attack_times, cues, eighths, envelope_peak,
                      grid_offset, music_span, onset_envelope, write_wav)

# Where Debian's packages put their modules (apt-get install ...; see bench/README.md).
PACKAGES = {
    "biniax2-data": "/usr/share/games/biniax2/music",
    "bb": "/usr/share/bb",
    "bomberclone-data": "/usr/share/games/bomberclone/music",
    "bugsquish": "/usr/share/games/bugsquish/music",
    "circuslinux-data": "/usr/share/games/circuslinux/data/music",
    "dodgindiamond2": "/usr/share/games/dodgindiamond2",
    "flobopuyo": "/usr/share/games/flobopuyo/sfx",
    "freedroid-data": "/usr/share/games/freedroid/sound",
    "gemdropx": "/usr/share/games/gemdropx/sounds",
    "gl-117-data": "/usr/share/games/gl-117/music",
    "heroes-sound-tracks": "/usr/share/games/heroes/mod",
    "madbomber-data": "/usr/share/games/madbomber/music",
    "njam-data": "/usr/share/games/njam/data",
    "open-invaders-data": "/usr/share/open-invaders",
    "pachi-data": "/usr/share/pachi/music",
    "pekka-kana-2-data": "/usr/share/games/pekka-kana-2/data/music",
    "penguin-command": "/usr/share/games/penguin-command/sound",
    "pingus-data": "/usr/share/games/pingus/data/music",
    "rafkill-data": "/usr/share/games/rafkill",
    "ri-li-data": "/usr/share/games/ri-li/Ri-li/Sounds",
    "rockdodger": "/usr/share/rockdodger",
    "solarwolf": "/usr/share/games/solarwolf/data/music",
    "tecnoballz-data": "/usr/share/games/tecnoballz/musics",
    "tuxmath-data": "/usr/share/tuxmath/sounds",
    "vodovod": "/usr/share/games/vodovod",
}

# A second set, found in session 38 (`apt-file search` for module files): other packages' music,
# built into its own folder with `--set second` and never mixed into the first set's T/E split.
SECOND_PACKAGES = {
    "ballz-data": "/usr/share/games/ballz",
    "black-box": "/usr/share/black-box/sound",
    "ceferino-data": "/usr/share/games/ceferino/music",
    "criticalmass-data": "/usr/share/games/criticalmass",
    "cuyo-data": "/usr/share/games/cuyo/sounds",
    "fb-music-high": "/usr/share/games/frozen-bubble/snd",
    "gltron": "/usr/share/games/gltron/music",
    "gweled": "/usr/share/sounds/gweled",
    "ironseed-data": "/usr/share/games/ironseed/sound",
    "monsterz-data": "/usr/share/games/monsterz/sound",
    "pathogen": "/usr/share/pathogen",
    "redeclipse-data": "/usr/share/games/redeclipse/data/sounds",
    "tomatoes-data": "/usr/share/tomatoes/music",
    "tuxtype-data": "/usr/share/tuxtype/sounds",
    "vectoroids": "/usr/share/games/vectoroids/music",
    "vor": "/usr/share/vor",
}
SETS = {"first": PACKAGES, "second": SECOND_PACKAGES}
EXTENSIONS = {".mod", ".s3m", ".xm", ".it"}
MIN_SECONDS = 30.0
CHUNK = 32  # frames rendered between row checks: row starts are known within 0.36 ms
TICKS_PER_BEAT = 24  # what a tracker's tempo field counts as a beat


# ---------------------------------------------------------------------------------------------
# libopenmpt


class Module:
    """One module loaded by libopenmpt, played once from the start."""

    lib = None

    @classmethod
    def load_library(cls):
        if cls.lib is None:
            try:
                lib = ctypes.CDLL("libopenmpt.so.0")
            except OSError:
                sys.exit("error: libopenmpt not found (apt-get install libopenmpt0)")
            p, i32 = ctypes.c_void_p, ctypes.c_int32
            lib.openmpt_module_create_from_memory2.restype = p
            lib.openmpt_module_create_from_memory2.argtypes = [
                ctypes.c_char_p, ctypes.c_size_t, p, p, p, p, ctypes.POINTER(ctypes.c_int), p, p]
            for name in ("get_current_speed", "get_current_row", "get_current_order",
                         "get_current_pattern"):
                f = getattr(lib, f"openmpt_module_{name}")
                f.restype, f.argtypes = i32, [p]
            lib.openmpt_module_set_repeat_count.argtypes = [p, i32]
            lib.openmpt_module_read_interleaved_float_stereo.restype = ctypes.c_size_t
            lib.openmpt_module_read_interleaved_float_stereo.argtypes = [
                p, i32, ctypes.c_size_t, ctypes.POINTER(ctypes.c_float)]
            lib.openmpt_module_get_pattern_num_rows.restype = i32
            lib.openmpt_module_get_pattern_num_rows.argtypes = [p, i32]
            lib.openmpt_module_get_metadata.restype = p
            lib.openmpt_module_get_metadata.argtypes = [p, ctypes.c_char_p]
            lib.openmpt_free_string.argtypes = [p]
            lib.openmpt_module_destroy.argtypes = [p]
            cls.lib = lib
        return cls.lib

    def __init__(self, data):
        lib = self.load_library()
        error = ctypes.c_int(0)
        self.handle = lib.openmpt_module_create_from_memory2(
            data, len(data), None, None, None, None, ctypes.byref(error), None, None)
        if not self.handle:
            raise Skip(f"libopenmpt could not load it (error {error.value})")
        lib.openmpt_module_set_repeat_count(self.handle, 0)

    def __del__(self):
        if getattr(self, "handle", None):
            self.lib.openmpt_module_destroy(self.handle)

    def metadata(self, key):
        text = self.lib.openmpt_module_get_metadata(self.handle, key.encode())
        value = ctypes.cast(text, ctypes.c_char_p).value.decode("latin-1")
        self.lib.openmpt_free_string(text)
        return value

    def render(self):
        """The whole song as (frames, 2) float32, and one record per row played: (first frame,
        row in pattern, rows in pattern, speed)."""
        lib, h = self.lib, self.handle
        buffer = (ctypes.c_float * (2 * CHUNK))()
        blocks, rows, frame, last = [], [], 0, None
        while True:
            got = lib.openmpt_module_read_interleaved_float_stereo(h, SR, CHUNK, buffer)
            if got == 0:
                break
            now = (lib.openmpt_module_get_current_order(h), lib.openmpt_module_get_current_row(h))
            if now != last:
                pattern = lib.openmpt_module_get_current_pattern(h)
                rows.append((frame + got // 2, now[1],
                             lib.openmpt_module_get_pattern_num_rows(h, pattern),
                             lib.openmpt_module_get_current_speed(h)))
                last = now
            blocks.append(np.frombuffer(buffer, dtype=np.float32, count=2 * got).copy())
            frame += got
        return np.concatenate(blocks).reshape(-1, 2), rows


# ---------------------------------------------------------------------------------------------
# The grid


class Skip(Exception):
    pass


def rows_per_beat(speed, pattern_rows):
    """Rows a beat: of the counts that fill the song's patterns with whole 3- or 4-beat bars,
    the one whose ticks are nearest (in ratio) to TICKS_PER_BEAT at this speed."""
    fits = [r for r in (2, 3, 4, 6, 8, 12, 16, 24)
            if pattern_rows % (4 * r) == 0 or pattern_rows % (3 * r) == 0]
    if not fits:
        raise Skip(f"patterns of {pattern_rows} rows hold no whole bars")
    return min(fits, key=lambda r: abs(np.log2(r * speed / TICKS_PER_BEAT)))


def grid_of(rows):
    """Beat times (s), their positions in the bar and the meter, from the rendered rows."""
    frames, row, length, speed = (np.array(c) for c in zip(*rows))
    common_speed = int(np.bincount(speed).argmax())
    lengths = np.bincount(length[row == 0]) if np.any(row == 0) else np.bincount(length)
    common_length = int(lengths.argmax())
    per_beat = rows_per_beat(common_speed, common_length)
    meter = 4 if (common_length // per_beat) % 4 == 0 else 3
    on_beat = row % per_beat == 0
    times = frames[on_beat] / SR
    positions = (row[on_beat] // per_beat) % meter
    keep = np.concatenate([[True], np.diff(times) > 0])  # a row replayed at once by a delay
    return times[keep], positions[keep], meter, common_speed, per_beat


# ---------------------------------------------------------------------------------------------


def slug_of(package, path):
    return re.sub(r"[^a-z0-9]+", "_", f"{package.split('-')[0]}_{path.stem}".lower()).strip("_")


def modules(folders):
    """(package, path) of every module the installed packages hold, byte-identical copies once.

    `folders` maps each package to where it keeps its modules."""
    seen, found, missing = set(), [], []
    for package, folder in folders.items():
        folder = Path(folder)
        if not folder.is_dir():
            missing.append(package)
            continue
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in EXTENSIONS and path.is_file():
                digest = hashlib.sha1(path.read_bytes()).hexdigest()
                if digest not in seen:
                    seen.add(digest)
                    found.append((package, path))
    if missing:
        sys.exit(f"error: not installed: {' '.join(missing)} (apt-get install them)")
    return found


def build_song(package, path, out_dir, bias):
    module = Module(path.read_bytes())
    audio, rows = module.render()
    duration = len(audio) / SR
    if duration < MIN_SECONDS:
        raise Skip(f"{duration:.1f} s, a jingle")
    beats, positions, meter, speed, per_beat = grid_of(rows)
    peak = np.abs(audio).max()
    if peak == 0:
        raise Skip("silent")
    mix = audio.astype(np.float64) * 10 ** (-1 / 20) / peak
    slug = slug_of(package, path)

    mono = mix.mean(axis=1)
    attacks = attack_times(mono) - bias
    coarse = librosa.resample(mono, orig_sr=SR, target_sr=ENV_SR)
    env = onset_envelope(coarse)
    start, end = music_span(env)
    keep = (beats >= max(0.0, start - 0.07)) & (beats <= min(end + 0.07, duration))
    beats, positions = beats[keep], positions[keep]
    if len(beats) < 32:
        raise Skip(f"{len(beats)} beats where the music plays")
    period = float(np.median(np.diff(beats)))
    offset, used = grid_offset(attacks, eighths(beats, period))
    phase, bars = {}, {}
    if np.ptp(np.diff(beats)) < 0.05 * period:  # the cues assume one tempo
        shift, _ = envelope_peak(env, beats, period)
        phase, bars = cues(coarse, env, beats, positions, meter, period, shift)

    write_wav(out_dir / f"{slug}.wav", mix)
    written = [round(float(t), 6) for t in beats]
    truth = {
        "beats": written,
        "downbeats": [round(float(t), 6) for t in beats[positions == 0]],
        "beat_in_bar": [int(p) for p in positions],
        "meter": meter,
        "bpm": round(float(60 / np.median(np.diff(written))), 6),
        "sections": [],
        "drums_enter_s": None,
        "duration_s": round(duration, 6),
    }
    assert np.all(np.diff(beats) > 0) and beats[0] >= 0 and beats[-1] <= duration
    (out_dir / f"{slug}.truth.json").write_text(json.dumps(truth))
    return {
        "song": slug,
        "package": package,
        "file": str(path),
        "format": module.metadata("type"),
        "title": module.metadata("title"),
        "duration_s": duration,
        "speed": speed,
        "rows_per_beat": per_beat,
        "bpm": truth["bpm"],
        "bpm_range": [float(60 / np.percentile(np.diff(beats), 95)),
                      float(60 / np.percentile(np.diff(beats), 5))],
        "meter": meter,
        "annotated_s": [float(beats[0]), float(beats[-1])],
        "beats": len(beats),
        "offset_ms": 1000 * offset,
        "attacks_used": used,
        "beat_over_and": phase,
        "by_bar_position": bars,
    }


def summary(q):
    phase = ", ".join(f"{name} {v:.2f}" for name, v in q["beat_over_and"].items()) or "-"
    onset = "/".join(f"{v:.2f}" for v in q["by_bar_position"].get("onset", [])) or "-"
    low, high = q["bpm_range"]
    return (f"{q['song']}: {q['format']} speed {q['speed']} ({q['rows_per_beat']} rows a beat), "
            f"{q['bpm']:.1f} BPM ({low:.0f}-{high:.0f}) {q['meter']}/4, {q['duration_s']:.0f} s, "
            f"{q['beats']} beats; offset {q['offset_ms']:+.1f} ms ({q['attacks_used']} attacks)\n"
            f"  on the beat / on the 'and': {phase}; onset by bar position {onset}"
            + ("" if q["beat_over_and"] else " (tempo changes: cues not measured)"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--set", choices=sorted(SETS), default="first",
                        help="which packages: the first set (session 22) or the second (session 38)")
    parser.add_argument("--packages", nargs="+", metavar="PACKAGE",
                        help="only these packages of the set (default: all of them)")
    args = parser.parse_args()
    folders = SETS[args.set]
    unknown = sorted(set(args.packages or []) - set(folders))
    if unknown:
        parser.error(f"not in the {args.set} set: {' '.join(unknown)}")
    if args.packages:
        folders = {p: folders[p] for p in sorted(args.packages)}
    warnings.simplefilter("ignore")

    args.out_dir.mkdir(parents=True, exist_ok=True)
    bias = attack_bias()
    print(f"attack times on a click track: {1000 * bias:+.1f} ms (subtracted)\n")
    report, skipped = [], []
    for package, path in modules(folders):
        try:
            report.append(build_song(package, path, args.out_dir, bias))
            print(summary(report[-1]), flush=True)
        except Skip as why:
            skipped.append({"file": str(path), "why": str(why)})
            print(f"skipped {path}: {why}", flush=True)
    total = sum(q["duration_s"] for q in report)
    print(f"\n{len(report)} songs, {total:.0f} s of audio, {sum(q['beats'] for q in report)} "
          f"beats, in {args.out_dir}; {len(skipped)} modules left out")
    (args.out_dir / "quality.json").write_text(json.dumps(
        {"attack_bias_ms": 1000 * bias, "songs": report, "skipped": skipped}, indent=2))


if __name__ == "__main__":
    main()
