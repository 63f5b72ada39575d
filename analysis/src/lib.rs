//! `cutscore-analysis`: beat analysis: decoding, the front end, the streaming and offline beat
//! trackers, and the 121 beat features.
//!
//! - [`decode`]: WAV/AIFF/FLAC/MP3/Ogg Vorbis to mono (symphonia).
//! - [`resample`]: any rate to [`ANALYSIS_RATE`] (rubato).
//! - [`frontend`]: STFT, log-mel, MFCC, chroma, spectral shape, onset strength per frame.
//! - [`beat_model`]: the learned beat and downbeat activation network (trained by
//!   `trainer beats train`, shipped in the library), whole tracks or frame by frame.
//! - [`bar_decoder`]: offline decoding of activations into tempo, meter, beats and downbeats
//!   (Viterbi over a tempo × bar-position state space).
//!   A grid at twice the tempo is then halved ([`tempo_octave`]).
//! - [`half_tempo`]: a second reading leaning towards slower tempi, which offers the user half
//!   the grid's tempo where it may be at the song's eighth notes.
//! - [`bar_filter`]: the same state space filtered forward, for the streaming tracker.
//! - [`bar_phase`]: where the bars start, decided over the beats from the network's downbeats
//!   and the chord change at each beat (after the whole track offline, where a song's start
//!   counts as a bar line when the beats run through it; over everything heard so far, beat by
//!   beat, in the plugin's capture).
//! - [`given_bar_line`]: the bars counted from a beat the user names (the editor's bar-line
//!   buttons, `trainer --bar-line`).
//! - [`beat_stretch`]: the stretch of beats around a beat that keeps one tempo, which the user's
//!   bar lines and half-beat moves reach over.
//! - [`half_beat`]: the beats moved half a beat where the user hears them on the off-beats (the
//!   editor's ½ beat, `trainer --half-beat`).
//! - [`hypermeter`]: which bar lines cuts start and resume on, where every other one is weak.
//! - [`streaming`]: the causal tracker for the plugin (prepare/push/poll, no allocation).
//! - [`beat_features`]: the 121 features per beat, shared by both paths.
//!
//! [`analyze_file`] and [`analyze_samples`] run the offline path (their `_at` forms at a tempo
//! the user gives, [`TempoHint`]; the plugin's settle at the host's, [`TempoSource::Host`]);
//! [`StreamingAnalyzer`] the streaming one. Given the same beat grid both produce the same features, because both feed
//! the same [`frontend::FrameAnalyzer`] and the same [`beat_features`] functions.

pub mod bar_decoder;
pub mod bar_filter;
pub mod bar_phase;
pub mod beat_features;
pub mod beat_model;
pub mod beat_stretch;
pub mod decode;
pub mod frontend;
pub mod given_bar_line;
pub mod half_beat;
pub mod half_tempo;
pub mod hypermeter;
pub mod metrics;
pub mod resample;
pub mod streaming;
pub mod tempo_octave;
#[cfg(test)]
pub(crate) mod test_signals;

use std::path::Path;

pub use streaming::{StreamingAnalyzer, StreamingBeat};

use cutscore_core::features::FeatureMatrix;
use cutscore_core::grid::BeatGrid;
use decode::{DecodeError, decode_with};
use frontend::{Frame, FrameAnalyzer};
use resample::ResampleError;

/// Sample rate of all analysis, in Hz. 22.05 kHz keeps everything up to 11 kHz (all the
/// spectral shape the features describe), halves the work of 44.1 kHz sources exactly, and is
/// the rate librosa analyses at by default.
pub const ANALYSIS_RATE: u32 = 22_050;
/// STFT frame length in analysis samples (46 ms).
pub const FFT_SIZE: usize = 1024;
/// STFT hop in analysis samples (23.2 ms, 43.07 frames per second).
pub const HOP: usize = 512;

/// Why a track could not be analysed.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Resample(#[from] ResampleError),
    #[error("sample rate {actual} Hz is not supported; expected {min} to {max} Hz")]
    SampleRate { min: u32, max: u32, actual: u32 },
    #[error("a tempo of {actual} BPM cannot be tracked; expected {min} to {max} BPM")]
    TempoHint { min: f64, max: f64, actual: f64 },
}

/// A tempo the user or the host gives. The grid is decoded within [`bar_decoder::HINT_SPAN`]
/// of it and at its level (never halved), so a song the tracker would count twice as fast (its
/// eighth notes) or half as fast is counted as the user counts it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TempoHint(f64);

impl TempoHint {
    /// A hint of `bpm` beats a minute, within [`bar_decoder::HINT_BPM`].
    pub fn new(bpm: f64) -> Result<Self, AnalysisError> {
        let range = bar_decoder::HINT_BPM;
        if range.contains(&bpm) {
            Ok(Self(bpm))
        } else {
            Err(AnalysisError::TempoHint {
                min: *range.start(),
                max: *range.end(),
                actual: bpm,
            })
        }
    }

    pub fn bpm(self) -> f64 {
        self.0
    }
}

/// Where the tempo a grid is decoded at comes from.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum TempoSource {
    /// What the tracker hears, over its whole range of tempi.
    #[default]
    Heard,
    /// A tempo the user gives: the grid is decoded at it.
    Given(TempoHint),
    /// The host's tempo, BPM, its bar line the anchor. Only a host at the heard tempo, its
    /// double or its half ([`bar_phase::host_tempo_agrees`]) plays the music on its own grid:
    /// then the grid is decoded at the host's tempo where the beats so decoded run through the
    /// anchor ([`bar_phase::anchored_position`]; at the project's tempo, a grid on the
    /// off-beats is not the project's), else as heard, and the anchor places the bars; a host
    /// at another tempo says nothing, and its anchor is not used.
    Host(f64),
}

impl From<Option<TempoHint>> for TempoSource {
    fn from(hint: Option<TempoHint>) -> Self {
        hint.map_or(Self::Heard, Self::Given)
    }
}

/// A grid decoded for [`analyze_from`].
struct DecodedAt {
    decoded: bar_decoder::Decoded,
    /// The anchor the bars are placed by (the one asked for, unless a host's tempo rules its
    /// bar line out).
    anchor: Option<bar_phase::BarAnchor>,
    /// Whether the grid is the tracker's own reading over its whole range of tempi (not a
    /// tempo the user or the host gave).
    heard: bool,
}

impl DecodedAt {
    /// The half tempo to offer the user ([`half_tempo`]): only over the tracker's own reading,
    /// never over a tempo the user or the host gave.
    fn half_tempo_offer(
        &self,
        activations: &[beat_model::Activation],
        duration_s: f64,
    ) -> Option<f64> {
        self.heard
            .then(|| half_tempo::half_tempo_reading(activations, &self.decoded, duration_s))
            .flatten()
    }
}

/// Decodes `activations` at the tempo `tempo` says.
fn decode_at(
    activations: &[beat_model::Activation],
    duration_s: f64,
    anchor: Option<bar_phase::BarAnchor>,
    tempo: TempoSource,
) -> DecodedAt {
    use bar_decoder::{StateSpace, decode};
    let at = |bpm: f64| decode(&StateSpace::around(bpm), activations, duration_s);
    let heard = || decode(&StateSpace::default(), activations, duration_s);
    let given = |decoded| DecodedAt {
        decoded,
        anchor,
        heard: false,
    };
    let as_heard = |decoded, anchor| DecodedAt {
        decoded,
        anchor,
        heard: true,
    };
    match tempo {
        TempoSource::Heard => as_heard(heard(), anchor),
        TempoSource::Given(hint) => given(at(hint.bpm())),
        TempoSource::Host(bpm) => {
            let heard = heard();
            if !bar_phase::host_tempo_agrees(heard.tempo_bpm, bpm) {
                return as_heard(heard, None);
            }
            let hosted = TempoHint::new(bpm)
                .ok()
                .map(|hint| at(hint.bpm()))
                .filter(|d| {
                    anchor.is_some_and(|a| {
                        bar_phase::anchored_position(&d.grid.beats, d.grid.meter, a).is_some()
                    })
                });
            match hosted {
                Some(hosted) => given(hosted),
                None => as_heard(heard, anchor),
            }
        }
    }
}

/// Everything the offline analysis knows about a track.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackAnalysis {
    /// Beats and bars.
    pub grid: BeatGrid,
    /// The 121 features of each beat of `grid`.
    pub features: FeatureMatrix,
    /// Median tempo, BPM (0 when no beat was found).
    pub tempo_bpm: f64,
    /// Beats per bar.
    pub meter: u8,
    /// 0 (no pulse) to 1 (clear, regular beats).
    pub confidence: f32,
    /// Length of the audio in seconds.
    pub duration_s: f64,
    /// The network's log-odds that each beat of `grid` is a downbeat: the evidence the bar
    /// lines were placed by, which the plugin's capture goes on placing them with.
    pub downbeat_log_odds: Vec<f32>,
    /// Half of `tempo_bpm`, as a reading leaning towards slower tempi found it, where the grid
    /// may be at the song's eighth notes ([`half_tempo`]): what the user is offered, never
    /// applied. `None` for a grid at a tempo the user or the host gave.
    pub half_tempo_bpm: Option<f64>,
    /// Where the beats were moved half a beat: each time asked for with the stretch moved
    /// around it, on the beats as decoded ([`half_beat::shift_each`]); empty where none were
    /// asked for.
    pub half_beat_moves: Vec<half_beat::Move>,
}

/// Below this [`TrackAnalysis::confidence`] a track is reported as having no steady pulse:
/// its beats are the decoder's best guess, and cuts placed on them may miss the music's bars.
/// Silence, DC, noise and short clips fall under it (the tests below), and so do most of the
/// real songs the tracker gets wrong: of the 75 songs of the tracker-module set E (issue #15,
/// never trained on), the 11 under it were tracked at beat F 0.34 and downbeat F 0.28 on average,
/// the other 64 at 0.82 and 0.76 (session 36; 0.3 was the plugin's threshold before, not tuned
/// on E). The plugin's editor and `trainer` say so when a track falls under it.
pub const LOW_CONFIDENCE: f32 = 0.3;

impl TrackAnalysis {
    /// Whether a steady pulse was found ([`steady_pulse`]).
    pub fn steady_pulse(&self) -> bool {
        steady_pulse(&self.grid, self.confidence)
    }

    /// The parity of the bar lines cuts start and resume on, where every other one is weak
    /// ([`hypermeter::strong_bar_parity`]).
    pub fn strong_bar_parity(&self) -> Option<usize> {
        hypermeter::strong_bar_parity(
            &self.grid,
            self.features.as_slice(),
            &self.downbeat_log_odds,
        )
    }
}

/// Whether either tracker found a steady pulse in a track whose beats are `grid`, found at
/// `confidence`: beats, at [`LOW_CONFIDENCE`] or more.
pub fn steady_pulse(grid: &BeatGrid, confidence: f32) -> bool {
    !grid.is_empty() && confidence >= LOW_CONFIDENCE
}

/// Decodes and analyses a file, never holding it whole at its source rate.
pub fn analyze_file(path: &Path) -> Result<TrackAnalysis, AnalysisError> {
    analyze_file_with(beat_model::shipped(), path, None, &[])
}

/// [`analyze_file`] with the beat network `model`, at the tempo `hint` gives, if any, the beats
/// moved half a beat around each of `half_beats_s` ([`half_beat`]).
pub fn analyze_file_with(
    model: &beat_model::BeatModel,
    path: &Path,
    hint: Option<TempoHint>,
    half_beats_s: &[f64],
) -> Result<TrackAnalysis, AnalysisError> {
    let mut analyzer: Option<FrameAnalyzer> = None;
    let mut frames: Vec<Frame> = Vec::new();
    let mut failure: Option<ResampleError> = None;
    let mut samples = 0u64;
    let info = decode_with(path, |info, mono| {
        if failure.is_some() {
            return;
        }
        samples += mono.len() as u64;
        let analyzer = match analyzer.as_mut() {
            Some(a) => a,
            None => match FrameAnalyzer::new(info.sample_rate) {
                Ok(a) => analyzer.insert(a),
                Err(error) => {
                    failure = Some(error);
                    return;
                }
            },
        };
        if let Err(error) = analyzer.push(mono, &mut |_, f: &Frame| frames.push(*f)) {
            failure = Some(error);
        }
    })?;
    if let Some(error) = failure {
        return Err(error.into());
    }
    if let Some(a) = analyzer.as_mut() {
        a.finish(&mut |_, f: &Frame| frames.push(*f))?;
    }
    let duration_s = samples as f64 / info.sample_rate as f64;
    Ok(analyze_frames_at(
        model,
        &frames,
        duration_s,
        hint.into(),
        half_beats_s,
    ))
}

/// Analyses mono samples at `sample_rate` Hz (8 to 192 kHz).
pub fn analyze_samples(mono: &[f32], sample_rate: u32) -> Result<TrackAnalysis, AnalysisError> {
    analyze_samples_with(beat_model::shipped(), mono, sample_rate, None, &[])
}

/// [`analyze_samples`] with the beat network `model`, at the tempo `hint` gives, if any, the
/// beats moved half a beat around each of `half_beats_s` ([`half_beat`]).
pub fn analyze_samples_with(
    model: &beat_model::BeatModel,
    mono: &[f32],
    sample_rate: u32,
    hint: Option<TempoHint>,
    half_beats_s: &[f64],
) -> Result<TrackAnalysis, AnalysisError> {
    check_rate(sample_rate)?;
    let frames = frontend::analyse_frames(mono, sample_rate)?;
    Ok(analyze_frames_at(
        model,
        &frames,
        mono.len() as f64 / sample_rate as f64,
        hint.into(),
        half_beats_s,
    ))
}

/// Analyses interleaved audio of `channels` channels at `sample_rate` Hz, given as
/// consecutive slices of whole frames (the plugin's capture, held in chunks): mixed to mono as
/// the streaming analyzer mixes it, frame by frame, so it is never copied whole. Its start is
/// not taken for a bar line (a capture starts wherever playback did): `anchor` says where one
/// is, if anything does (the host's transport), `tempo` where its tempo comes from, and
/// `half_beats_s` where the user hears the beats half a beat from the tracker's ([`half_beat`]).
pub fn analyze_interleaved<'a>(
    slices: impl IntoIterator<Item = &'a [f32]>,
    channels: usize,
    sample_rate: u32,
    anchor: Option<bar_phase::BarAnchor>,
    tempo: TempoSource,
    half_beats_s: &[f64],
) -> Result<TrackAnalysis, AnalysisError> {
    check_rate(sample_rate)?;
    let channels = channels.max(1);
    let mut analyzer = FrameAnalyzer::new(sample_rate)?;
    let mut frames: Vec<Frame> = Vec::new();
    let mut mono = Vec::new();
    let mut samples = 0usize;
    for slice in slices {
        decode::mix_to_mono(slice, channels, &mut mono);
        samples += mono.len();
        analyzer.push(&mono, &mut |_, f: &Frame| frames.push(*f))?;
    }
    analyzer.finish(&mut |_, f: &Frame| frames.push(*f))?;
    let activations = beat_model::shipped().activations(&frames);
    Ok(analyze_from(
        &frames,
        &activations,
        samples as f64 / f64::from(sample_rate),
        anchor,
        tempo,
        half_beats_s,
    ))
}

/// The features of `grid` for mono samples at `sample_rate`: what [`analyze_samples`] computes
/// for its own grid, here for any grid (used to compare with the streaming path and to
/// featurise a known grid).
pub fn features_for_grid(
    mono: &[f32],
    sample_rate: u32,
    grid: &BeatGrid,
) -> Result<FeatureMatrix, AnalysisError> {
    check_rate(sample_rate)?;
    let frames = frontend::analyse_frames(mono, sample_rate)?;
    Ok(beat_features::track_features(&frames, grid))
}

fn check_rate(sample_rate: u32) -> Result<(), AnalysisError> {
    if !(decode::MIN_SAMPLE_RATE..=decode::MAX_SAMPLE_RATE).contains(&sample_rate) {
        return Err(AnalysisError::SampleRate {
            min: decode::MIN_SAMPLE_RATE,
            max: decode::MAX_SAMPLE_RATE,
            actual: sample_rate,
        });
    }
    Ok(())
}

/// Beats, bars and features of a track's frames by the shipped beat model, the frames a song's
/// from its start (which is taken as a bar line where the beats run through it:
/// [`bar_phase::anchored_position`]).
pub fn analyze_frames(frames: &[Frame], duration_s: f64) -> TrackAnalysis {
    analyze_frames_with(beat_model::shipped(), frames, duration_s)
}

/// Beats, bars and features of a track's frames by `model`: its activations decoded over
/// tempo, meter and bar position ([`bar_decoder`]), the features of the beats found
/// ([`beat_features`]), then the bar lines placed over the beats by the network's downbeats
/// and the chord changes ([`bar_phase`]).
pub fn analyze_frames_with(
    model: &beat_model::BeatModel,
    frames: &[Frame],
    duration_s: f64,
) -> TrackAnalysis {
    analyze_frames_at(model, frames, duration_s, TempoSource::Heard, &[])
}

/// [`analyze_frames_with`] at the tempo `tempo` says (a host's anchored at the song's start),
/// the beats moved half a beat around each of `half_beats_s` ([`half_beat`]).
pub fn analyze_frames_at(
    model: &beat_model::BeatModel,
    frames: &[Frame],
    duration_s: f64,
    tempo: TempoSource,
    half_beats_s: &[f64],
) -> TrackAnalysis {
    analyze_from(
        frames,
        &model.activations(frames),
        duration_s,
        Some(bar_phase::BarAnchor::SONG_START),
        tempo,
        half_beats_s,
    )
}

/// [`analyze_frames_with`] from given activations, one per frame (another network's, to
/// compare decoders and networks apart).
pub fn analyze_activations(
    frames: &[Frame],
    activations: &[beat_model::Activation],
    duration_s: f64,
) -> TrackAnalysis {
    analyze_from(
        frames,
        activations,
        duration_s,
        Some(bar_phase::BarAnchor::SONG_START),
        TempoSource::Heard,
        &[],
    )
}

/// [`analyze_activations`] with the bar lines anchored at `anchor`, or nowhere, at the tempo
/// `tempo` says, the beats moved half a beat around each of `half_beats_s` before anything is
/// read on them ([`half_beat`]).
fn analyze_from(
    frames: &[Frame],
    activations: &[beat_model::Activation],
    duration_s: f64,
    anchor: Option<bar_phase::BarAnchor>,
    tempo: TempoSource,
    half_beats_s: &[f64],
) -> TrackAnalysis {
    let decoded_at = decode_at(activations, duration_s, anchor, tempo);
    let half_tempo_bpm = decoded_at.half_tempo_offer(activations, duration_s);
    let DecodedAt {
        decoded, anchor, ..
    } = decoded_at;
    let mut grid = decoded.grid;
    let mut half_beat_moves = Vec::new();
    if !half_beats_s.is_empty() {
        (grid.beats, half_beat_moves) =
            half_beat::shift_each(&grid.beats, half_beats_s, grid.duration_s);
        // Placeholders: the bars are placed on the new beats below.
        grid.beat_in_bar = vec![0; grid.beats.len()];
    }
    let mut features = beat_features::track_features(frames, &grid);
    let downbeat_log_odds: Vec<f32> = grid
        .beats
        .iter()
        .map(|&t| {
            let around = bar_phase::around(activations, frontend::frame_index_at(t));
            bar_phase::downbeat_log_odds(around)
        })
        .collect();
    bar_phase::place_bars(
        &mut grid,
        features.as_mut_slice(),
        &downbeat_log_odds,
        anchor,
    );
    TrackAnalysis {
        meter: grid.meter,
        duration_s: grid.duration_s,
        grid,
        features,
        tempo_bpm: decoded.tempo_bpm,
        confidence: decoded.confidence,
        downbeat_log_odds,
        half_tempo_bpm,
        half_beat_moves,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_trackers_own_reading_is_offered_half_its_tempo() {
        // A 90 BPM song heard at its eighth notes (180).
        let activations = test_signals::busy_eighths(180.0, 0.85, 40.0);
        let offer = |tempo| {
            decode_at(
                &activations,
                40.0,
                Some(bar_phase::BarAnchor::SONG_START),
                tempo,
            )
            .half_tempo_offer(&activations, 40.0)
        };
        let heard = offer(TempoSource::Heard);
        assert!(
            heard.is_some_and(|bpm| (bpm - 90.0).abs() < 2.0),
            "{heard:?}"
        );
        // A tempo the user gives is the user's call.
        let given = TempoSource::Given(TempoHint::new(180.0).unwrap());
        assert_eq!(offer(given), None);
        // A host at an unrelated tempo says nothing: the tracker's reading stands, with its offer.
        assert_eq!(offer(TempoSource::Host(128.0)), heard);
    }

    fn noise(seconds: f32, rate: u32, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..(seconds * rate as f32) as usize)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn silence_dc_noise_and_short_clips_give_empty_or_unconfident_results() {
        let rate = 44_100;
        let cases: Vec<(&str, Vec<f32>)> = vec![
            ("silence", vec![0.0; rate as usize * 10]),
            ("dc", vec![0.7; rate as usize * 10]),
            ("white noise", noise(10.0, rate, 3)),
            ("half a second", noise(0.5, rate, 4)),
            ("one sample", vec![0.3]),
            ("nothing", Vec::new()),
        ];
        for (name, audio) in cases {
            let analysis = analyze_samples(&audio, rate).unwrap();
            analysis.grid.validate().unwrap();
            analysis.features.validate().unwrap();
            assert_eq!(analysis.features.beats(), analysis.grid.len(), "{name}");
            assert!(
                !analysis.steady_pulse(),
                "{name}: {} beats at confidence {}",
                analysis.grid.len(),
                analysis.confidence
            );
        }
    }

    #[test]
    fn clipped_and_non_finite_audio_still_gives_finite_features() {
        let rate = 22_050;
        let mut audio: Vec<f32> = (0..rate as usize * 8)
            .map(|i| {
                let t = i as f32 / rate as f32;
                // A loud pulse every 0.5 s, clipped hard.
                let beat = (t * 2.0).fract();
                (8.0 * (-beat * 20.0).exp() * (std::f32::consts::TAU * 80.0 * t).sin())
                    .clamp(-1.0, 1.0)
            })
            .collect();
        for i in (0..audio.len()).step_by(997) {
            audio[i] = if i % 2 == 0 { f32::NAN } else { f32::INFINITY };
        }
        let analysis = analyze_samples(&audio, rate).unwrap();
        analysis.features.validate().unwrap();
        assert!(
            (analysis.tempo_bpm - 120.0).abs() < 3.0,
            "{}",
            analysis.tempo_bpm
        );
    }

    /// The default synthetic song of `seed` at `bpm` in `meter`, about `seconds` long.
    fn steady_spec(seed: u64, bpm: f64, meter: u8, seconds: f64) -> cutscore_synth::SongSpec {
        let mut spec = cutscore_synth::SongSpec {
            seed,
            bpm,
            meter,
            ..cutscore_synth::SongSpec::default()
        };
        spec.bars = spec.bars_for_seconds(seconds);
        spec
    }

    /// Tracks a synthetic song and checks tempo, meter, every beat within 70 ms and each
    /// beat's place in the bar.
    fn assert_tracks(spec: cutscore_synth::SongSpec) {
        let song = cutscore_synth::render(&spec).unwrap();
        let analysis = analyze_samples(&song.mono(), song.sample_rate).unwrap();
        let truth = &song.truth;
        let name = format!("{} BPM in {}/4", spec.bpm, spec.meter);
        assert!(
            (analysis.tempo_bpm - spec.bpm).abs() < 0.02 * spec.bpm,
            "{name}: tracked at {}",
            analysis.tempo_bpm
        );
        assert_eq!(analysis.meter, spec.meter, "{name}");
        let grid = &analysis.grid;
        let mut placed = 0;
        for (i, &t) in truth.beats.iter().enumerate().filter(|(_, t)| **t > 3.0) {
            let found = grid.beats.iter().position(|&b| (b - t).abs() < 0.07);
            let j = found.unwrap_or_else(|| panic!("{name}: no beat near true beat {i} at {t}"));
            placed += usize::from(grid.beat_in_bar[j] == truth.beat_in_bar[i]);
        }
        let counted = truth.beats.iter().filter(|t| **t > 3.0).count();
        assert!(
            placed * 10 >= counted * 9,
            "{name}: {placed} of {counted} beats in place"
        );
    }

    #[test]
    fn a_song_at_148_bpm_is_tracked_at_148_with_its_bars() {
        assert_tracks(steady_spec(41, 148.0, 4, 40.0));
    }

    #[test]
    fn a_waltz_gives_three_beat_bars() {
        assert_tracks(steady_spec(42, 132.0, 3, 40.0));
    }

    #[test]
    fn a_given_tempo_is_tracked_at_its_level_and_a_hosts_only_where_its_grid_fits() {
        let song = cutscore_synth::render(&steady_spec(41, 148.0, 4, 30.0)).unwrap();
        let mono = song.mono();
        let rate = song.sample_rate;
        let frames = frontend::analyse_frames(&mono, rate).unwrap();
        let duration = mono.len() as f64 / f64::from(rate);
        let at = |tempo| analyze_frames_at(beat_model::shipped(), &frames, duration, tempo, &[]);
        // Every beat found within the song (its render rings on after the last beat) lies on
        // one of its beats.
        let last = song.truth.beats.last().copied().unwrap();
        let on_true_beats = |analysis: &TrackAnalysis| {
            let within = || {
                analysis
                    .grid
                    .beats
                    .iter()
                    .filter(|&&b| b > 3.0 && b < last + 0.1)
            };
            within().count() > 10
                && within().all(|&b| song.truth.beats.iter().any(|&t| (t - b).abs() < 0.07))
        };
        let heard = at(TempoSource::Heard);
        assert!((heard.tempo_bpm - 148.0).abs() < 3.0, "{}", heard.tempo_bpm);
        // Told it is 74 (or 148, or the user's "about 150"), the tracker counts at that level,
        // on the song's beats: at half the tempo every other beat, never the ones between.
        for (bpm, expected) in [(74.0, 74.0), (148.0, 148.0), (150.0, 148.0)] {
            let given = at(TempoSource::Given(TempoHint::new(bpm).unwrap()));
            assert!(
                (given.tempo_bpm - expected).abs() < 0.02 * expected,
                "given {bpm}: tracked at {}",
                given.tempo_bpm
            );
            assert!(on_true_beats(&given), "given {bpm}");
        }
        // A host at half the song's tempo whose bar line is the song's: its level. A host
        // whose bar line falls half its beat away (on the song's off-beat at its level): as
        // heard, its bar line placing the bars as it would have. A host at another tempo says
        // nothing about the song: as heard, its bar line unused.
        let activations = beat_model::shipped().activations(&frames);
        let anchored = |time_s: Option<f64>, tempo| {
            let anchor = time_s.map(|time_s| bar_phase::BarAnchor {
                time_s,
                until_s: f64::INFINITY,
            });
            analyze_from(&frames, &activations, duration, anchor, tempo, &[])
        };
        let bar_line = song.truth.downbeats[0];
        let hosted = anchored(Some(bar_line), TempoSource::Host(74.0));
        assert!(
            (hosted.tempo_bpm - 74.0).abs() < 1.5,
            "{}",
            hosted.tempo_bpm
        );
        assert!(on_true_beats(&hosted));
        let off_beat = bar_line + 60.0 / 148.0;
        assert_eq!(
            anchored(Some(off_beat), TempoSource::Host(74.0)),
            anchored(Some(off_beat), TempoSource::Heard)
        );
        assert_eq!(
            anchored(Some(bar_line), TempoSource::Host(100.0)),
            anchored(None, TempoSource::Heard)
        );
        // Tempi no tracker can give are refused, with the range.
        for bpm in [0.0, 12.0, 500.0, f64::NAN, f64::INFINITY] {
            assert!(
                matches!(
                    TempoHint::new(bpm),
                    Err(AnalysisError::TempoHint {
                        min: 30.0,
                        max: 300.0,
                        ..
                    })
                ),
                "{bpm}"
            );
        }
    }

    #[test]
    fn refuses_rates_outside_8_to_192_khz() {
        for rate in [0u32, 4_000, 400_000] {
            assert!(matches!(
                analyze_samples(&[0.0; 100], rate),
                Err(AnalysisError::SampleRate { actual, .. }) if actual == rate
            ));
        }
    }
}
