//! `trainer beats`: train the beat and downbeat activation network, and score the offline
//! tracker on a folder of songs with known beats.
//!
//! - `trainer beats train --out beats.safetensors [--synth N] [--gm N] [--dir DIR]...`:
//!   examples are synthetic songs (the synthesiser's voices), the same songs played by a
//!   General MIDI SoundFont (`--gm`, see `crate::gm_songs`), and any folder of `*.wav` with a
//!   `*.truth.json` beside it; `--recorded DIR` adds recordings, all trained on and drawn a
//!   fixed share of the time (`--recorded-share`). A tenth of the other songs is held out; every
//!   `--eval-every` steps the held-out loss and the tracker's F-measures on them are measured,
//!   and the best model so far (lowest held-out loss) is written to `--out`
//!   atomically, so an interrupted run keeps its best and `--init` goes on from it.
//! - `trainer beats eval DIR [--model M] [--json]`: beat F, CMLt, AMLt, downbeat F and tempo
//!   (mir_eval's rules, first 5 s discarded) of the offline tracker on every song of `DIR`.
//! - `trainer beats blend FROM TO --weight T --out M`: the weights a fraction `T` of the way
//!   from model `FROM` to model `TO` (a fine-tuned model and the one it started from).
//! - `trainer beats activations DIR --out ACT_DIR`: the network's per-frame probabilities of
//!   every song, as `NAME.activations.json`; `trainer beats eval DIR --activations ACT_DIR`
//!   decodes such files (from any network, at any frame rate) instead of the network's, so
//!   networks and decoders can be compared apart (`bench/activation_swap.py`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use cutscore_analysis::bar_phase;
use cutscore_analysis::beat_model::file::{
    self as beat_file, BeatEpoch, BeatProvenance, BeatTrainingMetrics,
};
use cutscore_analysis::beat_model::{self, BeatModel, BeatModelConfig, INPUT_BANDS};
use cutscore_analysis::decode::decode_file;
use cutscore_analysis::frontend::{self, Frame};
use cutscore_analysis::given_bar_line;
use cutscore_analysis::metrics;
use cutscore_analysis::{
    StreamingAnalyzer, TempoHint, TempoSource, analyze_frames_at, analyze_frames_with,
};
use cutscore_core::features::BEAT_FEATURES;
use cutscore_core::grid::{BeatGrid, steady_tempo};
use cutscore_reward::device::{self, DeviceChoice};
use cutscore_synth::{SongSpec, SongTruth};
use cutscore_training::beat_net as net;
use cutscore_training::beat_training::{
    BeatExample, BeatTrainer, TrainSettings, TrainingSet, learning_rate,
};
use cutscore_training::beat_widen;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

use crate::gm_songs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: BeatsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum BeatsCommand {
    /// Train the activation network on songs with exact beats.
    Train(TrainArgs),
    /// Score the offline beat tracker on a folder of `*.wav` + `*.truth.json`.
    Eval(EvalArgs),
    /// Interpolate the weights of two beat models of the same architecture.
    Blend(BlendArgs),
    /// Write the network's beat and downbeat probabilities of every song of a folder.
    Activations(ActivationsArgs),
}

#[derive(Debug, clap::Args)]
pub struct ActivationsArgs {
    /// Folder of `*.wav` files with `*.truth.json` beside each.
    dir: PathBuf,
    /// Folder to write `NAME.activations.json` into.
    #[arg(long)]
    out: PathBuf,
    /// Beat model [default: the shipped one].
    #[arg(long)]
    model: Option<PathBuf>,
}

/// Per-frame probabilities of one song, at `fps` frames per second from `first_s`.
#[derive(Debug, Serialize, serde::Deserialize)]
struct ActivationsFile {
    fps: f64,
    first_s: f64,
    beat: Vec<f32>,
    downbeat: Vec<f32>,
}

#[derive(Debug, clap::Args)]
pub struct BlendArgs {
    /// The model at weight 0 (the one fine-tuning started from).
    from: PathBuf,
    /// The model at weight 1 (the fine-tuned one).
    to: PathBuf,
    /// How far from FROM towards TO, 0 to 1.
    #[arg(long)]
    weight: f32,
    /// Where to write the blend.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Where to write the model (the best so far, rewritten as training goes).
    #[arg(long)]
    out: PathBuf,
    /// Synthetic songs with the synthesiser's voices (seeds from --seed on).
    #[arg(long, default_value_t = 200)]
    synth: usize,
    /// The same kind of songs played by a General MIDI SoundFont (seeds after --synth's).
    #[arg(long, default_value_t = 0)]
    gm: usize,
    /// The SoundFont for --gm.
    #[arg(long, default_value = gm_songs::DEFAULT_SOUNDFONT)]
    soundfont: PathBuf,
    /// Keep each rendered song's mel frames and beats here and reuse them on the next run.
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Folders of `*.wav` with `*.truth.json` beside each (repeatable).
    #[arg(long)]
    dir: Vec<PathBuf>,
    /// Folders of recordings (`*.wav` + `*.truth.json`, repeatable): all trained on, none held
    /// out, and drawn --recorded-share of the time however few they are.
    #[arg(long)]
    recorded: Vec<PathBuf>,
    /// Share of the excerpts drawn from --recorded (0 to 1).
    #[arg(long, default_value_t = 0.25)]
    recorded_share: f64,
    /// First song seed; also seeds excerpts and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Optimisation steps.
    #[arg(long, default_value_t = 3000)]
    steps: usize,
    /// Excerpts per step.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Frames per excerpt (43 per second).
    #[arg(long, default_value_t = 1024)]
    excerpt: usize,
    /// Weight of the beat output's loss halfway between two true beats (the "and"s), against
    /// 1 on all other frames (1: the shipped model's loss).
    #[arg(long, default_value_t = 1.0)]
    offbeat_weight: f32,
    /// Peak learning rate (warm-up, then cosine to a tenth).
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// Steps between evaluations on the held-out songs.
    #[arg(long, default_value_t = 250)]
    eval_every: usize,
    /// Go on training this model (its architecture is kept, unless --channels widens it).
    #[arg(long)]
    init: Option<PathBuf>,
    /// Channels of a new model [default: 64]. With --init, more than that model's widens it:
    /// the new channels start silent, so training begins from the same activations.
    #[arg(long)]
    channels: Option<usize>,
    /// Blocks of a new model whose dilation is at most this look ahead (centred taps); the
    /// look-ahead is 1 + the sum of their dilations, in frames.
    #[arg(long, default_value_t = BeatModelConfig::default().centred_up_to)]
    centred_up_to: usize,
    /// Where to train: auto (CUDA if available), cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Folder of `*.wav` files with `*.truth.json` beside each.
    dir: PathBuf,
    /// Beat model to track with [default: the shipped one].
    #[arg(long)]
    model: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also run the streaming tracker (as the plugin does, in blocks of 512 frames).
    #[arg(long)]
    streaming: bool,
    /// Decode these activations (`NAME.activations.json`, any frame rate) instead of the
    /// network's (offline only: `--streaming` still runs the network), at the tempo heard.
    #[arg(long, conflicts_with_all = ["tempo_hint", "host_tempo"])]
    activations: Option<PathBuf>,
    /// Give the trackers each song's true median tempo: the offline one as `trainer edit
    /// --bpm` gives a user's, the streaming one from the song's start, as the plugin's counts
    /// at the tempo its ½× or 2× sets.
    #[arg(long)]
    tempo_hint: bool,
    /// Give the offline tracker each song's true median tempo as a host's, its bar line at the
    /// song's start: the plugin's settled grid in a DAW project whose grid is the song's.
    #[arg(long, conflicts_with = "tempo_hint")]
    host_tempo: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        BeatsCommand::Train(args) => train(args),
        BeatsCommand::Eval(args) => eval(args),
        BeatsCommand::Blend(args) => blend(args),
        BeatsCommand::Activations(args) => write_activations(args),
    }
}

fn write_activations(args: ActivationsArgs) -> anyhow::Result<()> {
    let model = match &args.model {
        Some(path) => beat_file::read(path)?,
        None => beat_model::shipped().clone(),
    };
    std::fs::create_dir_all(&args.out)?;
    for song in read_folder(&args.dir)? {
        let a = model.activations(&song.frames);
        let file = ActivationsFile {
            fps: frontend::frame_rate(),
            first_s: frontend::frame_time(0),
            beat: a.iter().map(|a| a.beat).collect(),
            downbeat: a.iter().map(|a| a.downbeat).collect(),
        };
        let path = args.out.join(format!("{}.activations.json", song.name));
        std::fs::write(&path, serde_json::to_string(&file)?)?;
    }
    Ok(())
}

/// Activations read from `dir` for `song`, at the front end's frames.
fn read_activations(dir: &Path, song: &ScoredSong) -> anyhow::Result<Vec<beat_model::Activation>> {
    let path = dir.join(format!("{}.activations.json", song.name));
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (expected `trainer beats activations` or bench/activation_swap.py output)",
            path.display()
        )
    })?;
    let file: ActivationsFile =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    if !(file.fps > 0.0 && file.fps.is_finite() && file.first_s.is_finite()) {
        bail!(
            "{}: fps {} and first_s {}; expected a positive frame rate and a finite start",
            path.display(),
            file.fps,
            file.first_s
        );
    }
    Ok(resample(&file, song.frames.len()))
}

/// `frames` front-end frames of `file`'s activations: at each frame the largest value within
/// half a front-end frame of its centre (so a peak between two source frames survives).
fn resample(file: &ActivationsFile, frames: usize) -> Vec<beat_model::Activation> {
    let half = 0.5 / frontend::frame_rate();
    let at = |values: &[f32], t: f64| -> f32 {
        let lo = ((t - half - file.first_s) * file.fps).ceil().max(0.0) as usize;
        let hi = ((t + half - file.first_s) * file.fps).floor().max(0.0) as usize;
        values
            .get(lo..=hi.min(values.len().saturating_sub(1)))
            .unwrap_or_default()
            .iter()
            .copied()
            .fold(0.0, f32::max)
    };
    (0..frames)
        .map(|k| {
            let t = frontend::frame_time(k);
            beat_model::Activation {
                beat: at(&file.beat, t),
                downbeat: at(&file.downbeat, t),
            }
        })
        .collect()
}

fn blend(args: BlendArgs) -> anyhow::Result<()> {
    let from = beat_file::read(&args.from)?;
    let to = beat_file::read(&args.to)?;
    let weights = from.interpolate(&to, args.weight)?;
    let provenance = BeatProvenance {
        base_model: Some(from.info.model_id.clone()),
        command: Some(format!(
            "trainer beats blend {} ({}) {} ({}) --weight {}",
            args.from.display(),
            from.info.model_id,
            args.to.display(),
            to.info.model_id,
            args.weight
        )),
        created: None,
        ..to.info.provenance.clone()
    };
    // No training made the blend: it carries no training curve of its own.
    let metrics = BeatTrainingMetrics::default();
    let id = beat_file::save(&args.out, &to.info.config, &weights, &metrics, &provenance)?;
    println!("wrote {} (model {id})", args.out.display());
    Ok(())
}

/// A song of a folder: its audio's front-end frames and its truth.
struct ScoredSong {
    name: String,
    mono: Vec<f32>,
    sample_rate: u32,
    frames: Vec<Frame>,
    duration_s: f64,
    truth: SongTruth,
}

fn read_folder(dir: &Path) -> anyhow::Result<Vec<ScoredSong>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .filter(|p| cutscore_synth::truth_path_for(p).exists())
        .collect();
    paths.sort();
    if paths.is_empty() {
        bail!(
            "{} has no *.wav with a *.truth.json beside it; expected songs with known beats",
            dir.display()
        );
    }
    paths
        .iter()
        .map(|path| {
            let truth = cutscore_synth::read_truth(&cutscore_synth::truth_path_for(path))?;
            let audio = decode_file(path)?;
            let frames = frontend::analyse_frames(&audio.mono, audio.sample_rate)?;
            let duration_s = audio.duration_s();
            Ok(ScoredSong {
                mono: audio.mono,
                sample_rate: audio.sample_rate,
                name: path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                duration_s,
                frames,
                truth,
            })
        })
        .collect()
}

/// One song's scores.
#[derive(Debug, Clone, Serialize)]
struct SongScores {
    name: String,
    true_bpm: f64,
    tempo_bpm: f64,
    meter: u8,
    true_meter: u8,
    f: f64,
    cml_t: f64,
    aml_t: f64,
    downbeat_f: f64,
    /// Tempo within 4 % of the truth's median tempo.
    tempo_ok: bool,
    /// Median time from each true beat to the nearest found beat within a third of a beat,
    /// ms (positive: found late).
    offset_ms: f64,
    /// The streaming tracker's beat F and downbeat F, with `--streaming`.
    streaming_f: Option<f64>,
    streaming_downbeat_f: Option<f64>,
    /// Downbeat F of the plugin's capture at the end of the song: the streaming beats with
    /// their bar lines placed over everything heard.
    capture_downbeat_f: Option<f64>,
    /// The same in a DAW project whose grid is the song's (the host's bar line at its start).
    host_capture_downbeat_f: Option<f64>,
    /// The half tempo the editor would offer beside ½× (`TrackAnalysis::half_tempo_bpm`), and
    /// the beat F and downbeat F of the grid decoded at it (what the user gets who takes it).
    half_tempo_bpm: Option<f64>,
    half_tempo_f: Option<f64>,
    half_tempo_downbeat_f: Option<f64>,
    /// The downbeat F after one bar line given by a user ([`one_bar_click`]), where the grid
    /// has a beat there.
    one_click_downbeat_f: Option<f64>,
    /// The beat F and downbeat F after the beats are moved half a beat and a bar line given
    /// where the grid lies on the off-beats at that downbeat ([`half_beat_click`]).
    half_beat_click_f: Option<f64>,
    half_beat_click_downbeat_f: Option<f64>,
}

impl SongScores {
    /// Found at twice the truth's tempo (within 4 %).
    fn doubled(&self) -> bool {
        (self.tempo_bpm - 2.0 * self.true_bpm).abs() <= 0.08 * self.true_bpm
    }

    /// The half tempo offered is the truth's (within 4 %).
    fn offer_right(&self) -> bool {
        self.half_tempo_bpm
            .is_some_and(|bpm| (bpm - self.true_bpm).abs() <= 0.04 * self.true_bpm)
    }
}

fn score_frames(
    model: &BeatModel,
    name: &str,
    frames: &[Frame],
    duration_s: f64,
    truth: &SongTruth,
) -> anyhow::Result<SongScores> {
    let decoded = analyze_frames_with(model, frames, duration_s);
    score_decoded(name, decoded, truth)
}

fn score_decoded(
    name: &str,
    decoded: cutscore_analysis::TrackAnalysis,
    truth: &SongTruth,
) -> anyhow::Result<SongScores> {
    let grid = &decoded.grid;
    let (beats, downbeat_f) = beat_and_downbeat_f(grid, truth)?;
    let true_bpm = steady_tempo(&truth.beats).unwrap_or(0.0);
    Ok(SongScores {
        name: name.to_owned(),
        true_bpm,
        tempo_bpm: decoded.tempo_bpm,
        meter: grid.meter,
        true_meter: truth.meter,
        f: beats.f_measure,
        cml_t: beats.cml_t,
        aml_t: beats.aml_t,
        downbeat_f,
        tempo_ok: (decoded.tempo_bpm - true_bpm).abs() <= 0.04 * true_bpm,
        offset_ms: median_offset(&truth.beats, &grid.beats) * 1000.0,
        streaming_f: None,
        streaming_downbeat_f: None,
        capture_downbeat_f: None,
        host_capture_downbeat_f: None,
        half_tempo_bpm: decoded.half_tempo_bpm,
        half_tempo_f: None,
        half_tempo_downbeat_f: None,
        one_click_downbeat_f: None,
        half_beat_click_f: None,
        half_beat_click_downbeat_f: None,
    })
}

/// The first true downbeat from where the scores start ([`metrics::MIN_BEAT_TIME_S`]): where
/// the simulated user of [`one_bar_click`] and [`half_beat_click`] looks.
fn first_scored_downbeat(truth: &SongTruth) -> Option<f64> {
    truth
        .downbeats
        .iter()
        .copied()
        .find(|&t| t >= metrics::MIN_BEAT_TIME_S)
}

/// The downbeat F of `decoded`'s grid after a user gives it one bar line
/// ([`given_bar_line`]): the first true downbeat from where the scores start
/// ([`metrics::MIN_BEAT_TIME_S`]), as a user who checks the first bar they hear would.
/// `None` where the grid has no beat there to count from (or the truth no downbeat).
fn one_bar_click(
    decoded: &cutscore_analysis::TrackAnalysis,
    truth: &SongTruth,
) -> anyhow::Result<Option<f64>> {
    let Some(bar_line) = first_scored_downbeat(truth) else {
        return Ok(None);
    };
    let mut grid = decoded.grid.clone();
    if given_bar_line::count_bars_from(&mut grid, &mut [], bar_line).is_err() {
        return Ok(None);
    }
    Ok(Some(downbeat_f_of(&grid, truth)?))
}

/// Where the grid has no beat at the downbeat [`one_bar_click`]'s user names but lies on the
/// off-beats there (halfway between two of its beats, within a quarter of their gap): the beat
/// F and downbeat F after that user moves the beats half a beat there
/// ([`cutscore_analysis::half_beat`], the editor's ½ beat; `analyse_with` analyses the song with
/// the beats moved around the times given) and then gives the bar line. `None` where the grid
/// has a beat there, or lies elsewhere.
fn half_beat_click(
    decoded: &cutscore_analysis::TrackAnalysis,
    truth: &SongTruth,
    analyse_with: impl FnOnce(&[f64]) -> cutscore_analysis::TrackAnalysis,
) -> anyhow::Result<Option<(f64, f64)>> {
    let Some(bar_line) = first_scored_downbeat(truth) else {
        return Ok(None);
    };
    let beats = &decoded.grid.beats;
    let after = beats.partition_point(|&t| t < bar_line);
    let (Some(&before), Some(&next)) = (after.checked_sub(1).map(|i| &beats[i]), beats.get(after))
    else {
        return Ok(None);
    };
    let off_beat =
        (bar_line - 0.5 * (before + next)).abs() <= given_bar_line::TOLERANCE * (next - before);
    if given_bar_line::beat_at(&decoded.grid, bar_line).is_ok() || !off_beat {
        return Ok(None);
    }
    let mut grid = analyse_with(&[bar_line]).grid;
    // Where the moved beats still have none there, the bars stay as the tracker counted them.
    let _ = given_bar_line::count_bars_from(&mut grid, &mut [], bar_line);
    let (beats, downbeat_f) = beat_and_downbeat_f(&grid, truth)?;
    Ok(Some((beats.f_measure, downbeat_f)))
}

/// The beat scores and the downbeat F of `grid` against `truth`.
fn beat_and_downbeat_f(
    grid: &BeatGrid,
    truth: &SongTruth,
) -> anyhow::Result<(metrics::BeatScores, f64)> {
    Ok((
        metrics::evaluate(&truth.beats, &grid.beats)?,
        downbeat_f_of(grid, truth)?,
    ))
}

/// The downbeat F of `grid`'s bar lines against `truth`.
fn downbeat_f_of(grid: &BeatGrid, truth: &SongTruth) -> anyhow::Result<f64> {
    let downbeats: Vec<f64> = grid.bar_starts().iter().map(|&i| grid.beats[i]).collect();
    Ok(metrics::downbeat_f_measure(&truth.downbeats, &downbeats)?)
}

/// Median signed distance from each reference beat to the nearest estimate within a third of
/// the reference's beat period (0 when none is that near).
fn median_offset(reference: &[f64], estimated: &[f64]) -> f64 {
    let mut offsets: Vec<f64> = reference
        .windows(2)
        .filter_map(|w| {
            let i = estimated.partition_point(|&e| e < w[0]);
            let nearest = [i.wrapping_sub(1), i]
                .into_iter()
                .filter_map(|j| estimated.get(j))
                .map(|&e| e - w[0])
                .min_by(|a, b| a.abs().total_cmp(&b.abs()))?;
            (nearest.abs() < (w[1] - w[0]) / 3.0).then_some(nearest)
        })
        .collect();
    if offsets.is_empty() {
        return 0.0;
    }
    offsets.sort_by(f64::total_cmp);
    offsets[offsets.len() / 2]
}

/// What the streaming tracker and the plugin's capture score on a song.
struct StreamingScores {
    f: f64,
    downbeat_f: f64,
    capture_downbeat_f: f64,
    host_capture_downbeat_f: f64,
}

/// Beat F and downbeat F of the streaming tracker on `song`, fed in 512-frame blocks, and the
/// downbeat F of the plugin's capture: the same beats, their features computed as each beat
/// completes, the bar lines placed over all of them at the end (`bar_phase::place_bars`, as
/// the plugin does after every beat), in the meter most beats were reported in; without a
/// host's bar lines, and in a DAW project whose grid is the song's (the host's bar line at the
/// song's start, its tempo `true_bpm`, as the plugin's capture takes them).
fn score_streaming(
    model: &BeatModel,
    song: &ScoredSong,
    true_bpm: f64,
    counted_at: Option<TempoHint>,
) -> anyhow::Result<StreamingScores> {
    let mut analyzer = StreamingAnalyzer::with_model(model);
    analyzer.prepare(512, song.sample_rate)?;
    analyzer.count_at(counted_at);
    let mut grid = BeatGrid::empty(0.0);
    let mut log_odds = Vec::new();
    let mut features = Vec::new();
    let mut row = vec![0.0f32; BEAT_FEATURES];
    let mut meters = [0usize; 5];
    let mut take = |analyzer: &mut StreamingAnalyzer, finished: bool| -> anyhow::Result<()> {
        while let Some(beat) = analyzer.poll_beat() {
            grid.beats.push(beat.time_s);
            grid.beat_in_bar.push(beat.beat_in_bar);
            meters[usize::from(beat.meter.min(4))] += 1;
            log_odds.push(beat.downbeat_log_odds);
        }
        // The meter most beats were reported in.
        grid.meter = (1..=4u8)
            .max_by_key(|&m| meters[usize::from(m)])
            .unwrap_or(4);
        grid.duration_s = analyzer.duration_s();
        let complete = if finished {
            grid.len()
        } else {
            grid.len().saturating_sub(1)
        };
        for beat in features.len() / BEAT_FEATURES..complete {
            analyzer.features_into(&grid, beat, &mut row)?;
            features.extend_from_slice(&row);
        }
        Ok(())
    };
    for block in song.mono.chunks(512) {
        analyzer.push(block)?;
        take(&mut analyzer, false)?;
    }
    analyzer.finish()?;
    take(&mut analyzer, true)?;
    let (beats, downbeat_f) = beat_and_downbeat_f(&grid, &song.truth)?;
    let (mut hosted, mut hosted_features) = (grid.clone(), features.clone());
    bar_phase::place_bars(&mut grid, &mut features, &log_odds, None);
    let host = bar_phase::host_tempo_agrees(analyzer.tempo_bpm(), true_bpm)
        .then_some(bar_phase::BarAnchor::SONG_START);
    bar_phase::place_bars(&mut hosted, &mut hosted_features, &log_odds, host);
    Ok(StreamingScores {
        f: beats.f_measure,
        downbeat_f,
        capture_downbeat_f: downbeat_f_of(&grid, &song.truth)?,
        host_capture_downbeat_f: downbeat_f_of(&hosted, &song.truth)?,
    })
}

fn eval(args: EvalArgs) -> anyhow::Result<()> {
    let model = match &args.model {
        Some(path) => beat_file::read(path)?,
        None => beat_model::shipped().clone(),
    };
    let songs = read_folder(&args.dir)?;
    let scores = songs
        .iter()
        .map(|song| {
            let tempo = if args.tempo_hint || args.host_tempo {
                let bpm = steady_tempo(&song.truth.beats).unwrap_or(0.0);
                if args.host_tempo {
                    TempoSource::Host(bpm)
                } else {
                    TempoSource::Given(TempoHint::new(bpm)?)
                }
            } else {
                TempoSource::Heard
            };
            let analyse_with = |half_beats_s: &[f64]| {
                analyze_frames_at(&model, &song.frames, song.duration_s, tempo, half_beats_s)
            };
            let decoded = match &args.activations {
                Some(dir) => cutscore_analysis::analyze_activations(
                    &song.frames,
                    &read_activations(dir, song)?,
                    song.duration_s,
                ),
                None => analyse_with(&[]),
            };
            let clicked = one_bar_click(&decoded, &song.truth)?;
            let half_clicked = match args.activations {
                None => half_beat_click(&decoded, &song.truth, analyse_with)?,
                Some(_) => None,
            };
            let mut scores = score_decoded(&song.name, decoded, &song.truth)?;
            scores.one_click_downbeat_f = clicked;
            scores.half_beat_click_f = half_clicked.map(|c| c.0);
            scores.half_beat_click_downbeat_f = half_clicked.map(|c| c.1);
            // What taking the editor's ½× offer gives: the grid decoded at the tempo offered.
            if let Some(bpm) = scores.half_tempo_bpm.filter(|_| args.activations.is_none()) {
                let given = TempoSource::Given(TempoHint::new(bpm)?);
                let at_half = analyze_frames_at(&model, &song.frames, song.duration_s, given, &[]);
                let (beats, downbeat_f) = beat_and_downbeat_f(&at_half.grid, &song.truth)?;
                scores.half_tempo_f = Some(beats.f_measure);
                scores.half_tempo_downbeat_f = Some(downbeat_f);
            }
            if args.streaming {
                let counted_at = args
                    .tempo_hint
                    .then(|| TempoHint::new(scores.true_bpm))
                    .transpose()?;
                let streamed = score_streaming(&model, song, scores.true_bpm, counted_at)
                    .with_context(|| format!("{}: the streaming tracker", song.name))?;
                scores.streaming_f = Some(streamed.f);
                scores.streaming_downbeat_f = Some(streamed.downbeat_f);
                scores.capture_downbeat_f = Some(streamed.capture_downbeat_f);
                scores.host_capture_downbeat_f = Some(streamed.host_capture_downbeat_f);
            }
            Ok(scores)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&scores)?);
        return Ok(());
    }
    let optional = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.3}"));
    println!(
        "{:<32} {:>6} {:>6} {:>5} {:>6} {:>6} {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6} {:>6}",
        "song",
        "bpm",
        "found",
        "meter",
        "F",
        "CMLt",
        "AMLt",
        "DbF",
        "ms",
        "sF",
        "sDbF",
        "cDbF",
        "hcDbF"
    );
    for s in &scores {
        println!(
            "{:<32} {:>6.1} {:>6.1} {:>2}/{:<2} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>6.0} | {:>6} {:>6} {:>6} {:>6}",
            s.name,
            s.true_bpm,
            s.tempo_bpm,
            s.meter,
            s.true_meter,
            s.f,
            s.cml_t,
            s.aml_t,
            s.downbeat_f,
            s.offset_ms,
            optional(s.streaming_f),
            optional(s.streaming_downbeat_f),
            optional(s.capture_downbeat_f),
            optional(s.host_capture_downbeat_f)
        );
    }
    let n = scores.len() as f64;
    let mean = |f: &dyn Fn(&SongScores) -> f64| scores.iter().map(f).sum::<f64>() / n;
    let streaming_mean = |f: fn(&SongScores) -> Option<f64>| {
        let values: Vec<f64> = scores.iter().filter_map(f).collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    println!(
        "{:<32} {:>6} {:>6.2} {:>5} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>6} | {:>6} {:>6} {:>6} {:>6}",
        "mean (tempo: share within 4 %)",
        "",
        mean(&|s| s.tempo_ok as u8 as f64),
        "",
        mean(&|s| s.f),
        mean(&|s| s.cml_t),
        mean(&|s| s.aml_t),
        mean(&|s| s.downbeat_f),
        "",
        optional(streaming_mean(|s| s.streaming_f)),
        optional(streaming_mean(|s| s.streaming_downbeat_f)),
        optional(streaming_mean(|s| s.capture_downbeat_f)),
        optional(streaming_mean(|s| s.host_capture_downbeat_f)),
    );
    if !(args.tempo_hint || args.host_tempo) {
        print_offers(&scores);
    }
    print_bar_clicks(&scores);
    println!("beat model {}, {} songs", model.info.model_id, scores.len());
    Ok(())
}

/// How the editor's ½× offer (`TrackAnalysis::half_tempo_bpm`) fares: on which songs it is
/// made, where it is right, and the mean F and downbeat F if every offer were taken (`--json`
/// gives each song's, to count the rest).
fn print_offers(scores: &[SongScores]) {
    let offered: Vec<&SongScores> = scores
        .iter()
        .filter(|s| s.half_tempo_bpm.is_some())
        .collect();
    let doubled = scores.iter().filter(|s| s.doubled()).count();
    let doubled_offered = offered.iter().filter(|s| s.doubled()).count();
    println!(
        "½× offered on {} of {} songs, at the true tempo on {}; found at twice their tempo: {}, \
         offered on {}; found at their tempo: {}, offered on {}",
        offered.len(),
        scores.len(),
        offered.iter().filter(|s| s.offer_right()).count(),
        doubled,
        doubled_offered,
        scores.iter().filter(|s| s.tempo_ok).count(),
        offered.iter().filter(|s| s.tempo_ok).count(),
    );
    let taken: Vec<(f64, f64)> = scores
        .iter()
        .map(|s| {
            (
                s.half_tempo_f.unwrap_or(s.f),
                s.half_tempo_downbeat_f.unwrap_or(s.downbeat_f),
            )
        })
        .collect();
    if taken.is_empty() || offered.iter().any(|s| s.half_tempo_f.is_none()) {
        return;
    }
    let n = taken.len() as f64;
    println!(
        "every offer taken: F {:.3}, downbeat F {:.3}",
        taken.iter().map(|t| t.0).sum::<f64>() / n,
        taken.iter().map(|t| t.1).sum::<f64>() / n,
    );
}

/// What one bar line given by the user ([`one_bar_click`]) does to the downbeats: on how many
/// songs the grid has a beat to count from and the bars move, the mean downbeat F after it
/// (as found where the click cannot be made), and the songs it makes worse.
fn print_bar_clicks(scores: &[SongScores]) {
    let clicked: Vec<(&SongScores, f64)> = scores
        .iter()
        .filter_map(|s| s.one_click_downbeat_f.map(|f| (s, f)))
        .collect();
    let n = scores.len().max(1) as f64;
    let mean = scores
        .iter()
        .map(|s| s.one_click_downbeat_f.unwrap_or(s.downbeat_f))
        .sum::<f64>()
        / n;
    let moved = clicked.iter().filter(|(s, f)| *f != s.downbeat_f).count();
    let worse: Vec<String> = clicked
        .iter()
        .filter(|(s, f)| *f < s.downbeat_f - 0.02)
        .map(|(s, f)| format!("{} {:.3} -> {f:.3}", s.name, s.downbeat_f))
        .collect();
    println!(
        "one bar line given at the first true downbeat from {:.0} s: a beat there on {} of {} \
         songs, changing its downbeat F on {moved}; mean downbeat F {mean:.3}; worse by more \
         than 0.02 on {}{}",
        metrics::MIN_BEAT_TIME_S,
        clicked.len(),
        scores.len(),
        worse.len(),
        listed(&worse)
    );
    print_half_beat_clicks(scores);
}

/// What moving the beats half a beat before the bar line ([`half_beat_click`]) adds to
/// [`print_bar_clicks`]: on how many songs the user would, the mean beat F and downbeat F with
/// both clicks (one click's where only the bar line is given, as found where neither can be),
/// and the songs either makes worse.
fn print_half_beat_clicks(scores: &[SongScores]) {
    let n = scores.len().max(1) as f64;
    let clicked: Vec<&SongScores> = scores
        .iter()
        .filter(|s| s.half_beat_click_f.is_some())
        .collect();
    let f = scores
        .iter()
        .map(|s| s.half_beat_click_f.unwrap_or(s.f))
        .sum::<f64>()
        / n;
    let downbeat_f = scores
        .iter()
        .map(|s| {
            s.half_beat_click_downbeat_f
                .or(s.one_click_downbeat_f)
                .unwrap_or(s.downbeat_f)
        })
        .sum::<f64>()
        / n;
    let worse: Vec<String> = clicked
        .iter()
        .filter_map(|s| {
            let (f, db) = (s.half_beat_click_f?, s.half_beat_click_downbeat_f?);
            (f < s.f - 0.02 || db < s.downbeat_f - 0.02).then(|| {
                format!(
                    "{} F {:.3} -> {f:.3}, downbeat F {:.3} -> {db:.3}",
                    s.name, s.f, s.downbeat_f
                )
            })
        })
        .collect();
    println!(
        "with ½ beat first where the grid lies on the off-beats there: on {} of {} songs; mean F \
         {f:.3}, mean downbeat F {downbeat_f:.3}; worse by more than 0.02 on {}{}",
        clicked.len(),
        scores.len(),
        worse.len(),
        listed(&worse)
    );
}

/// `": a, b"` for the songs `names`, nothing for none.
fn listed(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(": {}", names.join(", "))
    }
}

/// Renders (or reads) every training song, two at a time.
fn build_examples(args: &TrainArgs) -> anyhow::Result<Vec<BeatExample>> {
    let soundfont = if args.gm > 0 {
        Some(gm_songs::load_soundfont(&args.soundfont)?)
    } else {
        None
    };
    let jobs: Vec<(u64, bool)> = (0..args.synth as u64)
        .map(|i| (args.seed + i, false))
        .chain((0..args.gm as u64).map(|i| (args.seed + args.synth as u64 + i, true)))
        .collect();
    let bar = progress(jobs.len() as u64, "songs");
    let render = |&(seed, gm): &(u64, bool)| -> anyhow::Result<BeatExample> {
        let spec = SongSpec::random(seed);
        let song = match (&soundfont, gm) {
            (Some(sf), true) => gm_songs::render_gm(&spec, sf, seed)?,
            _ => cutscore_synth::render(&spec)?,
        };
        let name = format!("{}{seed}", if gm { "gm" } else { "synth" });
        let example = BeatExample::from_audio(
            name,
            &song.mono(),
            song.sample_rate,
            song.truth.beats.clone(),
            song.truth.downbeats.clone(),
        )?;
        bar.inc(1);
        Ok(example)
    };
    let cached = |job: &(u64, bool)| -> anyhow::Result<BeatExample> {
        let Some(dir) = &args.cache else {
            return render(job);
        };
        let name = format!("{}{}", if job.1 { "gm" } else { "synth" }, job.0);
        if let Some(example) = read_cached(dir, &name) {
            bar.inc(1);
            return Ok(example);
        }
        let example = render(job)?;
        write_cached(dir, &example)?;
        Ok(example)
    };
    // Two threads, each taking every other song, so slow SoundFont songs are shared.
    let halves: Vec<anyhow::Result<Vec<BeatExample>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|half| {
                let jobs = &jobs;
                let cached = &cached;
                scope.spawn(move || jobs.iter().skip(half).step_by(2).map(cached).collect())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a render thread panicked")))
            })
            .collect()
    });
    bar.finish_and_clear();
    let mut examples = Vec::new();
    for half in halves {
        examples.extend(half?);
    }
    examples.extend(read_examples(&args.dir)?);
    if examples.len() < 4 {
        bail!("{} training songs; expected at least 4", examples.len());
    }
    Ok(examples)
}

/// The songs of `dirs` as training examples.
fn read_examples(dirs: &[PathBuf]) -> anyhow::Result<Vec<BeatExample>> {
    let mut examples = Vec::new();
    for dir in dirs {
        for song in read_folder(dir)? {
            examples.push(BeatExample {
                name: song.name,
                mel: song.frames.iter().map(|f| f.mel).collect(),
                beats: song.truth.beats,
                downbeats: song.truth.downbeats,
            });
        }
    }
    Ok(examples)
}

/// A cached example: `NAME.mel` (little-endian f32, 40 per frame) and `NAME.beats.json`.
fn read_cached(dir: &Path, name: &str) -> Option<BeatExample> {
    let bytes = std::fs::read(dir.join(format!("{name}.mel"))).ok()?;
    let times: (Vec<f64>, Vec<f64>) =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.beats.json"))).ok()?)
            .ok()?;
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let mel = values
        .chunks_exact(INPUT_BANDS)
        .map(|c| c.try_into().ok())
        .collect::<Option<Vec<[f32; INPUT_BANDS]>>>()?;
    Some(BeatExample {
        name: name.to_owned(),
        mel,
        beats: times.0,
        downbeats: times.1,
    })
}

fn write_cached(dir: &Path, example: &BeatExample) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes: Vec<u8> = example
        .mel
        .iter()
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    // The beats last, so a half-written cache entry is never read.
    std::fs::write(dir.join(format!("{}.mel", example.name)), bytes)?;
    std::fs::write(
        dir.join(format!("{}.beats.json", example.name)),
        serde_json::to_vec(&(&example.beats, &example.downbeats))?,
    )?;
    Ok(())
}

fn progress(len: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{{len}} {unit} {{msg}} [{{elapsed_precise}} < {{eta_precise}}]"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn train(args: TrainArgs) -> anyhow::Result<()> {
    if !(args.offbeat_weight.is_finite() && args.offbeat_weight >= 0.0) {
        bail!(
            "--offbeat-weight {}: expected a finite weight of 0 or more (1 weighs the \"and\"s as \
             all other frames)",
            args.offbeat_weight
        );
    }
    let started = Instant::now();
    let examples = build_examples(&args)?;
    let seconds: f64 = examples.iter().map(BeatExample::seconds).sum();
    // Every tenth song is held out (the synthetic and SoundFont songs interleave by seed).
    let (held_out, training): (Vec<_>, Vec<_>) = examples
        .into_iter()
        .enumerate()
        .partition(|(i, _)| i % 10 == 9);
    let held_out: Vec<BeatExample> = held_out.into_iter().map(|(_, e)| e).collect();
    let training: Vec<BeatExample> = training.into_iter().map(|(_, e)| e).collect();
    let recorded = read_examples(&args.recorded)?;
    let recorded_seconds: f64 = recorded.iter().map(BeatExample::seconds).sum();
    log::info!(
        "{} training songs and {} recordings ({:.0} minutes, drawn {:.0} % of the time), {} held \
         out, {:.0} minutes in all, built in {:.0} s",
        training.len(),
        recorded.len(),
        recorded_seconds / 60.0,
        if recorded.is_empty() {
            0.0
        } else {
            100.0 * args.recorded_share
        },
        held_out.len(),
        (seconds + recorded_seconds) / 60.0,
        started.elapsed().as_secs_f64()
    );
    let mut init = args.init.as_deref().map(beat_file::read).transpose()?;
    // The model trained on, as the provenance names it: the one read, even when widened.
    let base_model = init.as_ref().map(|m| m.info.model_id.clone());
    if let (Some(model), Some(channels)) = (&init, args.channels)
        && channels != model.config().channels
    {
        let from = model.config().channels;
        init = Some(beat_widen::widen(model, channels, args.seed)?);
        log::info!("widened the model from {from} to {channels} channels");
    }
    let config = match &init {
        Some(model) => model.config().clone(),
        None => BeatModelConfig {
            channels: args.channels.unwrap_or(BeatModelConfig::default().channels),
            centred_up_to: args.centred_up_to,
            ..BeatModelConfig::default()
        },
    };
    config.validate()?;
    let selected = device::select(args.device)?;
    let (net, varmap) = net::trainable(&config, init.as_ref(), &selected.device)?;
    let settings = TrainSettings {
        learning_rate: args.lr,
        batch: args.batch,
        excerpt_frames: args.excerpt,
        offbeat_weight: args.offbeat_weight,
        ..TrainSettings::default()
    };
    let mut trainer = BeatTrainer::new(net, varmap, selected.device.clone(), settings)?;
    let mut rng = StdRng::seed_from_u64(args.seed ^ 0xbea7);
    let mut metrics = BeatTrainingMetrics::default();
    let provenance = BeatProvenance {
        songs: training.len() + recorded.len(),
        seconds: training.iter().map(BeatExample::seconds).sum::<f64>() + recorded_seconds,
        base_model,
        command: Some(std::env::args().collect::<Vec<_>>().join(" ")),
        created: None,
    };
    if !(0.0..=1.0).contains(&args.recorded_share) {
        bail!(
            "--recorded-share {} is not between 0 and 1",
            args.recorded_share
        );
    }
    let training = TrainingSet::with_share(training, recorded, args.recorded_share)?;
    let mut best = f32::INFINITY;
    let bar = progress(args.steps as u64, "steps");
    let mut running = 0.0f32;
    let mut since = 0usize;
    for step in 0..args.steps {
        trainer.set_learning_rate(learning_rate(args.lr, step, args.steps));
        running += trainer.step(&training, &mut rng)?;
        since += 1;
        bar.inc(1);
        let last = step + 1 == args.steps;
        if (step + 1) % args.eval_every.max(1) != 0 && !last {
            continue;
        }
        let weights = net::varmap_weights(&trainer.varmap)?;
        let model = BeatModel::from_weights(
            config.clone(),
            weights.clone(),
            metrics.clone(),
            provenance.clone(),
        )?;
        let (beat_f, downbeat_f) = held_out_f(&model, &held_out)?;
        let epoch = BeatEpoch {
            epoch: step + 1,
            train_loss: running / since as f32,
            val_loss: trainer.loss_on(&held_out)?,
            val_beat_f: beat_f,
            val_downbeat_f: downbeat_f,
        };
        let line = format!(
            "step {:>6}: train loss {:.4}, held-out loss {:.4}, beat F {:.3}, downbeat F {:.3}",
            epoch.epoch, epoch.train_loss, epoch.val_loss, beat_f, downbeat_f
        );
        // A hidden bar (output not a terminal, e.g. a log file) prints nothing.
        if bar.is_hidden() {
            eprintln!("{line}");
        } else {
            bar.println(line);
        }
        running = 0.0;
        since = 0;
        let val_loss = epoch.val_loss;
        metrics.epochs.push(epoch);
        // The held-out loss decides: the F-measures of easy held-out songs sit near 1 and
        // jump with a beat or two, the loss moves smoothly.
        if val_loss < best {
            best = val_loss;
            metrics.best_epoch = Some(step + 1);
        }
        metrics.wall_seconds = Some(started.elapsed().as_secs_f64());
        if metrics.best_epoch == Some(step + 1) {
            beat_file::save(&args.out, &config, &weights, &metrics, &provenance)?;
        } else {
            // Keep the best weights; record the newer metrics with them.
            let kept = beat_file::read(&args.out)?;
            beat_file::save(&args.out, &config, &kept.weights(), &metrics, &provenance)?;
        }
    }
    bar.finish_and_clear();
    let kept = beat_file::read(&args.out)?;
    println!(
        "wrote {} (model {}, step {} of {}, {:.0} s)",
        args.out.display(),
        kept.info.model_id,
        metrics.best_epoch.unwrap_or(0),
        args.steps,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Mean beat and downbeat F of the tracker on the held-out songs.
fn held_out_f(model: &BeatModel, songs: &[BeatExample]) -> anyhow::Result<(f32, f32)> {
    let mut beat = 0.0;
    let mut down = 0.0;
    for song in songs {
        let frames: Vec<Frame> = song
            .mel
            .iter()
            .map(|m| Frame {
                mel: *m,
                ..Frame::default()
            })
            .collect();
        let truth = SongTruth {
            beats: song.beats.clone(),
            downbeats: song.downbeats.clone(),
            beat_in_bar: vec![0; song.beats.len()],
            meter: 4,
            bpm: 0.0,
            sections: Vec::new(),
            drums_enter_s: None,
            duration_s: song.seconds(),
        };
        let s = score_frames(model, &song.name, &frames, song.seconds(), &truth)?;
        beat += s.f;
        down += s.downbeat_f;
    }
    let n = songs.len().max(1) as f64;
    Ok(((beat / n) as f32, (down / n) as f32))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peak at 1 s in 100 fps activations lands on the front-end frame nearest 1 s, whole,
    /// and nowhere else (the frames past the file's 3 s end included).
    #[test]
    fn resampling_keeps_a_peak_on_its_nearest_frame() {
        let mut beat = vec![0.0f32; 300];
        beat[100] = 0.9;
        let file = ActivationsFile {
            fps: 100.0,
            first_s: 0.0,
            beat,
            downbeat: vec![0.0; 300],
        };
        let frames = (3.5 * frontend::frame_rate()) as usize;
        let out = resample(&file, frames);
        assert_eq!(out.len(), frames);
        let nearest = frontend::frame_index_at(1.0);
        assert_eq!(out[nearest].beat, 0.9);
        let elsewhere: Vec<usize> = (0..frames)
            .filter(|&k| k != nearest && out[k].beat > 0.0)
            .collect();
        assert!(elsewhere.is_empty(), "peak copied to frames {elsewhere:?}");
        assert!(out.iter().all(|a| a.downbeat == 0.0));
    }
}
