"""Builds the real-music beat-tracking development set from the Frets on Fire song packs.

Debian's fretsonfire-songs-muldjord (CC BY-SA 3.0) and fretsonfire-songs-sectoid (MIT-style
licence) install eight songs, each as audio stems (`song.ogg`, `guitar.ogg`, maybe `rhythm.ogg`)
and a guitar chart (`notes.mid`) whose tempo map is the grid the song was made on. For every
song this writes to OUT_DIR:

- `<slug>.wav`: all stems summed, stereo 44.1 kHz 16-bit, peak-normalised to -1 dBFS;
- `<slug>.truth.json`: the beats and bars of the chart's tempo map and time signatures, in the
  schema of the Rust `SongTruth` (`synth/src/truth.rs`), corrected as the `DECISIONS`
  table below says and trimmed to the span where the song plays.

Beat times come from the chart, never from a beat tracker. The audio is only used to check them
and to find where the music starts and ends (its first and last clear onset: count-ins, silence
and ring-outs get no beats), with librosa's onset-strength envelope and a few band cues:

- offset: how late the notes start on the chart's eighth-note grid. Attacks are the strongest
  peaks of a fine onset envelope (1.5 ms frames), each moved back to the energy minimum before
  it, less the few ms this puts a click track's clicks early; the offset is the median distance
  from an attack to its nearest grid point. Measured over the song and per 8-bar span, where a
  span off the grid would show drift, a tempo error or a section the chart does not fit;
- beat phase and metrical level: per 8-bar span, whether the beat or the "and" (half a beat
  later) has the stronger onsets, or the pulse is weak; over the song, the ratio beat / "and"
  of four cues: onset strength, kick-band (< 150 Hz) onset strength, chroma change and the rise
  of cymbal-band (> 5 kHz) energy;
- bar phase: the same four cues per beat-in-bar position.

The decisions drawn from these checks are fixed in `DECISIONS` (so the set is reproducible);
the script re-measures everything, prints a per-song summary and warns where the measurement
no longer agrees with the table. It also writes `OUT_DIR/quality.json`.

Usage: bench/.venv/bin/python bench/real_set.py OUT_DIR [--songs DIR]
"""

import argparse
import configparser
import json
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import librosa
import mido
import numpy as np
import soundfile

SONGS = Path("/usr/share/games/fretsonfire/data/songs")
SR = 44100  # the stems' rate and the set's
PEAK_DBFS = -1.0
ENV_SR, ENV_HOP = 22050, 256  # onset envelope: 86 frames a second
ATTACK_HOP = 64  # attack times: 1.5 ms frames at SR
SPAN_TOLERANCE_S = 0.020  # an 8-bar span's attacks are "on the grid" within this


@dataclass(frozen=True)
class Decision:
    folder: str  # below SONGS
    offset_ms: float  # added to every chart time: how late the audio is on the chart grid
    first_downbeat: int = 0  # index of the first chart beat that is a downbeat (bar phase)
    why: str = ""


# Per-song decisions, from the checks this script prints (numbers: `real_set.py` output; chart
# beats and bar positions count from 0).
# Common to all eight: the chart's tempo is constant (one set_tempo, or three equal ones at tick
# 0), there is no `delay` in song.ini, the metre is 4/4 (Muldjord's charts say so, Sectoid's
# have no time signature, which MIDI reads as 4/4), and there is no drift: the attacks of every
# 8-bar span are within 10 ms of the annotation except in Armygeddon (a live band: -28 to +10
# ms) and in the first span of Chaos god (-14 ms) and of War of freedom (-32 ms). The offset is the measured one, rounded to
# the millisecond. The chart's metrical level and beat phase are kept for every song: the kick
# and the chord changes fall on the chart's beats rather than on its "and"s (beat / "and" > 1
# for both in seven songs; War of freedom's kick is the exception, its chords are not); where
# the "and" has the stronger onsets (in some spans of each Sectoid song) it is the snare and
# the cymbals, and it comes and goes with the sections. Nothing points to a metrical level
# other than the chart's: the "and"s are clearly weaker in the Muldjord songs (beat / "and"
# 1.4-1.7), and no song alternates strong and weak beats consistently enough to suggest half
# the tempo.
DECISIONS = {
    # Muldjord (a band, recorded to a 170-190 BPM click; charts at 480 ticks a beat): the notes
    # start within 4 ms of the chart's grid.
    "muldjord_armygeddon": Decision(
        "muldjord/armygeddon", -4, 0,
        "offset -4 ms; bar phase kept (onset, kick and cymbal strongest at bar position 0); "
        "three 8-bar spans (from ~0, 113 and 147 s) play 23-28 ms ahead of the grid (a live "
        "band), kept; the last ~12 s ring out and get no beats",
    ),
    "muldjord_chaos_god": Decision(
        "muldjord/chaos_god", 2, 0,
        "offset +2 ms; bar phase kept (kick 3.2 vs 1.2-2.1 and cymbal at bar position 0)",
    ),
    "muldjord_internal_degeneration": Decision(
        "muldjord/internal_degeneration", 3, 0,
        "offset +3 ms; bar phase kept (onset, kick and cymbal strongest at bar position 0); "
        "four spans of weak pulse (tremolo and blast sections), kept",
    ),
    "muldjord_mutilated_mime": Decision(
        "muldjord/mutilated_mime", 4, 1,
        "offset +4 ms; BAR PHASE FIXED: downbeats on chart beats 1, 5, 9, ... (not 0, 4, "
        "8): on the chart's bars, onset, kick, cymbal rise and chord change all peaked at "
        "position 1; the chart's first note is on beat 1, its 3+3+2 riff starts there and the "
        "music enters just before it (chart beat 0 is silent)",
    ),
    # Sectoid (tracker songs; charts at 96 ticks a beat): the notes start 27-42 ms after the
    # chart's grid, steadily (per 8-bar span within 10 ms of the song's offset but one).
    "sectoid_escape_from_chaosland": Decision(
        "sectoid/Escape from chaosland", 27, 0,
        "offset +27 ms; bar phase kept (kick and chord changes at bar position 0); 8 of 14 spans "
        "have stronger onsets on the 'and' (snare), the kick stays on the beat (1.9)",
    ),
    "sectoid_feelings": Decision(
        "sectoid/Feelings", 27, 0,
        "offset +27 ms; bar phase kept (kick 9.3 and chord change at bar position 0 far above "
        "the rest); 4 of 13 spans accent the 'and'",
    ),
    "sectoid_metal_madness": Decision(
        "sectoid/Metal madness", 39, 0,
        "offset +39 ms; phase kept but the least certain annotation of the set: over the song "
        "the 'and' has the stronger onsets (beat / 'and' 0.69) and most of the cymbal energy "
        "(0.36): a snare and hi-hat on every 'and'; the kick (1.40), the chord changes (1.14), "
        "the opening hit and the bar-level cues sit on the chart's beats",
    ),
    "sectoid_war_of_freedom": Decision(
        "sectoid/War of freedom", 42, 0,
        "offset +42 ms; bar phase kept (chord changes and kick at bar positions 0 and 2; onset "
        "and cymbal peak at 3: pushes into the bar); 5 of 12 spans accent the "
        "'and'; the intro's attacks (first 8 bars) are 32 ms earlier than the rest's",
    ),
}


def slug_of(folder):
    return re.sub(r"[^a-z0-9]+", "_", folder.lower()).strip("_")


# ---------------------------------------------------------------------------------------------
# Audio


def mix_stems(folder):
    """All `*.ogg` stems summed, peak-normalised to PEAK_DBFS; (frames, 2) float64."""
    stems = [s for s in sorted(folder.glob("*.ogg")) if s.stem != "preview"]
    signals = []
    for stem in stems:
        audio, rate = soundfile.read(stem, dtype="float64", always_2d=True)
        if rate != SR:
            sys.exit(f"error: {stem} is {rate} Hz, expected {SR}")
        if audio.shape[1] == 1:
            audio = np.repeat(audio, 2, axis=1)
        signals.append(audio[:, :2])
    mix = np.zeros((max(len(s) for s in signals), 2))
    for s in signals:
        mix[: len(s)] += s
    mix *= 10 ** (PEAK_DBFS / 20) / np.abs(mix).max()
    return mix, [s.name for s in stems]


def write_wav(path, mix):
    pcm = np.round(mix * 32767).astype(np.int16)  # peak -1 dBFS: never clips
    soundfile.write(path, pcm, SR, subtype="PCM_16")


# ---------------------------------------------------------------------------------------------
# The chart


def read_chart(folder):
    """Tempo map, time signatures and ticks per beat of `notes.mid`, and song.ini's delay."""
    midi = mido.MidiFile(folder / "notes.mid")
    tempos, signatures = {}, {}
    for track in midi.tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type == "set_tempo":
                tempos[tick] = message.tempo
            elif message.type == "time_signature":
                signatures[tick] = (message.numerator, message.denominator)
    tempos.setdefault(0, 500_000)  # MIDI's defaults: 120 BPM, 4/4
    signatures.setdefault(0, (4, 4))
    ini = configparser.ConfigParser(strict=False, interpolation=None)
    ini.read(folder / "song.ini", encoding="utf-8")
    # Frets on Fire plays chart time t at audio time t + delay (Song.getPosition subtracts it).
    delay_ms = ini.getfloat("song", "delay", fallback=0.0)
    return {
        "ticks_per_beat": midi.ticks_per_beat,
        "tempos": sorted(tempos.items()),
        "signatures": sorted(signatures.items()),
        "delay_s": delay_ms / 1000,
    }


def tick_seconds(chart, ticks):
    """Chart time of each tick, through the tempo map."""
    ticks = np.asarray(ticks, dtype=float)
    at = np.array([t for t, _ in chart["tempos"]], dtype=float)
    per_tick = np.array([us for _, us in chart["tempos"]]) / 1e6 / chart["ticks_per_beat"]
    start = np.concatenate([[0.0], np.cumsum(np.diff(at) * per_tick[:-1])])
    segment = np.searchsorted(at, ticks, side="right") - 1
    return start[segment] + (ticks - at[segment]) * per_tick[segment]


def chart_beats(chart, until_s):
    """Beat ticks and bar positions from tick 0 until chart time `until_s`.

    A beat is the time signature's denominator (a quarter note in 4/4, an eighth in 7/8), or a
    dotted quarter in 6/8, 9/8 and 12/8. Bars start at tick 0 and at every signature change."""
    signatures = chart["signatures"]
    ticks, positions = [], []
    tick, index = 0, 0
    while tick_seconds(chart, [tick])[0] <= until_s:
        while index + 1 < len(signatures) and signatures[index + 1][0] <= tick:
            index += 1
        numerator, denominator = signatures[index][1]
        step = chart["ticks_per_beat"] * 4 / denominator
        per_bar = numerator
        if denominator == 8 and numerator in (6, 9, 12):
            step, per_bar = step * 3, numerator // 3
        change = signatures[index + 1][0] if index + 1 < len(signatures) else np.inf
        for position in range(per_bar):
            if position > 0 and tick >= change:
                break  # a new signature starts a new bar
            ticks.append(tick)
            positions.append(position)
            tick += step
    return np.array(ticks), np.array(positions)


# ---------------------------------------------------------------------------------------------
# Checks against the audio


def onset_envelope(mono):
    """librosa's onset strength at ENV_SR / ENV_HOP, normalised to mean 1."""
    env = librosa.onset.onset_strength(y=mono, sr=ENV_SR, hop_length=ENV_HOP)
    return env / env.mean()


def at(env, times):
    """The envelope at times (linear interpolation; NaN outside it)."""
    return np.interp(np.asarray(times) * ENV_SR / ENV_HOP, np.arange(len(env)), env,
                     left=np.nan, right=np.nan)


def attack_times(mono):
    """Where the strong notes start (mono at SR): the peaks in the top 30 % of a fine onset
    envelope (1.5 ms frames), each moved back to the energy minimum before it."""
    env = librosa.onset.onset_strength(y=mono, sr=SR, hop_length=ATTACK_HOP, n_fft=1024)
    peaks = librosa.onset.onset_detect(onset_envelope=env, sr=SR, hop_length=ATTACK_HOP)
    peaks = peaks[env[peaks] >= np.percentile(env[peaks], 70)]
    rms = librosa.feature.rms(y=mono, frame_length=256, hop_length=ATTACK_HOP)[0]
    starts = librosa.onset.onset_backtrack(peaks, rms)
    return librosa.frames_to_time(starts, sr=SR, hop_length=ATTACK_HOP)


def grid_offset(attacks, grid, window=0.06):
    """How late the attacks are on the grid: the median distance from each attack to the
    nearest grid point, over the attacks within `window` of the estimate (three passes from 0),
    and how many those are."""
    estimate, near = 0.0, np.array([])
    for _ in range(3):
        i = np.clip(np.searchsorted(grid, attacks - estimate), 1, len(grid) - 1)
        nearest = np.where(np.abs(attacks - estimate - grid[i - 1])
                           < np.abs(attacks - estimate - grid[i]), grid[i - 1], grid[i])
        near = attacks - nearest
        near = near[np.abs(near - estimate) < window]
        if len(near) == 0:
            return np.nan, 0
        estimate = float(np.median(near))
    return estimate, len(near)


def attack_bias():
    """grid_offset of attack_times on a click track (how early they put an attack; ~-4 ms)."""
    rng = np.random.default_rng(0)
    y = 0.003 * rng.standard_normal(30 * SR)
    clicks = np.arange(1.0, 29.0, 0.4)
    n = SR // 5
    burst = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.03 * SR))
    for t in clicks:
        y[int(round(t * SR)) :][:n] += burst
    return grid_offset(attack_times(y), clicks)[0]


def envelope_peak(env, beats, period):
    """Where the coarse envelope peaks after the beats and "and"s (its lag plus any misfit),
    in [-period/4, period/4), and the mean envelope there."""
    shifts = np.arange(-0.25, 0.25, 1 / 96) * period
    grid = eighths(beats, period)
    means = np.array([np.nanmean(at(env, grid + s)) for s in shifts])
    return shifts[int(np.argmax(means))], float(means.max())


def music_span(env):
    """First and last clear onset: a peak of at least a fifth of the 90th percentile of all
    peaks. Beats before the music starts or after its last attack (a ring-out) are not kept."""
    peaks = librosa.onset.onset_detect(onset_envelope=env, sr=ENV_SR, hop_length=ENV_HOP)
    strong = peaks[env[peaks] >= 0.2 * np.percentile(env[peaks], 90)]
    return librosa.frames_to_time(strong[[0, -1]], sr=ENV_SR, hop_length=ENV_HOP)


def eighths(beats, period):
    """The beats and the points half a beat after them, in order."""
    return np.sort(np.concatenate([beats, beats + period / 2]))


def span_classes(env, attacks, beats, period, peak):
    """Per 8-bar span (32 beats): the attacks' offset in ms when it is more than SPAN_TOLERANCE_S
    off the annotation (drift, a wrong tempo, a section the chart does not fit); else "weak"
    when the pulse is faint (the envelope on the beats and "and"s averages under 1.25 times its
    mean); else "on" or "and": which of the beat and the "and" has the stronger onsets. Also
    returns the spans' offsets in ms."""
    out, offsets = [], []
    for start in range(0, len(beats) - 31, 32):
        span = beats[start : start + 32]
        inside = attacks[(attacks > span[0] - period / 2) & (attacks < span[-1] + period / 2)]
        offset, _ = grid_offset(inside, eighths(span, period)) if len(inside) else (np.nan, 0)
        on, half = np.nanmean(at(env, span + peak)), np.nanmean(at(env, span + peak + period / 2))
        offsets.append(round(1000 * offset, 1))
        if abs(offset) > SPAN_TOLERANCE_S:
            out.append(f"{1000 * offset:+.0f}ms")
        elif (on + half) / 2 < 1.25:
            out.append("weak")
        else:
            out.append("on" if on >= half else "and")
    return out, offsets


def cues(mono, env, beats, positions, meter, period, peak):
    """Four audio cues at every beat and every "and" (half a beat later): onset strength,
    low-band (< 150 Hz, kick) onset strength, chroma change into the eighth (from the eighth
    before), and the rise of high-band (> 5 kHz, cymbal) energy over the eighth before. Returns,
    per cue, its mean on the beats over its mean on the "and"s (the beat phase), and its mean
    per beat-in-bar position (the bar phase)."""
    points = eighths(beats, period)  # beats at even indices
    frames = librosa.time_to_frames(points, sr=ENV_SR, hop_length=ENV_HOP)
    power = np.abs(librosa.stft(mono, hop_length=ENV_HOP)) ** 2
    chroma = librosa.util.sync(librosa.feature.chroma_stft(S=power, sr=ENV_SR), frames)
    chroma = chroma[:, 1 : len(points)]  # column i: from point i to point i + 1
    chroma /= np.linalg.norm(chroma, axis=0, keepdims=True) + 1e-9
    change = np.concatenate([[0.0], 1 - np.sum(chroma[:, 1:] * chroma[:, :-1], axis=0), [0.0]])
    mel = librosa.feature.melspectrogram(S=power, sr=ENV_SR, n_mels=64)
    freqs = librosa.mel_frequencies(n_mels=64, fmax=ENV_SR / 2)
    low = librosa.onset.onset_strength(S=librosa.power_to_db(mel[freqs < 150]), sr=ENV_SR,
                                       hop_length=ENV_HOP)
    high = librosa.power_to_db(mel[freqs > 5000]).mean(axis=0)
    level = np.array([high[a:b].mean() if b > a else np.nan for a, b in zip(frames, frames[1:])])
    values = {
        "onset": at(env, points + peak),
        "low_onset": at(low / low.mean(), points + peak),
        "chord_change": change,
        "high_rise": np.concatenate([[0.0], np.maximum(0, np.diff(level)), [0.0]]),
    }
    phase = {name: float(np.nanmean(v[0::2]) / np.nanmean(v[1::2])) for name, v in values.items()}
    bars = {name: [float(np.nanmean(v[0::2][positions == k])) for k in range(meter)]
            for name, v in values.items()}
    return phase, bars


# ---------------------------------------------------------------------------------------------


def build_song(slug, decision, songs, out_dir, bias):
    folder = songs / decision.folder
    mix, stems = mix_stems(folder)
    write_wav(out_dir / f"{slug}.wav", mix)
    duration = len(mix) / SR
    attacks = attack_times(mix.mean(axis=1)) - bias
    mono = librosa.resample(mix.mean(axis=1), orig_sr=SR, target_sr=ENV_SR)
    env = onset_envelope(mono)

    chart = read_chart(folder)
    ticks, chart_positions = chart_beats(chart, duration)
    grid = tick_seconds(chart, ticks) + chart["delay_s"]
    tempo_us = [us for _, us in chart["tempos"]]
    period = np.median(np.diff(grid))

    # Offset of the attacks on the chart's eighth-note grid, measured where the music plays,
    # then applied as decided.
    start, end = music_span(env)
    measured, used = grid_offset(attacks, eighths(grid[grid <= end + 1], period))
    beats = grid + decision.offset_ms / 1000
    meter = int(chart_positions.max()) + 1
    positions = (chart_positions - decision.first_downbeat) % meter
    if decision.first_downbeat and len({p for _, (p, _) in chart["signatures"]}) > 1:
        sys.exit(f"error: {slug}: a bar-phase shift needs a constant time signature")

    # Keep the beats where the music plays: from its first clear onset (less a 70 ms window) to
    # its last, within the audio.
    keep = (beats >= max(0.0, start - 0.07)) & (beats <= min(end + 0.07, duration))
    beats, positions, kept_ticks = beats[keep], positions[keep], ticks[keep]
    truth = {
        "beats": [round(float(t), 6) for t in beats],
        "downbeats": [round(float(t), 6) for t in beats[positions == 0]],
        "beat_in_bar": [int(p) for p in positions],
        "meter": meter,
        "bpm": round(60e6 / tempo_us[np.searchsorted([t for t, _ in chart["tempos"]],
                                                     kept_ticks[0], side="right") - 1], 6),
        "sections": [],
        "drums_enter_s": None,
        "duration_s": round(duration, 6),
    }
    assert np.all(np.diff(beats) > 0) and beats[0] >= 0 and beats[-1] <= duration
    assert all(0 <= p < meter for p in truth["beat_in_bar"])
    (out_dir / f"{slug}.truth.json").write_text(json.dumps(truth))

    offset = decision.offset_ms / 1000
    peak, _ = envelope_peak(env, beats, period)
    spans, span_offsets = span_classes(env, attacks, beats, period, peak)
    phase, bars = cues(mono, env, beats, positions, meter, period, peak)
    return {
        "song": slug,
        "folder": decision.folder,
        "stems": stems,
        "duration_s": duration,
        "bpm": truth["bpm"],
        "tempo_changes": len(set(tempo_us)) - 1,
        "meter": meter,
        "chart_delay_ms": chart["delay_s"] * 1000,
        "music_s": [float(start), float(end)],
        "annotated_s": [float(beats[0]), float(beats[-1])],
        "beats": len(beats),
        "offset_ms_table": decision.offset_ms,
        "offset_ms_measured": 1000 * measured,
        "attacks_used": used,
        "spans": spans,
        "span_offsets_ms": span_offsets,
        "beat_over_and": phase,
        "by_bar_position": bars,
        "first_downbeat": decision.first_downbeat,
        "decision": decision.why,
        "warnings": (
            [f"measured offset {1000 * measured:+.0f} ms vs table {decision.offset_ms:+.0f} ms"]
            if abs(measured - offset) > 0.005 else []
        ),
    }


def summary(q):
    counts = {c: q["spans"].count(c) for c in ("on", "and", "weak")}
    other = [c for c in q["spans"] if c not in counts]
    phase = ", ".join(f"{name} {v:.2f}" for name, v in q["beat_over_and"].items())
    bars = ", ".join(f"{name} {'/'.join(f'{v:.2f}' for v in values)}"
                     for name, values in q["by_bar_position"].items())
    lines = [
        f"{q['song']}: {q['bpm']:.1f} BPM {q['meter']}/4, {q['duration_s']:.1f} s, beats "
        f"{q['annotated_s'][0]:.2f}-{q['annotated_s'][1]:.2f} s ({q['beats']})",
        f"  offset: table {q['offset_ms_table']:+.0f} ms, measured {q['offset_ms_measured']:+.1f} ms"
        f" ({q['attacks_used']} attacks);"
        f" 8-bar spans: {counts['on']} stronger on the beat, {counts['and']} on the 'and', "
        f"{counts['weak']} weak pulse, {len(other)} off the grid" + (f" by {' '.join(other)}" if other else ""),
        f"  on the beat / on the 'and': {phase}",
        f"  by bar position (0 = annotated downbeat): {bars}",
        f"  decision: {q['decision']}",
    ]
    lines += [f"  WARNING: {w}" for w in q["warnings"]]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--songs", type=Path, default=SONGS, help="Frets on Fire songs folder")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    missing = [d.folder for d in DECISIONS.values() if not (args.songs / d.folder).is_dir()]
    if missing:
        sys.exit(f"error: not found under {args.songs}: {', '.join(missing)} (apt-get install "
                 "fretsonfire-songs-muldjord fretsonfire-songs-sectoid)")
    extra = sorted(
        slug_of(f"{p.parent.parent.name}/{p.parent.name}") for p in args.songs.glob("*/*/notes.mid")
        if slug_of(f"{p.parent.parent.name}/{p.parent.name}") not in DECISIONS
    )
    if extra:
        print(f"note: songs without a decision, left out: {', '.join(extra)}")

    args.out_dir.mkdir(parents=True, exist_ok=True)
    bias = attack_bias()
    print(f"attack times on a click track: {1000 * bias:+.1f} ms (subtracted)\n")
    report = []
    for slug, decision in DECISIONS.items():
        assert slug == slug_of(decision.folder), slug
        report.append(build_song(slug, decision, args.songs, args.out_dir, bias))
        print(summary(report[-1]), flush=True)
    total = sum(q["duration_s"] for q in report)
    print(f"\n{len(report)} songs, {total:.0f} s of audio, {sum(q['beats'] for q in report)} "
          f"beats, in {args.out_dir}")
    (args.out_dir / "quality.json").write_text(
        json.dumps({"attack_bias_ms": 1000 * bias, "songs": report}, indent=2))


if __name__ == "__main__":
    main()
