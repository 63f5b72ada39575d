"""Which position in the bar each cue favours, on the true beats of a beat set.

    bench/.venv/bin/python bench/bar_phase_cues.py DIR

For every `*.wav` with a `*.truth.json` beside it (the real-music development set, or the
synthetic evaluation set of `trainer synth --evaluation-set`), prints per position in the bar
the mean of two cues over the song's true beats, and the position each cue favours (0 is the
true downbeat):

- chroma: the cosine distance between librosa's mean CQT chroma over a beat and over the beat
  before it (the chord change entering the beat);
- low: the largest low-band (< 150 Hz) STFT magnitude around the beat, over its song mean
  (the kick).

This is the measurement behind `analysis::bar_phase` (analysis/shipped/BEATS.md). No tracker is
involved.
"""

import glob
import json
import os
import sys

import librosa
import numpy as np

SR = 22050
HOP = 512


def cues(wav):
    truth = json.load(open(wav[:-4] + ".truth.json"))
    y, _ = librosa.load(wav, sr=SR, mono=True)
    chroma = librosa.feature.chroma_cqt(y=y, sr=SR, hop_length=HOP)
    spectrum = np.abs(librosa.stft(y, n_fft=2048, hop_length=HOP))
    low = spectrum[librosa.fft_frequencies(sr=SR, n_fft=2048) < 150].sum(0)
    beats = np.array(truth["beats"])
    in_bar = np.array(truth["beat_in_bar"])
    meter = int(truth.get("meter", 4))
    frames = np.clip(librosa.time_to_frames(beats, sr=SR, hop_length=HOP), 0, chroma.shape[1] - 1)
    segments = np.array(
        [chroma[:, frames[i] : max(frames[i + 1], frames[i] + 1)].mean(1) for i in range(len(frames) - 1)]
    )
    segments /= np.linalg.norm(segments, axis=1, keepdims=True) + 1e-9
    change = np.r_[0.0, 1.0 - (segments[1:] * segments[:-1]).sum(1)]
    kick = np.array([low[max(f - 1, 0) : f + 3].max() for f in frames[:-1]])
    kick /= kick.mean() + 1e-9
    position = in_bar[:-1] % meter
    return meter, [[cue[position == p].mean() for p in range(meter)] for cue in (change, kick)]


def main():
    folder = sys.argv[1]
    for wav in sorted(glob.glob(os.path.join(folder, "*.wav"))):
        meter, (change, kick) = cues(wav)
        row = lambda v: f"favours {int(np.argmax(v))} ({' '.join(f'{x:.3f}' for x in v)})"
        print(f"{os.path.basename(wav)[:-4]:32} {meter}/4  chroma {row(change)}  low {row(kick)}")


if __name__ == "__main__":
    main()
