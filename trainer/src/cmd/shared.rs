//! What the scoring commands share: the `--model`/`--device` and `--bpm`/`--bar-line`/
//! `--beat-model` arguments and loading the default models, analysing a song that must have
//! bars to cut, and rendering a fitted edit with its marker list.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use anyhow::Context;
use cutscore_analysis::beat_model::file as beat_file;
use cutscore_analysis::beat_model::{self, BeatModel};
use cutscore_analysis::decode::{decode_audio, mix_to_mono};
use cutscore_analysis::given_bar_line;
use cutscore_analysis::{
    LOW_CONFIDENCE, TempoHint, TrackAnalysis, analyze_file_with, analyze_samples_with,
};
use cutscore_core::audio::Audio;
use cutscore_core::features::FeatureMatrix;
use cutscore_core::grid::BeatGrid;
use cutscore_editing::fit::FitEdit;
use cutscore_editing::markers::{EditList, edit_list};
use cutscore_editing::render::{Rendered, render};
use cutscore_reward::RewardModel;
use cutscore_reward::checkpoint::{Checkpoint, CheckpointInfo};
use cutscore_reward::device::{self, DeviceChoice};
use cutscore_reward::shipped::{self, ModelSource};
use cutscore_training::finetune::{CRAFT_SLACK_POINTS, FinetuneOptions, Settings};

/// How the taste layer is learned (`trainer finetune`, `trainer taste-eval`).
#[derive(Debug, Clone, clap::Args)]
pub struct TasteArgs {
    /// Weight of the replayed synthetic pairs, all together, against the user's pairs: higher
    /// keeps more of the craft, lower follows the taste more.
    #[arg(long, default_value_t = FinetuneOptions::default().replay)]
    replay: f64,
    /// Points of accuracy on synthetic pairs (the craft) a taste may cost, judged by
    /// cross-validation; more follows a taste that contradicts the craft further.
    #[arg(long, default_value_t = CRAFT_SLACK_POINTS, value_name = "POINTS")]
    craft_slack: f32,
    /// L1 strength of the taste layer, which keeps it to the inputs it needs (with --bound)
    /// [default: both chosen by cross-validation over the user's songs].
    #[arg(long, requires = "bound")]
    sparsity: Option<f64>,
    /// Most the taste layer may move a score, in points (with --sparsity).
    #[arg(long, requires = "sparsity")]
    bound: Option<f32>,
}

impl TasteArgs {
    /// The fine-tuning options these arguments say, seeded by `seed`.
    pub fn options(&self, seed: u64) -> FinetuneOptions {
        FinetuneOptions {
            settings: self
                .sparsity
                .zip(self.bound)
                .map(|(sparsity, bound)| Settings {
                    sparsity,
                    bound,
                    gated: true,
                    focus: None,
                }),
            replay: self.replay,
            craft_slack: self.craft_slack / 100.0,
            seed,
            ..FinetuneOptions::default()
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Reward model checkpoint (.safetensors) to score with [default: your fine-tuned model if
    /// `trainer finetune` has written one, else the shipped model].
    #[arg(long)]
    model: Option<PathBuf>,
    /// Where to run the model: auto (CUDA if available), cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
}

impl ModelArgs {
    /// Loads and checks the model on the chosen device.
    pub fn load(&self) -> anyhow::Result<(RewardModel, CheckpointInfo)> {
        let (checkpoint, source) = resolve_model(self.model.as_deref())?;
        log::info!("scoring with {source}");
        let selected = device::select(self.device)?;
        let model = checkpoint.model(&selected.device)?;
        Ok((model, checkpoint.info))
    }
}

/// `fit` rendered from `audio` with crossfades, and the edit list of its joins (with the
/// joins' scores) for the marker files.
pub fn render_fit(
    audio: &Audio,
    grid: &BeatGrid,
    fit: &FitEdit,
    crossfade_s: f64,
) -> anyhow::Result<(Rendered, EditList)> {
    let rendered = render(audio, grid, &fit.edit, crossfade_s)?;
    let join_scores: Vec<f32> = fit.joins.iter().map(|j| j.score).collect();
    let list = edit_list(
        audio.seconds(),
        rendered.audio.seconds(),
        Some(fit.score),
        &rendered.joins,
        Some(&join_scores),
    );
    Ok((rendered, list))
}

/// Loads `given`, else the default model ([`shipped::resolve`]); a user model passed over is
/// reported as a warning on stderr.
pub fn resolve_model(given: Option<&Path>) -> anyhow::Result<(Checkpoint, ModelSource)> {
    let resolved = shipped::resolve(given).with_context(|| match given {
        Some(path) => format!("loading {}", path.display()),
        None => "loading the default model (your model if `trainer finetune` wrote one, else the shipped one)".into(),
    })?;
    if let Some(problem) = &resolved.problem {
        eprintln!("warning: {problem}");
    }
    Ok((resolved.checkpoint, resolved.source))
}

/// How the beats are tracked: the song's tempo and where a bar starts, when the user knows
/// them, and the beat network.
#[derive(Debug, Clone, clap::Args)]
pub struct TrackerArgs {
    /// The song's tempo, if you know it (BPM, 30 to 300): the beats are tracked within 10 %
    /// of it, instead of at the tempo the tracker hears, which may be the song's eighth notes
    /// or every other beat.
    #[arg(long)]
    bpm: Option<f64>,
    /// A time where a bar starts, if you know one (seconds, the time of a beat found there):
    /// the bars around it are counted from that beat instead of where the tracker placed them,
    /// as far as the tracker counted the beats alike (a change of phase or of tempo it found
    /// bounds the move).
    #[arg(long, value_name = "SECONDS")]
    bar_line: Option<f64>,
    /// A time where the tracker's beats fall halfway between the song's (on its off-beats), if
    /// you hear that (seconds): the beats around it, as far as they keep one tempo and phase,
    /// move half a beat before anything is read on them. With --bar-line, the bar line is a
    /// time on the moved beats.
    #[arg(long, value_name = "SECONDS")]
    half_beat: Option<f64>,
    /// Beat network (.safetensors, as `trainer beats train` writes) to track the beats with
    /// [default: the shipped one].
    #[arg(long, value_name = "FILE")]
    beat_model: Option<PathBuf>,
}

/// What the user says about a song's beats: its tempo, a time where a bar starts and one where
/// the tracker's beats fall on the off-beats.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Tracking {
    pub hint: Option<TempoHint>,
    pub bar_line_s: Option<f64>,
    pub half_beat_s: Option<f64>,
}

impl Tracking {
    /// The times the beats are moved half a beat around ([`cutscore_analysis::half_beat`]).
    pub fn half_beats_s(&self) -> &[f64] {
        self.half_beat_s.as_slice()
    }
}

impl TrackerArgs {
    /// `--bpm`, `--bar-line` and `--half-beat`, checked.
    pub fn tracking(&self) -> anyhow::Result<Tracking> {
        for (flag, time) in [
            ("--bar-line", self.bar_line),
            ("--half-beat", self.half_beat),
        ] {
            if let Some(t) = time {
                anyhow::ensure!(
                    t.is_finite() && t >= 0.0,
                    "{flag} is {t}; expected a time in seconds from the start of the song"
                );
            }
        }
        Ok(Tracking {
            hint: self.bpm.map(TempoHint::new).transpose()?,
            bar_line_s: self.bar_line,
            half_beat_s: self.half_beat,
        })
    }

    /// The beat network `--beat-model` names, read and checked, else the shipped one.
    pub fn beat_model(&self) -> anyhow::Result<Cow<'static, BeatModel>> {
        match &self.beat_model {
            Some(path) => {
                Ok(Cow::Owned(beat_file::read(path).with_context(|| {
                    format!("loading the beat model {}", path.display())
                })?))
            }
            None => Ok(Cow::Borrowed(beat_model::shipped())),
        }
    }
}

/// Analyses `audio` with `model` as `tracking` says (at its tempo, its bars counted from its
/// bar line), refusing songs without at least two bars.
pub fn analyze_bars(
    model: &BeatModel,
    audio: &Path,
    tracking: Tracking,
) -> anyhow::Result<TrackAnalysis> {
    let mut analysis = analyze_file_with(model, audio, tracking.hint, tracking.half_beats_s())
        .with_context(|| format!("analysing {}", audio.display()))?;
    ensure_bars(&analysis, audio)?;
    count_bars_from(
        &mut analysis.grid,
        &mut analysis.features,
        tracking.bar_line_s,
        audio,
    )?;
    Ok(analysis)
}

/// Decodes `path` once, for both the analysis and the render: the audio and its analysis by
/// `model` as `tracking` says, refusing songs without at least two bars.
pub fn decode_and_analyze_bars(
    model: &BeatModel,
    path: &Path,
    tracking: Tracking,
) -> anyhow::Result<(Audio, TrackAnalysis)> {
    let audio = decode_audio(path).with_context(|| format!("decoding {}", path.display()))?;
    let mut mono = Vec::new();
    mix_to_mono(&audio.samples, usize::from(audio.channels), &mut mono);
    let mut analysis = analyze_samples_with(
        model,
        &mono,
        audio.sample_rate,
        tracking.hint,
        tracking.half_beats_s(),
    )
    .with_context(|| format!("analysing {}", path.display()))?;
    ensure_bars(&analysis, path)?;
    count_bars_from(
        &mut analysis.grid,
        &mut analysis.features,
        tracking.bar_line_s,
        path,
    )?;
    Ok((audio, analysis))
}

/// Counts the bars of `path`'s `grid` (its `features` rewritten) from the beat at `bar_line_s`,
/// if the user gave one ([`given_bar_line`]).
pub fn count_bars_from(
    grid: &mut BeatGrid,
    features: &mut FeatureMatrix,
    bar_line_s: Option<f64>,
    path: &Path,
) -> anyhow::Result<()> {
    if let Some(t) = bar_line_s {
        given_bar_line::count_bars_from(grid, features.as_mut_slice(), t).with_context(|| {
            format!(
                "--bar-line: counting the bars of {} from {t:.3} s",
                path.display()
            )
        })?;
    }
    Ok(())
}

/// Refuses a song without at least two bars, and warns about one whose beats the tracker is
/// not sure of (cuts on them may miss the music's bars).
fn ensure_bars(analysis: &TrackAnalysis, path: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        analysis.grid.bar_starts().len() >= 2,
        "{} has no bars to cut (found {} beats); is it music with a pulse?",
        path.display(),
        analysis.grid.len()
    );
    if !analysis.steady_pulse() {
        eprintln!("warning: {}", no_steady_pulse(path, analysis.confidence));
    }
    if let Some(half) = analysis.half_tempo_bpm {
        eprintln!("note: {}", half_tempo_note(path, analysis.tempo_bpm, half));
    }
    Ok(())
}

/// What to tell a user whose track `path` was tracked at `heard_bpm` where a reading leaning
/// towards slower tempi found `half_bpm` (`TrackAnalysis::half_tempo_bpm`).
pub fn half_tempo_note(path: &Path, heard_bpm: f64, half_bpm: f64) -> String {
    format!(
        "{} was tracked at {heard_bpm:.1} BPM, but it may be at {half_bpm:.1} (the tracker often \
         counts a slow song's eighth notes); if its beats are half beats, `trainer analyze`, \
         `edit` and `score` count it there with --bpm {half_bpm:.1}",
        path.display()
    )
}

/// What to tell a user whose track `path` was analysed at `confidence`, below
/// [`LOW_CONFIDENCE`].
pub fn no_steady_pulse(path: &Path, confidence: f32) -> String {
    format!(
        "no steady pulse found in {} (confidence {confidence:.2}, below {LOW_CONFIDENCE}): its \
         beats and bars are the tracker's best guess, and cuts on them may miss the music's bars; \
         listen before you use them",
        path.display()
    )
}
