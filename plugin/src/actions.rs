//! What the editor's buttons do, as plain functions over a [`CaptureSnapshot`] so tests can
//! call them: accept or reject a proposal (one decision appended to the prefs log, the track's
//! analysis saved once), answer a Teach question (one comparison), prepare an audition, render the captured track with an edit, and
//! export markers. [`in_background`] runs one on a thread of its own, so the editor's call
//! returns at once and no lock the analysis thread needs is held while it works.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use cutscore_core::audio::{WavFormat, write_wav};
use cutscore_core::edit::Edit;
use cutscore_core::features::{BEAT_FEATURES, FeatureMatrix};
use cutscore_core::grid::BeatGrid;
use cutscore_core::prefs::{
    Comparison, DECISIONS_FILE, Decision, PrefsContents, PrefsLog, RECORD_VERSION, Record, Side,
    TrackRecord, USER_SOURCE, Undo, Verdict, track_id_of_parts,
};
use cutscore_editing::markers::{edit_list, join_markers, write_markers};
use cutscore_editing::render::{DEFAULT_CROSSFADE_S, render};

use crate::session::{CaptureSnapshot, Finished, Proposal, Session, lock};

/// Bars played on each side of the join in an audition.
pub const AUDITION_BARS: usize = 2;

/// Why an action could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no prefs folder: this platform has no per-user data folder; choose one")]
    NoPrefsFolder,
    #[error(
        "the proposal refers to {expected} beats but the capture has {actual}; wait for the rescoring"
    )]
    StaleProposal { expected: usize, actual: usize },
    #[error(
        "the beats moved under the proposal (the grid was settled over the whole capture); wait for the rescoring"
    )]
    MovedBeats,
    #[error("cannot write to the prefs folder: {0}")]
    Prefs(#[from] cutscore_core::prefs::PrefsError),
    #[error("the edit does not fit the capture: {0}")]
    Edit(String),
    #[error("cannot render: {0}")]
    Render(#[from] cutscore_editing::render::RenderError),
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// The edit a proposal stands for, over `beats` source beats.
pub fn proposal_edit(proposal: &Proposal, beats: usize) -> Result<Edit, ActionError> {
    Edit::new(beats, [(proposal.start, proposal.end)]).map_err(|e| ActionError::Edit(e.to_string()))
}

/// A decision as written to the log: enough to undo it.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    /// The log's path.
    pub log: PathBuf,
    pub track: String,
    pub edit: Edit,
}

/// Appends one decision on `proposal` (made while `shown` were on screen) to the prefs log in
/// `prefs_dir`, saving the analysis of the captured track first.
pub fn decide(
    session: &Session,
    prefs_dir: Option<&Path>,
    beats: usize,
    proposal: &Proposal,
    shown: &[Proposal],
    verdict: Verdict,
) -> Result<Logged, ActionError> {
    let (dir, log, track) = capture_log(session, prefs_dir, beats, &[proposal])?;
    let edit = proposal_edit(proposal, beats)?;
    let shown = shown
        .iter()
        .filter(|p| **p != *proposal)
        .map(|p| proposal_edit(p, beats))
        .collect::<Result<Vec<_>, _>>()?;
    let model = lock(&session.model).model_id.clone();
    log.append(&Record::Decision(Decision {
        v: RECORD_VERSION,
        time: Record::now(),
        track: track.clone(),
        edit: edit.clone(),
        verdict,
        score: Some(proposal.score),
        model: (!model.is_empty()).then_some(model),
        shown,
    }))?;
    session.decisions.fetch_add(1, Ordering::Relaxed);
    Ok(Logged {
        log: dir.join(DECISIONS_FILE),
        track,
        edit,
    })
}

/// Appends the user's answer to "which is better?" about `a` and `b` (`preferred`) to the prefs
/// log in `prefs_dir` as a `comparison` record, saving the capture's analysis first, as
/// [`decide`] does. Returns the log's path.
pub fn compare(
    session: &Session,
    prefs_dir: Option<&Path>,
    beats: usize,
    (a, b): (&Proposal, &Proposal),
    preferred: Side,
) -> Result<PathBuf, ActionError> {
    let (dir, log, track) = capture_log(session, prefs_dir, beats, &[a, b])?;
    log.append(&Record::Comparison(Comparison {
        v: RECORD_VERSION,
        time: Record::now(),
        track,
        a: proposal_edit(a, beats)?,
        b: proposal_edit(b, beats)?,
        preferred,
        confidence: 1.0,
        source: Some(USER_SOURCE.into()),
    }))?;
    session.decisions.fetch_add(1, Ordering::Relaxed);
    Ok(dir.join(DECISIONS_FILE))
}

/// The prefs folder and its log, with the analysis of the capture's first `beats` beats saved
/// in it (once per capture, or again when the capture has grown), and the capture's track id.
/// `proposals` must still stand where they stood when scored: a settle
/// ([`crate::settle`]) moves the beats under a proposal's indices.
fn capture_log<'a>(
    session: &Session,
    prefs_dir: Option<&'a Path>,
    beats: usize,
    proposals: &[&Proposal],
) -> Result<(&'a Path, PrefsLog, String), ActionError> {
    let dir = prefs_dir.ok_or(ActionError::NoPrefsFolder)?;
    // The id's lock is held from the snapshot to the id being fixed, and a settle takes it
    // before the capture's: no settle can fall between the two (see `settle::settle`).
    let mut known = lock(&session.track_id);
    let snapshot = lock(&session.capture).snapshot();
    for proposal in proposals {
        check_current(&snapshot, proposal)?;
    }
    let (track, record) = track_record(&mut known, &snapshot, beats)?;
    // The grid is fixed now: a tempo asked for (½×, 2×) that no settle took never will be.
    let mut capture = lock(&session.capture);
    if capture.epoch == snapshot.epoch {
        capture.drop_recount();
    }
    drop(capture);
    drop(known);
    let log = PrefsLog::create(dir)?;
    log.save_track(&record)?;
    Ok((dir, log, track))
}

/// Whether `proposal`'s beats are where they were when it was scored.
fn check_current(capture: &CaptureSnapshot, proposal: &Proposal) -> Result<(), ActionError> {
    let at = |beat: usize| capture.grid.beats.get(beat).copied();
    let stands = |beat: usize, time_s: f64| at(beat).is_some_and(|t| (t - time_s).abs() < 1e-6);
    if stands(proposal.start, proposal.from_s) && stands(proposal.end, proposal.to_s) {
        Ok(())
    } else {
        Err(ActionError::MovedBeats)
    }
}

/// Appends an undo of the latest decision on `logged`'s edit to the log in `prefs_dir`.
pub fn undo(
    session: &Session,
    prefs_dir: Option<&Path>,
    logged: &Logged,
) -> Result<(), ActionError> {
    let dir = prefs_dir.ok_or(ActionError::NoPrefsFolder)?;
    PrefsLog::create(dir)?.append(&Record::Undo(Undo {
        v: RECORD_VERSION,
        time: Record::now(),
        track: logged.track.clone(),
        edit: logged.edit.clone(),
    }))?;
    let _ = session
        .decisions
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    Ok(())
}

/// The user's decisions and Teach answers already in a prefs folder (0 if it does not exist or
/// cannot be read).
pub fn count_decisions(prefs_dir: Option<&Path>) -> u64 {
    prefs_dir
        .and_then(|dir| PrefsContents::read(dir).ok())
        .map_or(0, |contents| {
            contents
                .records
                .iter()
                .filter(|r| match r {
                    Record::Decision(_) => true,
                    Record::Comparison(c) => c.source.as_deref() == Some(USER_SOURCE),
                    Record::Undo(_) => false,
                })
                .count() as u64
        })
}

/// The id and stored analysis of the first `beats` beats of the capture. A capture keeps one
/// id for all its decisions, however long it has grown by then: the first decision on it
/// hashes the audio up to the end of its beats, and later ones reuse that id (their longer
/// analysis replaces the stored one; see `PrefsLog::save_track`), so they pair.
fn track_record(
    known: &mut Option<(u64, String)>,
    capture: &CaptureSnapshot,
    beats: usize,
) -> Result<(String, TrackRecord), ActionError> {
    let complete = capture.complete_beats();
    if beats > complete || beats < 2 {
        return Err(ActionError::StaleProposal {
            expected: beats,
            actual: complete,
        });
    }
    let grid = capture.grid_prefix(beats);
    let fixed = known
        .as_ref()
        .filter(|(epoch, _)| *epoch == capture.epoch)
        .map(|(_, id)| id.clone());
    let id = fixed.unwrap_or_else(|| {
        let audio = &capture.audio;
        let end = audio.frame_at(grid.duration_s);
        let id = track_id_of_parts(audio.slices(0, end), audio.sample_rate);
        *known = Some((capture.epoch, id.clone()));
        id
    });
    let features = FeatureMatrix::new(beats, capture.features[..beats * BEAT_FEATURES].to_vec())
        .map_err(|e| ActionError::Edit(e.to_string()))?;
    let record = TrackRecord::new(id.clone(), Some("DAW capture".into()), grid, features);
    Ok((id, record))
}

/// The audition of `proposal`: [`AUDITION_BARS`] bars before the cut straight into as many
/// after it, crossfaded as a render would be, interleaved at the capture's rate.
pub fn audition(capture: &CaptureSnapshot, proposal: &Proposal) -> Result<Vec<f32>, ActionError> {
    let beats = capture.complete_beats();
    if proposal.end >= beats {
        return Err(ActionError::StaleProposal {
            expected: proposal.end + 1,
            actual: beats,
        });
    }
    check_current(capture, proposal)?;
    let meter = usize::from(capture.grid.meter.max(1));
    let first = proposal.start.saturating_sub(AUDITION_BARS * meter);
    let last = (proposal.end + AUDITION_BARS * meter).min(beats);
    let full = capture.grid_prefix(last);
    let rate = f64::from(capture.audio.sample_rate);
    let from_frame = (full.beats[first] * rate) as usize;
    let to_frame = ((full.duration_s * rate).ceil() as usize).min(capture.audio.frames());
    let excerpt = capture.audio.excerpt(from_frame, to_frame);
    // Times in the excerpt are from its first frame, and it lasts exactly its frames: whole
    // frames either side, so the grid never reaches past the audio by a rounding.
    let offset = from_frame as f64 / rate;
    let grid = BeatGrid {
        // Never below 0 when the first frame's time rounds a hair above the beat.
        beats: full.beats[first..]
            .iter()
            .map(|t| (t - offset).max(0.0))
            .collect(),
        beat_in_bar: full.beat_in_bar[first..].to_vec(),
        meter: full.meter,
        duration_s: excerpt.seconds(),
    };
    let edit = Edit::new(grid.len(), [(proposal.start - first, proposal.end - first)])
        .map_err(|e| ActionError::Edit(e.to_string()))?;
    Ok(render(&excerpt, &grid, &edit, DEFAULT_CROSSFADE_S)?
        .audio
        .samples)
}

/// Renders `edit` (over `beats` beats) of the capture into a 24-bit WAV at `path`; returns
/// the rendered length in seconds.
pub fn render_to(
    capture: &CaptureSnapshot,
    beats: usize,
    edit: &Edit,
    path: &Path,
) -> Result<f64, ActionError> {
    let grid = renderable(capture, beats)?;
    let rendered = render(&capture.audio.to_audio(), &grid, edit, DEFAULT_CROSSFADE_S)?;
    write_wav(path, &rendered.audio, WavFormat::Int24).map_err(|e| ActionError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(rendered.audio.seconds())
}

/// Writes the joins of `edit` as markers (Audacity labels for `.txt`, REAPER regions for
/// `.csv`), in output time.
pub fn export_markers(
    capture: &CaptureSnapshot,
    beats: usize,
    edit: &Edit,
    score: Option<f32>,
    path: &Path,
) -> Result<(), ActionError> {
    let grid = renderable(capture, beats)?;
    let rendered = render(&capture.audio.to_audio(), &grid, edit, DEFAULT_CROSSFADE_S)?;
    let list = edit_list(
        grid.duration_s,
        rendered.audio.seconds(),
        score,
        &rendered.joins,
        None,
    );
    write_markers(path, &list, &join_markers(&list.joins)).map_err(|e| ActionError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// The grid of the capture's first `beats` beats, ending with the capture (the audio after the
/// last complete beat is kept after the last join).
fn renderable(capture: &CaptureSnapshot, beats: usize) -> Result<BeatGrid, ActionError> {
    if beats > capture.complete_beats() || beats < 2 {
        return Err(ActionError::StaleProposal {
            expected: beats,
            actual: capture.complete_beats(),
        });
    }
    let mut grid = capture.grid_prefix(beats);
    grid.duration_s = capture.audio.seconds().max(grid.duration_s);
    Ok(grid)
}

/// Runs `job` on a thread of its own and leaves its outcome for the editor
/// ([`Session::take_finished`]); while it runs, [`Session::busy`] names it.
pub fn in_background(
    session: &Arc<Session>,
    what: &str,
    job: impl FnOnce(&Session) -> Finished + Send + 'static,
) {
    session.job_started(what);
    let shared = session.clone();
    let spawned = std::thread::Builder::new()
        .name("cutscore-action".into())
        .spawn(move || {
            let finished = job(&shared);
            shared.job_finished(finished);
        });
    if let Err(e) = spawned {
        session.job_finished(Finished::Message(format!(
            "Could not start the {what}: {e}"
        )));
    }
}
