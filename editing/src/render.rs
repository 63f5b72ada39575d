//! Rendering an edit: the kept audio, in order, with a crossfade at each join.
//!
//! Kept beats form runs; a run starting at the first beat also keeps any audio before it (a
//! pickup), and one ending at the last beat keeps the audio to the end of the track. At a join
//! the outgoing run plays on for half a crossfade past its end while the incoming run starts
//! half a crossfade early, mixed by the law [`crossfade`](super::crossfade) picks from the two
//! sides' correlation (equal-gain for correlated material, equal-power for uncorrelated), and
//! never louder than the source's own peak. The crossfade is centred on the join, so the output is exactly as long as the kept audio. Its length is adapted to the
//! join: the requested length (30 ms by default), at most a quarter of the median beat, half
//! of each run, and the removed audio available on either side.

use super::crossfade::mix_join;
use cutscore_core::audio::Audio;
use cutscore_core::edit::Edit;
use cutscore_core::grid::BeatGrid;

/// Crossfade length used unless told otherwise.
pub const DEFAULT_CROSSFADE_S: f64 = 0.030;

/// Why an edit could not be rendered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RenderError {
    #[error("the edit is for {edit} beats but the beat grid has {grid}")]
    BeatCount { edit: usize, grid: usize },
    #[error("the beat grid reaches {grid_s:.3} s but the audio is only {audio_s:.3} s long")]
    GridBeyondAudio { grid_s: f64, audio_s: f64 },
}

/// One join as rendered.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RenderedJoin {
    /// Source time where the cut starts (the end of the last kept beat before it).
    pub from_s: f64,
    /// Source time where playback resumes.
    pub to_s: f64,
    /// Time of the join in the output.
    pub output_s: f64,
    /// Crossfade length actually used.
    pub crossfade_s: f64,
    /// Correlation of the two sides over the crossfade (1: the same material, 0: unrelated).
    pub correlation: f32,
    /// The correlation the crossfade law was built for: the measured one, or nearer 1
    /// (equal-gain) where the measured law would have exceeded the source's peak.
    pub law: f32,
}

/// The rendered audio and where its joins fell.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub audio: Audio,
    pub joins: Vec<RenderedJoin>,
}

/// Source frame ranges `[start, end)` of the kept runs of `edit`.
pub fn kept_runs(
    audio: &Audio,
    grid: &BeatGrid,
    edit: &Edit,
) -> Result<Vec<(usize, usize)>, RenderError> {
    if edit.source_beats() != grid.len() {
        return Err(RenderError::BeatCount {
            edit: edit.source_beats(),
            grid: grid.len(),
        });
    }
    if let Some(&last) = grid.beats.last()
        && last > audio.seconds()
    {
        return Err(RenderError::GridBeyondAudio {
            grid_s: last,
            audio_s: audio.seconds(),
        });
    }
    let n = grid.len();
    let frame = |beat: usize| {
        if beat == 0 {
            0
        } else if beat >= n {
            audio.frames()
        } else {
            audio.frame_at(grid.beats[beat])
        }
    };
    let mut runs = Vec::new();
    let mut next = 0;
    for span in edit.removed() {
        if span.start > next {
            runs.push((frame(next), frame(span.start)));
        }
        next = span.end;
    }
    if next < n || n == 0 {
        runs.push((frame(next), audio.frames()));
    }
    Ok(runs.into_iter().filter(|(a, b)| b > a).collect())
}

/// Renders `edit` of `audio` (whose beats are `grid`) with crossfades of about `crossfade_s`.
pub fn render(
    audio: &Audio,
    grid: &BeatGrid,
    edit: &Edit,
    crossfade_s: f64,
) -> Result<Rendered, RenderError> {
    let runs = kept_runs(audio, grid, edit)?;
    let channels = usize::from(audio.channels);
    let rate = f64::from(audio.sample_rate);
    let beat_frames = grid
        .beat_period()
        .map_or(usize::MAX, |p| (p * rate) as usize);
    // Half-length of the crossfade at the join before each run (0 for the first).
    let halves: Vec<usize> = (0..runs.len())
        .map(|k| {
            if k == 0 {
                return 0;
            }
            let (prev, run) = (runs[k - 1], runs[k]);
            let wanted = (crossfade_s.max(0.0) * rate / 2.0) as usize;
            wanted
                .min(beat_frames / 8)
                .min((prev.1 - prev.0) / 4)
                .min((run.1 - run.0) / 4)
                .min(run.0.saturating_sub(prev.1))
        })
        .collect();
    let total: usize = runs.iter().map(|(a, b)| b - a).sum();
    let ceiling = audio.samples.iter().fold(0f32, |m, s| m.max(s.abs()));
    let mut out = Vec::with_capacity(total * channels);
    let mut joins = Vec::with_capacity(runs.len().saturating_sub(1));
    for (k, &(start, end)) in runs.iter().enumerate() {
        let head = halves[k];
        let tail = halves.get(k + 1).copied().unwrap_or(0);
        if k > 0 {
            let prev_end = runs[k - 1].1;
            let output_s = (out.len() / channels + head) as f64 / rate;
            let outgoing =
                &audio.samples[(prev_end - head) * channels..(prev_end + head) * channels];
            let incoming = &audio.samples[(start - head) * channels..(start + head) * channels];
            let mix = mix_join(outgoing, incoming, channels, ceiling, &mut out);
            joins.push(RenderedJoin {
                from_s: prev_end as f64 / rate,
                to_s: start as f64 / rate,
                output_s,
                crossfade_s: 2.0 * head as f64 / rate,
                correlation: mix.correlation,
                law: mix.law,
            });
        }
        out.extend_from_slice(&audio.samples[(start + head) * channels..(end - tail) * channels]);
    }
    Ok(Rendered {
        audio: Audio {
            sample_rate: audio.sample_rate,
            channels: audio.channels,
            samples: out,
        },
        joins,
    })
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    const RATE: u32 = 44_100;

    /// Stereo audio from a per-frame function, with a 120 BPM grid whose first beat is at 0.1 s.
    fn track(seconds: f64, f: impl Fn(usize) -> f32) -> (Audio, BeatGrid) {
        let frames = (seconds * f64::from(RATE)) as usize;
        let samples = (0..frames).flat_map(|i| [f(i), 0.5 * f(i)]).collect();
        let audio = Audio::new(RATE, 2, samples).unwrap();
        let beats = ((seconds - 0.1) / 0.5) as usize;
        let mut grid = BeatGrid::regular(0.1, 0.5, beats, 4, 0).unwrap();
        grid.duration_s = seconds;
        (audio, grid)
    }

    fn max_step(samples: &[f32], channels: usize) -> f32 {
        samples
            .iter()
            .step_by(channels)
            .zip(samples.iter().step_by(channels).skip(1))
            .map(|(a, b)| (b - a).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn sine_joins_have_no_click_and_a_hard_cut_would() {
        let freq = 437.0 / RATE as f32 * std::f32::consts::TAU;
        let (audio, grid) = track(10.0, |i| (i as f32 * freq).sin() * 0.8);
        let edit = Edit::new(grid.len(), [(5, 8)]).unwrap();
        let source_step = max_step(&audio.samples, 2);
        let smooth = render(&audio, &grid, &edit, DEFAULT_CROSSFADE_S).unwrap();
        assert!(max_step(&smooth.audio.samples, 2) <= 1.45 * source_step);
        assert!((smooth.joins[0].crossfade_s - 0.030).abs() < 1e-3);
        let hard = render(&audio, &grid, &edit, 0.0).unwrap();
        assert!(
            max_step(&hard.audio.samples, 2) > 3.0 * source_step,
            "the test signal must click without a crossfade"
        );
    }

    #[test]
    fn a_loop_cut_on_its_own_period_joins_seamlessly_at_full_scale() {
        // A full-scale loop one beat long: cutting whole beats joins it to itself, where an
        // equal-power fade would rise 3 dB above full scale.
        let period = RATE as usize / 2;
        let (audio, grid) = track(10.0, |i| {
            let x = (i % period) as f32 / period as f32;
            (x * std::f32::consts::TAU * 3.0).sin() * (1.0 - x) + 0.0
        });
        let edit = Edit::new(grid.len(), [(5, 9)]).unwrap();
        let rendered = render(&audio, &grid, &edit, DEFAULT_CROSSFADE_S).unwrap();
        let source_peak = audio.samples.iter().fold(0f32, |m, s| m.max(s.abs()));
        let peak = rendered
            .audio
            .samples
            .iter()
            .fold(0f32, |m, s| m.max(s.abs()));
        assert!(
            peak <= source_peak,
            "peak {peak} over the source's {source_peak}"
        );
        let join = rendered.joins[0];
        assert!(join.correlation > 0.999 && join.law > 0.999, "{join:?}");
        let worst = rendered
            .audio
            .samples
            .iter()
            .zip(&audio.samples)
            .map(|(r, s)| (r - s).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1e-4, "the loop continues unchanged: off by {worst}");
    }

    #[test]
    fn noise_keeps_its_power_through_the_crossfade() {
        // Gaussian noise, whose peaks stand well above its level as music's do.
        let mut rng = StdRng::seed_from_u64(9);
        let noise: Vec<f32> = (0..10 * RATE as usize)
            .map(|_| {
                // Box-Muller.
                let (u, v): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random());
                ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos() * 0.1) as f32
            })
            .collect();
        let (audio, grid) = track(10.0, |i| noise[i]);
        let edit = Edit::new(grid.len(), [(4, 8), (10, 12)]).unwrap();
        let rendered = render(&audio, &grid, &edit, 0.040).unwrap();
        let left: Vec<f32> = rendered.audio.samples.iter().step_by(2).copied().collect();
        let rms = |s: &[f32]| (s.iter().map(|x| x * x).sum::<f32>() / s.len() as f32).sqrt();
        let overall = rms(&left);
        for join in &rendered.joins {
            let centre = (join.output_s * f64::from(RATE)) as usize;
            let half = (join.crossfade_s * f64::from(RATE) / 2.0) as usize;
            let db = 20.0 * (rms(&left[centre - half..centre + half]) / overall).log10();
            assert!(db.abs() < 1.0, "crossfade power off by {db} dB");
            assert!(join.correlation.abs() < 0.1 && join.law < 0.1, "{join:?}");
        }
    }

    #[test]
    fn output_is_as_long_as_the_kept_audio_with_joins_where_expected() {
        let (audio, grid) = track(10.0, |i| (i % 100) as f32 / 100.0);
        let edit = Edit::new(grid.len(), [(0, 2), (6, 10)]).unwrap();
        let rendered = render(&audio, &grid, &edit, DEFAULT_CROSSFADE_S).unwrap();
        // Trim of beats 0..2 (0 .. 1.1 s) and a cut of beats 6..10 (3.1 .. 5.1 s).
        let kept =
            audio.frames() - audio.frame_at(1.1) - (audio.frame_at(5.1) - audio.frame_at(3.1));
        assert_eq!(rendered.audio.frames(), kept);
        assert_eq!(
            (rendered.audio.sample_rate, rendered.audio.channels),
            (RATE, 2)
        );
        assert_eq!(rendered.joins.len(), 1);
        let join = rendered.joins[0];
        assert!((join.from_s - 3.1).abs() < 1e-4 && (join.to_s - 5.1).abs() < 1e-4);
        assert!((join.output_s - 2.0).abs() < 1e-4, "{join:?}");
    }

    #[test]
    fn the_identity_edit_renders_the_source_exactly() {
        let (audio, grid) = track(3.0, |i| (i as f32 * 0.01).sin());
        let rendered = render(
            &audio,
            &grid,
            &Edit::identity(grid.len()),
            DEFAULT_CROSSFADE_S,
        )
        .unwrap();
        assert_eq!(rendered.audio, audio);
        assert!(rendered.joins.is_empty());
    }

    #[test]
    fn mismatched_grids_are_refused() {
        let (audio, grid) = track(3.0, |_| 0.0);
        let err = render(&audio, &grid, &Edit::identity(3), 0.03).unwrap_err();
        assert!(matches!(err, RenderError::BeatCount { edit: 3, .. }));
        let short = Audio::new(RATE, 2, vec![0.0; 2 * 1000]).unwrap();
        assert!(matches!(
            render(&short, &grid, &Edit::identity(grid.len()), 0.03),
            Err(RenderError::GridBeyondAudio { .. })
        ));
    }
}
