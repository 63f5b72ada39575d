"""Writes LMMS projects of generated songs with exact beats: electronic styles voiced by LMMS's
own synthesisers, presets and drum samples, for `lmms_set.py --projects` to render.

The songs made in LMMS that Debian ships are five (`lmms_set.py`), too few to train on. This
composes more in the styles LMMS users make (house, techno, drum and bass, hip-hop, trap,
reggae's one drop, reggaeton's dembow, pop-rock, chiptune, breakbeat, downtempo, and 3/4
waltzes), each at its usual tempo, with the quarter note as the beat as an LMMS user sets it,
and writes them as projects: drums from LMMS's sample kits (`samples/drums`, the drumsynth
kits), bass, chords, arpeggios and leads from the native synthesisers' presets
(TripleOscillator, LB302, Organic, BitInvader, Monstro, Watsyn, SID, OpulenZ). Each song has
sections of 4 or 8 bars whose textures change (intros with or without drums, drumless breaks,
drops, fills), so
what a beat tracker hears changes as it does in a production. Only LMMS's installed presets and
samples are read; the reserved demo projects are not (`lmms_set.py`'s docstring).

A song is a seed: `lg_<seed>_<style>` is the same project every time. `lmms_set.py` renders the
projects and takes the truth from their tempo, as it does for the shorties.

Usage: bench/.venv/bin/python bench/lmms_songs.py PROJECTS_DIR --count N [--first-seed S]
       bench/.venv/bin/python bench/lmms_set.py RENDER_DIR --projects PROJECTS_DIR
"""

import argparse
import random
import xml.etree.ElementTree as ET
from pathlib import Path

LMMS = Path("/usr/share/lmms")
TICKS_PER_STEP = 12  # a sixteenth note: LMMS counts 48 ticks a quarter
BUDGET_SECONDS = 100.0  # sections are planned within this; the outro comes on top

# Drum patterns, one character per sixteenth ('x' accent, 'o' soft, '.' none), bar by bar.
# 4/4 bars have 16 steps, 3/4 bars 12.
STYLES = {
    "house": dict(bpm=(118, 130), kick=["x...x...x...x..."], snare=["....x.......x..."],
                  hat=["..x...x...x...x.", "oxoxoxoxoxoxoxox"], bass="offbeat", chords="stabs"),
    "techno": dict(bpm=(124, 140), kick=["x...x...x...x..."], snare=["................", "....o.......o..."],
                   hat=["..x...x...x...x.", "ooxoooxoooxoooxo"], bass="rolling", chords="pad"),
    "dnb": dict(bpm=(160, 178), kick=["x.........x.....", "x.x.......x....."], snare=["....x.......x...", "....x.......x..o"],
                hat=["x.x.x.x.x.x.x.x.", "xoxoxoxoxoxoxoxo"], bass="long", chords="pad"),
    "hiphop": dict(bpm=(80, 100), kick=["x......x..x.....", "x.....x...x..x.."], snare=["....x.......x..."],
                   hat=["x.x.x.x.x.x.x.x."], bass="kick", chords="keys", swing=(0, 5)),
    "trap": dict(bpm=(130, 150), kick=["x......x..x.....", "x.....x.......x."], snare=["........x......."],
                 hat=["xoxoxoxoxoxoxoxo", "x.x.x.x.xoxox.x."], bass="kick", chords="pad"),
    "reggae": dict(bpm=(66, 90), kick=["........x......."], snare=["........x......."],
                   hat=["x.x.x.x.x.x.x.x.", "x.o.x.o.x.o.x.o."], bass="reggae", chords="skank", swing=(0, 3)),
    "dembow": dict(bpm=(88, 100), kick=["x...x...x...x..."], snare=["...x..x....x..x."],
                   hat=["x.x.x.x.x.x.x.x."], bass="kick", chords="pad"),
    "poprock": dict(bpm=(90, 150), kick=["x.......x.x.....", "x.......x......."], snare=["....x.......x..."],
                    hat=["x.x.x.x.x.x.x.x."], bass="eighths", chords="pad", swing=(0, 2)),
    "chiptune": dict(bpm=(120, 170), kick=["x.......x......."], snare=["....x.......x..."],
                     hat=["xoxoxoxoxoxoxoxo"], bass="eighths", chords="arp"),
    "breakbeat": dict(bpm=(110, 135), kick=["x.....x...x.....", "x.x.......x..x.."], snare=["....x.......x...", "....x..o....x..."],
                      hat=["xoxoxoxoxoxoxoxo"], bass="kick", chords="stabs"),
    "downtempo": dict(bpm=(70, 105), kick=["x.......x......."], snare=["....x.......x..."],
                      hat=["x.x.x.x.x.x.x.x.", "........x......."], bass="long", chords="arp"),
    "waltz": dict(bpm=(90, 180), meter=3, kick=["x..........."], snare=["....x...x...", "....o...o..."],
                  hat=["x...x...x...", "x.x.x.x.x.x."], bass="waltz", chords="waltz"),
}

# Bass and chord rhythms written for 16-step bars only.
FOUR_FOUR_ONLY = {"offbeat", "rolling", "kick", "reggae", "stabs", "skank", "keys"}
for _name, _style in STYLES.items():
    _steps = 4 * _style.get("meter", 4)
    assert all(len(p) == _steps for part in ("kick", "snare", "hat") for p in _style[part]), _name
    assert _steps == 16 or not {_style["bass"], _style["chords"]} & FOUR_FOUR_ONLY, _name

DRUM_SAMPLES = {
    "kick": [f"drums/kick0{i}.ogg" for i in range(1, 5)]
    + [f"drums/bassdrum0{i}.ogg" for i in range(1, 5)]
    + ["drums/kick_hiphop01.ogg", "drums/kick_hard01.ogg", "drums/bassdrum_acoustic01.ogg",
       "drumsynth/tr808/Kick.ds", "drumsynth/tr909/Kick.ds", "drumsynth/cr8000/Kick.ds"],
    "snare": [f"drums/snare0{i}.ogg" for i in range(1, 8)]
    + [f"drums/clap0{i}.ogg" for i in range(1, 5)]
    + ["drums/snare_hiphop01.ogg", "drums/snare_electro01.ogg", "drums/snare_acoustic01.ogg",
       "drums/snare_rim01.ogg", "drumsynth/tr808/Snare.ds", "drumsynth/tr808/Handclap.ds"],
    "hat": [f"drums/hihat_closed0{i}.ogg" for i in range(1, 6)]
    + ["drums/shaker01.ogg", "drums/ride01.ogg", "drumsynth/tr808/Hat_c.ds",
       "drumsynth/tr909/Hat_c.ds"],
    "crash": ["drums/crash01.ogg", "drums/crash02.ogg", "drums/hihat_opened01.ogg"],
}
SYNTHS = ["TripleOscillator", "LB302", "Organic", "BitInvader", "Monstro", "Watsyn", "SID",
          "OpulenZ"]
NOT_MUSICAL = ("Drums_", "spacefx", "sequencer_64", "Engine", "Fireball", "Mega_weapon", "Chomp",
               "LFO-party", "AmazingBubbles", "DroneArp", "Whistle")
MAJOR, MINOR = [0, 2, 4, 5, 7, 9, 11], [0, 2, 3, 5, 7, 8, 10]
PROGRESSIONS = [[0, 4, 5, 3], [5, 3, 0, 4], [0, 3, 4, 3], [0, 5, 3, 4], [0, 0, 3, 4], [5, 5, 3, 4]]


def presets():
    found = [p for s in SYNTHS for p in sorted((LMMS / "presets" / s).glob("*.xpf"))
             if not p.name.startswith(NOT_MUSICAL) and readable(p)]
    bass = [p for p in found if any(k in p.stem.lower() for k in ("bass", "reece", "303", "acid"))]
    return bass, [p for p in found if p not in bass]


def readable(preset):
    """Whether the preset is in the format LMMS 1.x writes (two are older: LMMS 0.0.9's)."""
    return instrument_track(preset) is not None


def instrument_track(preset):
    """The preset's instrument track (`None` in a preset LMMS 1.x cannot read)."""
    return ET.parse(preset).getroot().find("instrumenttracksettings/instrumenttrack")


def sample_track(src):
    track = ET.Element("instrumenttrack", vol="100", pan="0", fxch="0", basenote="57", pitch="0",
                       pitchrange="1")
    instrument = ET.SubElement(track, "instrument", name="audiofileprocessor")
    ET.SubElement(instrument, "audiofileprocessor", src=src, amp="100", interp="1", reversed="0",
                  looped="0", sframe="0", lframe="0", eframe="1", stutter="0")
    return track


class Song:
    def __init__(self, seed, style_name):
        self.rng = random.Random(seed)
        self.style = STYLES[style_name]
        self.meter = self.style.get("meter", 4)
        self.steps = 4 * self.meter  # sixteenths a bar
        self.bpm = self.rng.randint(*self.style["bpm"])
        self.swing = self.rng.randint(*self.style.get("swing", (0, 0)))
        self.tonic = 36 + self.rng.randrange(12)  # MIDI, bass octave
        self.scale = self.rng.choice([MAJOR, MINOR])
        self.progression = self.rng.choice(PROGRESSIONS)
        self.sections = self.plan()
        self.tracks = {}  # name -> (instrumenttrack element, [notes])

    def plan(self):
        """Sections as (kind, bars): an intro, main parts, a break, a drop, an outro."""
        r = self.rng
        kinds = ["intro", "main", "main2", "break", "drop", "main", "outro"]
        if r.random() < 0.3:
            kinds.remove("main2")
        bar_s = 60.0 / self.bpm * self.meter
        sections, total = [], 0.0
        for kind in kinds:
            bars = 4 if kind in ("intro", "outro", "break") and r.random() < 0.5 else 8
            if total + bars * bar_s > BUDGET_SECONDS and kind != "outro":
                continue
            sections.append((kind, bars))
            total += bars * bar_s
        return sections

    def note(self, track, bar, step, length_steps, midi, velocity):
        tick = (bar * self.steps + step) * TICKS_PER_STEP
        if self.swing and step % 2 == 1:
            tick += self.swing
        length = max(1, length_steps * TICKS_PER_STEP)
        self.tracks[track][1].append((tick, length, midi - 12, velocity))  # LMMS's key: MIDI - 12

    def degree(self, d, octave=0):
        return self.tonic + 12 * (octave + d // 7) + self.scale[d % 7]

    def compose(self, bass_presets, other_presets):
        r = self.rng
        for part in ("kick", "snare", "hat", "crash"):
            self.tracks[part] = (sample_track(r.choice(DRUM_SAMPLES[part])), [])
        self.tracks["bass"] = (instrument_track(r.choice(bass_presets)), [])
        self.tracks["chords"] = (instrument_track(r.choice(other_presets)), [])
        self.tracks["lead"] = (instrument_track(r.choice(other_presets)), [])
        patterns = {p: r.choice(self.style[p]) for p in ("kick", "snare", "hat")}
        bar = 0
        for kind, bars in self.sections:
            drums = {"intro": r.random() < 0.6, "break": False}.get(kind, True)
            for b in range(bars):
                chord = self.progression[(bar + b) % 4]
                last = b == bars - 1
                if drums:
                    fill = last and kind != "outro" and r.random() < 0.5
                    self.drums(bar + b, patterns, fill=fill)
                elif kind == "intro" and r.random() < 0.5:
                    self.drums(bar + b, {"hat": patterns["hat"]}, fill=False)
                if b == 0 and kind in ("drop", "main2") and drums:
                    self.note("crash", bar + b, 0, 8, 57 + 12, 90)
                if kind != "intro" or r.random() < 0.5:
                    self.chords(bar + b, chord, kind)
                if kind not in ("break", "intro", "outro"):
                    self.bass(bar + b, chord, patterns["kick"])
                if kind in ("main2", "drop", "break"):
                    self.lead(bar + b)
            bar += bars
        return bar

    def drums(self, bar, patterns, fill):
        r = self.rng
        for part, pattern in patterns.items():
            for step, c in enumerate(pattern):
                if c == "." or (fill and step >= self.steps - 4 and part == "snare"):
                    continue
                base = 100 if c == "x" else 60
                self.note(part, bar, step, 1, 69, base + r.randint(-10, 10))
        if fill and "snare" in patterns:
            for step in range(self.steps - 4, self.steps):
                self.note("snare", bar, step, 1, 69, 60 + 10 * (step - self.steps + 4))

    def chords(self, bar, chord, kind):
        style = self.style["chords"]
        tones = [self.degree(chord + k, 2) for k in (0, 2, 4)]
        vel = 55 if kind in ("intro", "break") else 70
        if style == "pad" or kind == "break":
            onsets, length = [0], self.steps
        elif style == "stabs":
            onsets, length = [2, 6, 10, 14], 2
        elif style == "skank":
            onsets, length = [2, 6, 10, 14], 1
        elif style == "keys":
            onsets, length = [0, 8], 6
        elif style == "waltz":
            onsets, length = [4, 8], 3
        else:  # arp: sixteenths up the chord
            for step in range(self.steps):
                self.note("chords", bar, step, 1, tones[step % 3] + 12, vel)
            return
        for step in onsets:
            for tone in tones:
                self.note("chords", bar, step, length, tone, vel)

    def bass(self, bar, chord, kick):
        style = self.style["bass"]
        root = self.degree(chord)
        if style == "offbeat":
            onsets, length = [2, 6, 10, 14], 2
        elif style == "rolling":
            onsets, length = [s for s in range(16) if s % 4 != 0], 1
        elif style == "long":
            onsets, length = [0, 8], 8
        elif style == "kick":
            onsets, length = [s for s, c in enumerate(kick) if c != "."], 3
        elif style == "reggae":
            onsets, length = [0, 3, 6, 10, 12], 2
        elif style == "waltz":
            onsets, length = [0], 4
        else:  # eighths
            onsets, length = list(range(0, self.steps, 2)), 2
        for step in onsets:
            self.note("bass", bar, step, length, root, 90)

    def lead(self, bar):
        r = self.rng
        step = 0
        while step < self.steps:
            length = r.choice([2, 2, 4, 4, 6, 8])
            if r.random() < 0.75:
                pitch = self.degree(r.randrange(7, 15), 2)
                self.note("lead", bar, step, min(length, self.steps - step), pitch, 75)
            step += length

    def project(self, bars):
        root = ET.Element("lmms-project", type="song", version="1.0", creator="LMMS",
                          creatorversion="1.2.2")
        ET.SubElement(root, "head", bpm=str(self.bpm), timesig_numerator=str(self.meter),
                      timesig_denominator="4", mastervol="100", masterpitch="0")
        container = ET.SubElement(ET.SubElement(root, "song"), "trackcontainer", type="song")
        levels = {"kick": 80, "snare": 65, "hat": 40, "crash": 35, "bass": 60, "chords": 35,
                  "lead": 40}
        for name, (instrument, notes) in self.tracks.items():
            if not notes:
                continue
            track = ET.SubElement(container, "track", type="0", muted="0", solo="0", name=name)
            instrument.set("vol", str(int(levels[name] * self.rng.uniform(0.7, 1.2))))
            pan = self.rng.randint(-25, 25) if name not in ("kick", "bass") else 0
            instrument.set("pan", str(pan))
            track.append(instrument)
            pattern = ET.SubElement(track, "pattern", pos="0",
                                    len=str(bars * self.steps * TICKS_PER_STEP),
                                    steps=str(self.steps), type="1", name=name, muted="0",
                                    frozen="0")
            for tick, length, key, velocity in sorted(notes):
                ET.SubElement(pattern, "note", pos=str(tick), len=str(length), key=str(key),
                              vol=str(min(velocity, 127)), pan="0")
        return ET.ElementTree(root)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--first-seed", type=int, default=0)
    args = parser.parse_args()
    bass, other = presets()
    if not bass or not other:
        raise SystemExit(f"error: no LMMS presets under {LMMS / 'presets'} (apt-get install lmms)")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    names = sorted(STYLES)
    for seed in range(args.first_seed, args.first_seed + args.count):
        style = names[seed % len(names)]
        song = Song(seed, style)
        bars = song.compose(bass, other)
        path = args.out_dir / f"lg_{seed:04d}_{style}.mmp"
        song.project(bars).write(path, xml_declaration=True, encoding="utf-8")
        print(f"{path.name}: {song.bpm} BPM {song.meter}/4, {bars} bars")


if __name__ == "__main__":
    main()
