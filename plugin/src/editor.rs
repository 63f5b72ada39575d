//! The plugin window (egui): an overview of the captured track with its bar grid and the
//! proposals drawn as regions, the proposal list, audition / accept / reject, fit to length,
//! render and marker export, and a status line. Everything slow happens elsewhere: scoring and
//! fitting on the worker, the analysis on its thread; the window only reads their results.
//!
//! Audition is allowed while the host's transport is stopped: the plugin then plays the bars
//! before the cut straight into the bars after it in place of its input. When the transport
//! runs, the output is always the input, bit for bit.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use cutscore_core::edit::Edit;
use cutscore_core::prefs::Verdict;
use cutscore_editing::markers::clock;
use cutscore_reward::user_model::{self, backup_path};
use egui::{Color32, RichText, Sense, Stroke, Ui};
use nice_plug::context::gui::GuiContext;
use nice_plug_egui::NiceEguiApp;
use nice_plug_egui::widgets::ParamSlider;

use crate::actions;
use crate::jobs::Job;
use crate::learn::{self, LearnState};
use crate::params::CutscoreParams;
use crate::session::{Finished, FitState, Proposal, Session, lock};
use crate::settle;
use crate::teach;
use cutscore_core::prefs::Side;

const OVERVIEW_HEIGHT: f32 = 130.0;
/// Height of the bar ruler at the top of the overview.
const RULER: f32 = 14.0;
/// Room the proposal list leaves for the buttons, fit and status below it.
const BELOW_LIST: f32 = 150.0;
/// What an open Teach question adds below the list.
const QUESTION_HEIGHT: f32 = 52.0;
const ACCENT: Color32 = Color32::from_rgb(90, 170, 255);
/// The fill of a button the analysis suggests pressing (½× where the song may be at half the
/// grid's tempo).
const OFFER: Color32 = Color32::from_rgb(120, 88, 16);
/// The fill of the bar-line buttons while the bars are counted from a bar line the user moved.
const GIVEN: Color32 = Color32::from_rgb(40, 80, 120);

/// Which edit Render and Export use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditSource {
    /// The cuts accepted in this window.
    Accepted,
    /// The last fit-to-length result.
    Fitted,
}

pub struct CutscoreEditor {
    params: Arc<CutscoreParams>,
    session: Arc<Session>,
    gui: Option<GuiContext>,
    /// The proposal the buttons act on, as its `(start, end)` beats.
    selected: Option<(usize, usize)>,
    /// Cuts accepted so far (non-overlapping, source beats).
    accepted: Vec<(usize, usize)>,
    source: EditSource,
    /// Fit-to-length target in seconds (`None`: the parameter's share of the capture).
    fit_seconds: Option<f64>,
    /// Where renders and markers go.
    output_dir: Option<PathBuf>,
    /// The selection moved by key or overview click: scroll the list to it once.
    scroll_to_selected: bool,
    /// Decisions made in this window, last last, for Undo.
    undoable: Vec<Undoable>,
    /// "Learn from my decisions": the `trainer` it runs (found once).
    trainer: Option<PathBuf>,
    /// Teach: the pair being asked about (better-scored first) and the pairs asked so far.
    question: Option<(Proposal, Proposal)>,
    asked: Vec<teach::Asked>,
    /// The capture `asked` is about (a new capture starts afresh).
    asked_epoch: u64,
    /// The capture's epoch and [`Capture::settles`](crate::session::Capture::settles) when last
    /// drawn: a settle moves the beats, so a selection or question by beat index no longer
    /// holds.
    settled_seen: (u64, u64),
}

/// A logged decision Undo can take back.
struct Undoable {
    logged: actions::Logged,
    span: (usize, usize),
    /// The decision added the cut to the accepted edit.
    added: bool,
}

impl CutscoreEditor {
    pub fn new(params: Arc<CutscoreParams>, session: Arc<Session>) -> Self {
        let output_dir = dirs::audio_dir()
            .or_else(dirs::home_dir)
            .map(|dir| dir.join("Cutscore"));
        let decisions = actions::count_decisions(params.prefs_dir().as_deref());
        session.decisions.store(decisions, Ordering::Relaxed);
        Self {
            params,
            session,
            gui: None,
            selected: None,
            accepted: Vec::new(),
            source: EditSource::Accepted,
            fit_seconds: None,
            output_dir,
            scroll_to_selected: false,
            undoable: Vec::new(),
            trainer: learn::find_trainer(),
            question: None,
            asked: Vec::new(),
            asked_epoch: 0,
            settled_seen: (0, 0),
        }
    }

    /// Runs this `trainer` (or none) for "Learn from my decisions" instead of the one found.
    pub fn with_trainer(mut self, trainer: Option<PathBuf>) -> Self {
        self.trainer = trainer;
        self
    }

    /// Sends renders and marker files to `dir` instead of `~/Music/Cutscore`.
    pub fn with_output_dir(mut self, dir: PathBuf) -> Self {
        self.output_dir = Some(dir);
        self
    }

    /// The fit target the user typed, if any (otherwise the target follows the capture).
    pub fn typed_fit_target(&self) -> Option<f64> {
        self.fit_seconds
    }

    /// The cuts accepted so far.
    pub fn accepted(&self) -> &[(usize, usize)] {
        &self.accepted
    }

    /// Draws the whole window into `ui`.
    pub fn show(&mut self, ui: &mut Ui) {
        egui::Frame::new()
            .inner_margin(egui::Margin::same(12))
            .fill(ui.visuals().panel_fill)
            .show(ui, |ui| {
                ui.set_min_size(ui.available_size());
                self.contents(ui);
            });
    }

    fn contents(&mut self, ui: &mut Ui) {
        self.collect_finished();
        let shown_count = self.params.shown.value().max(1) as usize;
        // Copy only what is drawn: a long track has thousands of ranked proposals.
        let (shown, beats, pending, latency) = {
            let proposals = lock(&self.session.proposals);
            let shown: Vec<Proposal> = proposals.ranked.iter().take(shown_count).cloned().collect();
            (shown, proposals.beats, proposals.pending, proposals.latency)
        };
        // The selection is the user's: nothing is selected until they choose, and a proposal
        // that leaves the list takes the selection with it.
        if self
            .selected
            .is_some_and(|span| !shown.iter().any(|p| (p.start, p.end) == span))
        {
            self.selected = None;
        }
        self.keyboard(ui, beats, &shown);
        self.header(ui, &shown);
        self.overview(ui, &shown);
        ui.add_space(6.0);
        self.limits(ui);
        ui.separator();
        self.proposal_list(ui, &shown, pending);
        self.proposal_buttons(ui, beats, &shown);
        ui.separator();
        self.fit_and_render(ui);
        ui.separator();
        self.status(ui, latency);
    }

    /// Up/down move the selection, space auditions it, A accepts and R rejects it (unless a
    /// text field has the keyboard).
    fn keyboard(&mut self, ui: &Ui, beats: usize, shown: &[Proposal]) {
        if ui.ctx().memory(|m| m.focused().is_some()) {
            return;
        }
        if ui.input(|i| i.modifiers.command_only() && i.key_pressed(egui::Key::Z)) {
            self.undo();
            return;
        }
        // Plain keys only: Ctrl+A, Ctrl+R and the like belong to the host.
        if !ui.input(|i| i.modifiers.is_none()) {
            return;
        }
        if shown.is_empty() {
            return;
        }
        let (up, down, space, accept, reject) = ui.input(|i| {
            (
                i.key_pressed(egui::Key::ArrowUp),
                i.key_pressed(egui::Key::ArrowDown),
                i.key_pressed(egui::Key::Space),
                i.key_pressed(egui::Key::A),
                i.key_pressed(egui::Key::R),
            )
        });
        let at = self
            .selected
            .and_then(|span| shown.iter().position(|p| (p.start, p.end) == span));
        let moved = match (up, down, at) {
            (true, _, Some(i)) => Some(i.saturating_sub(1)),
            (_, true, Some(i)) => Some((i + 1).min(shown.len() - 1)),
            (true, _, None) | (_, true, None) => Some(0),
            _ => None,
        };
        if let Some(i) = moved {
            self.selected = Some((shown[i].start, shown[i].end));
            self.scroll_to_selected = true;
        }
        let Some(selected) = self
            .selected
            .and_then(|span| shown.iter().find(|p| (p.start, p.end) == span))
            .cloned()
        else {
            return;
        };
        if space {
            self.audition(&selected);
        } else if accept {
            self.decide(beats, &selected, shown, Verdict::Accept);
        } else if reject {
            self.decide(beats, &selected, shown, Verdict::Reject);
        }
    }

    fn header(&mut self, ui: &mut Ui, shown: &[Proposal]) {
        let capture = lock(&self.session.capture);
        if (capture.epoch, capture.settles) != self.settled_seen {
            self.settled_seen = (capture.epoch, capture.settles);
            self.selected = None;
            self.question = None;
            self.asked.clear();
        }
        let text = format!(
            "Captured {} · {} beats · {} bars{} · {:.1} BPM{}{}",
            minutes_seconds(capture.seconds()),
            capture.complete_beats(),
            capture.grid.bar_starts().len(),
            if capture.bar_line_given() {
                " counted from your bar lines"
            } else if capture.on_host_grid() {
                " on the host's grid"
            } else {
                ""
            },
            capture.grid_tempo_bpm(),
            if capture.is_settled() {
                " · grid from the whole capture"
            } else {
                ""
            },
            if capture.full {
                " · capture full (20 min)"
            } else {
                ""
            }
        );
        let recounting = capture.recount_pending();
        let reading_again = capture.settle_asked();
        let half_tempo = capture.half_tempo_offer();
        let bar_line_given = capture.bar_line_given();
        let near_s = self.selected_from_s(shown);
        let half_beat_moved = capture.half_beat_moved(near_s);
        let few_bars = capture.grid.bar_starts().len() < 2;
        let tempo_off = if capture.error.is_some() {
            Some("The analysis stopped: there is nothing to count again")
        } else if capture.tempo_bpm <= 0.0 {
            Some("No tempo found yet")
        } else {
            None
        };
        let error = capture.error.clone();
        let non_finite = capture.non_finite;
        let gaps = capture.feature_gaps;
        let pulse = capture.pulse_warning();
        drop(capture);
        let tempo_off = tempo_off.or_else(|| {
            settle::grid_fixed(&self.session).then_some(
                "A decision on this capture fixed its grid (Start over to count another)",
            )
        });
        ui.horizontal(|ui| {
            ui.heading("Cutscore");
            ui.label(text);
            let offer = half_tempo.filter(|_| tempo_off.is_none());
            self.tempo_buttons(ui, tempo_off, offer);
            if let Some(bpm) = offer {
                ui.colored_label(Color32::YELLOW, format!("maybe {bpm:.1} BPM?"));
            }
            let bars_off = tempo_off.or(few_bars.then_some("No bar lines found yet"));
            self.bar_line_buttons(ui, bars_off, bar_line_given, shown);
            self.half_beat_button(ui, bars_off, near_s, half_beat_moved);
            if let Some(bpm) = recounting {
                ui.label(format!(
                    "· counting at {bpm:.1} BPM (all of the capture when the music stops)"
                ));
            } else if reading_again {
                ui.label(
                    "· moving the beats half a beat (all of the capture when the music stops)",
                );
            }
            if ui.button("Start over").clicked() {
                self.session.restart.store(true, Ordering::Release);
                self.accepted.clear();
                *lock(&self.session.fit) = None;
            }
        });
        if let Some(error) = error {
            ui.colored_label(Color32::LIGHT_RED, error);
        }
        if let Some(pulse) = pulse {
            ui.colored_label(Color32::YELLOW, pulse);
        }
        if gaps > 0 {
            ui.colored_label(
                Color32::YELLOW,
                format!("{gaps} beats analysed late reuse their neighbour's features"),
            );
        }
        if non_finite > 0 {
            ui.colored_label(
                Color32::YELLOW,
                format!("{non_finite} NaN/Inf input samples were analysed as silence"),
            );
        }
    }

    /// "½×" and "2×": the beats counted at half or twice the grid's tempo, for a song the
    /// tracker heard at its eighth notes or at every other beat. What plays from then on is
    /// tracked at that tempo, and the whole capture is analysed again at it once the music stops
    /// (`Capture::count_at`). `off`: why they cannot be used now (no tempo yet, a decision has
    /// fixed the grid). `offer`: the tempo a reading leaning towards slower tempi found at
    /// half the grid's (`Capture::half_tempo_offer`): ½× is marked, says so and counts there.
    fn tempo_buttons(&mut self, ui: &mut Ui, off: Option<&str>, offer: Option<f64>) {
        let half_hover = offer.map_or_else(
            || {
                "Count the beats at half this tempo: the tracker heard the song's eighth notes"
                    .to_owned()
            },
            |bpm| {
                format!(
                    "This song may be at {bpm:.1} BPM, half the tempo found: so the analysis \
                     reads it when it leans towards slower tempi (the tracker often hears a slow \
                     song's eighth notes). Listen: if a beat found here is half a beat, count \
                     the beats at {bpm:.1} BPM (2× takes it back)"
                )
            },
        );
        for (label, factor, hover, marked) in [
            ("½×", 0.5, half_hover, offer.is_some()),
            (
                "2×",
                2.0,
                "Count the beats at twice this tempo: the tracker heard every other beat"
                    .to_owned(),
                false,
            ),
        ] {
            let mut button = egui::Button::new(label).small();
            if marked {
                button = button.fill(OFFER);
            }
            if grid_button(ui, button, off, hover) {
                let asked = settle::count_at(&self.session, factor);
                if asked.is_some() {
                    self.selected = None;
                }
            }
        }
    }

    /// "Bar -1" and "Bar +1": the bar lines a beat earlier or later, for a song whose bars the
    /// tracker counted from the wrong beat (cuts start and resume on bar lines): around the
    /// selected proposal, else the newest bars, as far as the tracker counted them alike. Every
    /// later reading of the capture keeps counting from there (`Capture::move_bar_lines`).
    /// `off`: why they cannot be used now; `given`: the bars are counted from the user's bar
    /// line.
    fn bar_line_buttons(
        &mut self,
        ui: &mut Ui,
        off: Option<&str>,
        given: bool,
        shown: &[Proposal],
    ) {
        let near_s = self.selected_from_s(shown);
        let around = if near_s.is_some() {
            "around the selected proposal"
        } else {
            "of the newest bars"
        };
        for (label, by, hover) in [
            (
                "Bar -1",
                -1,
                "Move the bar lines one beat earlier: the beat before each bar line starts the bar",
            ),
            (
                "Bar +1",
                1,
                "Move the bar lines one beat later: the beat after each bar line starts the bar",
            ),
        ] {
            let mut button = egui::Button::new(label).small();
            if given {
                button = button.fill(GIVEN);
            }
            let hover = format!(
                "{hover} ({around}, as far as the tracker counted them alike; cuts start and \
                 resume on bar lines){}",
                if given {
                    "; the bars are counted from a bar line you moved"
                } else {
                    ""
                }
            );
            // The selection stays (its beats do not move), so pressed again the button moves
            // the same bars once more.
            if grid_button(ui, button, off, hover) {
                settle::move_bar_lines(&self.session, by, near_s);
            }
        }
        if given
            && grid_button(
                ui,
                egui::Button::new("Reset bars").small(),
                off,
                "Place the bar lines where the tracker finds them again",
            )
            && settle::reset_bar_lines(&self.session)
        {
            self.selected = None;
        }
    }

    /// Where the selected proposal's cut starts, seconds, if one is selected.
    fn selected_from_s(&self, shown: &[Proposal]) -> Option<f64> {
        self.selected
            .and_then(|span| shown.iter().find(|p| (p.start, p.end) == span))
            .map(|p| p.from_s)
    }

    /// "½ beat": the beats moved half a beat, for a song whose beats the tracker found on its
    /// off-beats (cuts then start and resume between the song's beats): around the selected
    /// proposal, else the newest beats, as far as they keep one tempo and phase; the whole
    /// capture is read again with them moved once the music stops, and pressed again there the
    /// move is taken back (`Capture::move_half_beat`). `off`: why it cannot be used now;
    /// `moved`: the beats there are moved.
    fn half_beat_button(
        &mut self,
        ui: &mut Ui,
        off: Option<&str>,
        near_s: Option<f64>,
        moved: bool,
    ) {
        let mut button = egui::Button::new("½ beat").small();
        if moved {
            button = button.fill(GIVEN);
        }
        let hover = if moved {
            "The beats here are moved half a beat: press to put them back where the tracker \
             found them"
        } else {
            "Move the beats half a beat: the tracker found them on the off-beats, between the \
             song's beats (around the selected proposal, else the newest beats, as far as they \
             keep one tempo and phase; the capture is read again when the music stops)"
        };
        if grid_button(ui, button, off, hover) {
            settle::move_half_beat(&self.session, near_s);
        }
    }

    /// The track's loudness with a bar ruler; the selected proposal drawn as the span removed
    /// and the point where playback resumes, the others as faint marks above; a click selects
    /// the proposal under it.
    fn overview(&mut self, ui: &mut Ui, shown: &[Proposal]) {
        let width = ui.available_width().max(100.0);
        let (rect, response) =
            ui.allocate_exact_size(egui::vec2(width, OVERVIEW_HEIGHT), Sense::click());
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 4.0, Color32::from_gray(24));
        let ruler =
            egui::Rect::from_min_max(rect.min, egui::pos2(rect.right(), rect.top() + RULER));
        let marks = egui::Rect::from_min_max(
            egui::pos2(rect.left(), ruler.bottom()),
            egui::pos2(rect.right(), ruler.bottom() + 6.0),
        );
        let wave =
            egui::Rect::from_min_max(egui::pos2(rect.left(), marks.bottom() + 2.0), rect.max);
        let capture = lock(&self.session.capture);
        let seconds = capture.seconds().max(1.0);
        let x = |t: f64| rect.left() + (t / seconds) as f32 * rect.width();

        // Loudness: RMS in dB from -60 to 0, mirrored about the middle.
        let mid = wave.center().y;
        let points = capture.envelope.len().max(1);
        let columns = (rect.width() as usize).max(1);
        for column in 0..columns {
            let (a, b) = (
                column * points / columns,
                ((column + 1) * points / columns).max(column * points / columns + 1),
            );
            let rms = capture
                .envelope
                .get(a..b.min(capture.envelope.len()))
                .map_or(0.0, |s| s.iter().copied().fold(0.0, f32::max));
            if rms <= 0.0 {
                continue;
            }
            let level = ((20.0 * rms.log10() + 60.0) / 60.0).clamp(0.0, 1.0);
            let h = level * wave.height() * 0.48;
            let px = rect.left() + column as f32 + 0.5;
            painter.line_segment(
                [egui::pos2(px, mid - h), egui::pos2(px, mid + h)],
                Stroke::new(1.0, Color32::from_rgb(110, 140, 160)),
            );
        }

        // Bar ruler: a tick per bar, a number every few bars so the numbers never crowd.
        let downbeats: Vec<f64> = capture
            .grid
            .beats
            .iter()
            .zip(&capture.grid.beat_in_bar)
            .filter(|&(_, &b)| b == 0)
            .map(|(&t, _)| t)
            .collect();
        let bar_px = rect.width() / downbeats.len().max(1) as f32;
        let every = [1, 2, 4, 8, 16, 32, 64, 128]
            .into_iter()
            .find(|&n| n as f32 * bar_px >= 36.0)
            .unwrap_or(256);
        for (i, &t) in downbeats.iter().enumerate() {
            // Bars count from 1 at the first downbeat, as `bar_beats` numbers them.
            let bar = i + 1;
            let numbered = (bar - 1) % every == 0;
            let tick = if numbered { 6.0 } else { 3.0 };
            painter.vline(
                x(t),
                ruler.bottom() - tick..=ruler.bottom(),
                Stroke::new(1.0, Color32::from_gray(150)),
            );
            if numbered {
                painter.text(
                    egui::pos2(x(t) + 2.0, ruler.top()),
                    egui::Align2::LEFT_TOP,
                    bar.to_string(),
                    egui::FontId::proportional(11.0),
                    Color32::from_gray(190),
                );
            }
            if bar_px >= 4.0 {
                painter.vline(
                    x(t),
                    wave.y_range(),
                    Stroke::new(0.5, Color32::from_rgba_unmultiplied(120, 180, 255, 40)),
                );
            }
        }

        // The other proposals, faint, above the loudness.
        for p in shown {
            if self.selected == Some((p.start, p.end)) {
                continue;
            }
            let mark = egui::Rect::from_x_y_ranges(
                x(p.from_s)..=x(p.to_s).max(x(p.from_s) + 1.0),
                marks.y_range(),
            );
            painter.rect_filled(
                mark,
                1.0,
                Color32::from_rgba_unmultiplied(150, 150, 150, 60),
            );
        }
        // The selected one: the span removed, and the join where playback resumes.
        if let Some(p) = self
            .selected
            .and_then(|span| shown.iter().find(|p| (p.start, p.end) == span))
        {
            let removed =
                egui::Rect::from_x_y_ranges(x(p.from_s)..=x(p.to_s), marks.top()..=wave.bottom());
            painter.rect_filled(
                removed,
                0.0,
                Color32::from_rgba_unmultiplied(230, 80, 60, 70),
            );
            painter.vline(
                x(p.from_s),
                removed.y_range(),
                Stroke::new(2.0, Color32::from_rgb(240, 110, 80)),
            );
            painter.vline(
                x(p.to_s),
                removed.y_range(),
                Stroke::new(2.0, Color32::from_rgb(120, 220, 120)),
            );
            painter.text(
                egui::pos2(x(p.to_s) + 3.0, wave.bottom() - 2.0),
                egui::Align2::LEFT_BOTTOM,
                format!("resumes at {}", p.resume_at),
                egui::FontId::proportional(11.0),
                Color32::from_rgb(150, 230, 150),
            );
        }
        for &(start, end) in &self.accepted {
            if let (Some(&a), Some(&b)) =
                (capture.grid.beats.get(start), capture.grid.beats.get(end))
            {
                let region =
                    egui::Rect::from_x_y_ranges(x(a)..=x(b), rect.bottom() - 5.0..=rect.bottom());
                painter.rect_filled(region, 0.0, Color32::from_rgb(255, 150, 60));
            }
        }
        drop(capture);
        if response.clicked()
            && let Some(pos) = response.interact_pointer_pos()
        {
            let t = f64::from((pos.x - rect.left()) / rect.width()) * seconds;
            // The shortest proposal under the click (the easiest to hit among overlaps).
            if let Some(p) = shown
                .iter()
                .filter(|p| p.from_s <= t && t <= p.to_s)
                .min_by(|a, b| (a.to_s - a.from_s).total_cmp(&(b.to_s - b.from_s)))
            {
                self.selected = Some((p.start, p.end));
                self.scroll_to_selected = true;
            }
        }
    }

    fn limits(&self, ui: &mut Ui) {
        let Some(gui) = self.gui.as_ref() else {
            let (min, max) = self.params.cut_bars();
            ui.label(format!(
                "Cuts of {min} to {max} bars; {} shown",
                self.params.shown.value()
            ));
            return;
        };
        let setter = gui.param_setter();
        let mut changed = false;
        ui.horizontal(|ui| {
            ui.label("Min cut");
            changed |= ui
                .add(ParamSlider::for_param(&self.params.min_bars, &setter))
                .changed();
            ui.label("Max cut");
            changed |= ui
                .add(ParamSlider::for_param(&self.params.max_bars, &setter))
                .changed();
            ui.label("Shown");
            ui.add(ParamSlider::for_param(&self.params.shown, &setter));
        });
        if changed {
            self.session.request(Job::Options);
        }
    }

    fn proposal_list(&mut self, ui: &mut Ui, shown: &[Proposal], pending: usize) {
        if shown.is_empty() {
            let heard = lock(&self.session.capture).seconds();
            ui.add_space(12.0);
            ui.label(if heard < 1.0 {
                "Play the song in your DAW from the start: Cutscore listens, finds the bars and proposes cuts here after a few bars."
            } else {
                "Listening: proposals appear once a few bars are in."
            });
            ui.add_space(12.0);
            return;
        }
        if pending > 0 {
            ui.weak(format!(
                "{} being rescored…",
                plural(pending, "proposal", "proposals")
            ));
        }
        let scroll = std::mem::take(&mut self.scroll_to_selected);
        let below = BELOW_LIST
            + if self.question.is_some() {
                QUESTION_HEIGHT
            } else {
                0.0
            };
        egui::ScrollArea::vertical()
            .max_height((ui.available_height() - below).max(120.0))
            .auto_shrink([false, true])
            .show(ui, |ui| {
                egui::Grid::new("proposals")
                    .striped(true)
                    .num_columns(5)
                    .min_col_width(60.0)
                    .show(ui, |ui| {
                        for heading in ["#", "Score", "Cut from", "Resume at", "Length"] {
                            ui.strong(heading);
                        }
                        ui.end_row();
                        for (rank, p) in shown.iter().enumerate() {
                            let span = (p.start, p.end);
                            let selected = self.selected == Some(span);
                            let row = ui.selectable_label(selected, format!("{}", rank + 1));
                            if row.clicked() {
                                self.selected = Some(span);
                            }
                            if selected && scroll {
                                row.scroll_to_me(Some(egui::Align::Center));
                            }
                            ui.label(RichText::new(format!("{:+.2}", p.score)).color(ACCENT));
                            ui.label(format!("bar {} ({})", p.start_at, clock(p.from_s)));
                            ui.label(format!("bar {} ({})", p.resume_at, clock(p.to_s)));
                            ui.label(format!(
                                "{} · {:.1} s",
                                plural(p.bars, "bar", "bars"),
                                p.to_s - p.from_s
                            ));
                            ui.end_row();
                        }
                    });
            });
    }

    fn proposal_buttons(&mut self, ui: &mut Ui, beats: usize, shown: &[Proposal]) {
        let selected = self
            .selected
            .and_then(|span| shown.iter().find(|p| (p.start, p.end) == span))
            .cloned();
        ui.horizontal(|ui| {
            ui.add_enabled_ui(selected.is_some(), |ui| {
                if ui
                    .button("Audition")
                    .on_hover_text("Plays the 2 bars before the cut into the 2 bars after it, while the host's transport is stopped")
                    .clicked()
                    && let Some(p) = &selected
                {
                    self.audition(p);
                }
                if ui.button("Accept").clicked()
                    && let Some(p) = &selected
                {
                    self.decide(beats, p, shown, Verdict::Accept);
                }
                if ui.button("Reject").clicked()
                    && let Some(p) = &selected
                {
                    self.decide(beats, p, shown, Verdict::Reject);
                }
            });
            if ui
                .add_enabled(!self.undoable.is_empty(), egui::Button::new("Undo"))
                .on_hover_text("Takes back the last Accept or Reject (Ctrl+Z)")
                .clicked()
            {
                self.undo();
            }
            if ui
                .add_enabled(shown.len() >= 2 && self.question.is_none(), egui::Button::new("Teach"))
                .on_hover_text(
                    "Asks which of two proposals is better, choosing the two whose answer \
                     would teach the model most: it is unsure how to order them and they differ \
                     in what a taste can be about",
                )
                .clicked()
            {
                self.next_question(shown);
            }
            if selected.is_none() && !shown.is_empty() {
                ui.weak("Select a proposal: click a row or the overview, or press the down arrow key");
            }
            if self.session.auditioning() {
                if ui.button("Stop audition").clicked() {
                    self.session.audition.active.store(false, Ordering::Release);
                }
                ui.label("Auditioning: starting playback in the host also stops it");
            }
            let busy = self.session.busy();
            if !busy.is_empty() {
                ui.spinner();
                ui.weak(format!("Working on the {}…", busy.join(", ")));
            }
        });
        self.question_panel(ui, beats, shown);
    }

    /// Asks about the pair whose answer would teach the model most, or says none is left.
    fn next_question(&mut self, shown: &[Proposal]) {
        let epoch = lock(&self.session.proposals).epoch;
        if epoch != self.asked_epoch {
            self.asked.clear();
            self.asked_epoch = epoch;
        }
        self.question = teach::next_question(shown, &self.asked);
        if self.question.is_none() {
            self.session
                .set_message("Nothing left to ask about these proposals: every pair was asked");
        }
    }

    /// "Which is better?" with both proposals to audition, while a Teach question is open. An
    /// answer is logged as a comparison and the next question follows.
    fn question_panel(&mut self, ui: &mut Ui, beats: usize, shown: &[Proposal]) {
        let Some((a, b)) = self.question.clone() else {
            return;
        };
        // A rescoring may have replaced the proposals: ask only about ones still listed.
        let listed = |p: &Proposal| shown.iter().any(|s| (s.start, s.end) == (p.start, p.end));
        if !listed(&a) || !listed(&b) {
            self.question = None;
            return;
        }
        let describe = |p: &Proposal| {
            format!(
                "cut bar {} to bar {} ({})",
                p.start_at,
                p.resume_at,
                plural(p.bars, "bar", "bars")
            )
        };
        let mut answer = None;
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new("Which is better?").strong());
            for (name, p) in [("A", &a), ("B", &b)] {
                ui.label(format!("{name}: {}", describe(p)));
                if ui.small_button(format!("Audition {name}")).clicked() {
                    self.audition(p);
                }
            }
            if ui.button("A is better").clicked() {
                answer = Some(Side::A);
            }
            if ui.button("B is better").clicked() {
                answer = Some(Side::B);
            }
            if ui.button("Skip").clicked() {
                self.asked.extend(teach::Asked::skipped(&a, &b));
                self.next_question(shown);
            }
            if ui.button("Stop teaching").clicked() {
                self.question = None;
            }
        });
        if let Some(side) = answer {
            self.asked.extend(teach::Asked::new(&a, &b));
            let prefs = self.params.prefs_dir();
            let ticket = self.session.prefs_turns.ticket();
            actions::in_background(&self.session, "answer", move |session| {
                let _turn = session.prefs_turns.wait(ticket);
                Finished::Message(
                    match actions::compare(session, prefs.as_deref(), beats, (&a, &b), side) {
                        Ok(log) => format!(
                            "{} is better: logged to {}",
                            if side == Side::A { "A" } else { "B" },
                            log.display()
                        ),
                        Err(e) => format!("Not logged: {e}"),
                    },
                )
            });
            self.next_question(shown);
        }
    }

    fn audition(&self, proposal: &Proposal) {
        let proposal = proposal.clone();
        actions::in_background(&self.session, "audition", move |session| {
            let snapshot = lock(&session.capture).snapshot();
            match actions::audition(&snapshot, &proposal) {
                Ok(samples) => {
                    *lock(&session.audition_request) = Some(samples);
                    Finished::Nothing
                }
                Err(e) => Finished::Message(format!("Cannot audition: {e}")),
            }
        });
    }

    fn decide(&mut self, beats: usize, proposal: &Proposal, shown: &[Proposal], verdict: Verdict) {
        let prefs = self.params.prefs_dir();
        let (proposal, shown) = (proposal.clone(), shown.to_vec());
        let ticket = self.session.prefs_turns.ticket();
        actions::in_background(&self.session, "decision", move |session| {
            // Decisions reach the log one at a time, in the order they were made.
            let _turn = session.prefs_turns.wait(ticket);
            let outcome =
                actions::decide(session, prefs.as_deref(), beats, &proposal, &shown, verdict)
                    .map_err(|e| format!("Not logged: {e}"));
            Finished::Decided {
                span: (proposal.start, proposal.end),
                verdict,
                outcome,
            }
        });
    }

    /// Applies what background actions finished since the last frame.
    fn collect_finished(&mut self) {
        for finished in self.session.take_finished() {
            let Finished::Decided {
                span,
                verdict,
                outcome,
            } = finished
            else {
                continue;
            };
            let logged = match outcome {
                Ok(logged) => logged,
                Err(e) => {
                    self.session.set_message(e);
                    continue;
                }
            };
            let mut note = format!(
                "{}; logged to {} (Undo or Ctrl+Z takes it back)",
                if verdict == Verdict::Accept {
                    "Accepted"
                } else {
                    "Rejected"
                },
                logged.log.display()
            );
            let mut added = false;
            if verdict == Verdict::Accept {
                if self
                    .accepted
                    .iter()
                    .any(|&(a, b)| a <= span.1 && span.0 <= b)
                {
                    note.push_str(
                        " (overlaps or touches an accepted cut, so not added to the edit)",
                    );
                } else {
                    self.accepted.push(span);
                    self.accepted.sort_unstable();
                    self.source = EditSource::Accepted;
                    added = true;
                }
            }
            self.undoable.push(Undoable {
                logged,
                span,
                added,
            });
            self.session.set_message(note);
        }
    }

    /// Takes back the last decision made in this window: an undo record in the log, and the
    /// cut out of the edit if the decision had put it there.
    fn undo(&mut self) {
        let Some(last) = self.undoable.pop() else {
            return;
        };
        if last.added {
            self.accepted.retain(|&span| span != last.span);
        }
        let prefs = self.params.prefs_dir();
        let ticket = self.session.prefs_turns.ticket();
        actions::in_background(&self.session, "undo", move |session| {
            let _turn = session.prefs_turns.wait(ticket);
            Finished::Message(
                match actions::undo(session, prefs.as_deref(), &last.logged) {
                    Ok(()) => "Undone: the decision no longer counts".into(),
                    Err(e) => format!("Not undone: {e}"),
                },
            )
        });
    }

    fn fit_and_render(&mut self, ui: &mut Ui) {
        let captured = lock(&self.session.capture).seconds();
        let default_target = captured * f64::from(self.params.fit_target.value());
        // A target the user typed that is no longer shorter than the capture (after Start
        // over, say) gives way to the default again.
        if self.fit_seconds.is_some_and(|t| t >= captured) {
            self.fit_seconds = None;
        }
        let mut target = self.fit_seconds.unwrap_or(default_target);
        let fit = lock(&self.session.fit).clone();
        ui.horizontal(|ui| {
            let label = ui.label("Target length");
            let response = ui
                .add_enabled(
                    captured >= 1.0,
                    egui::DragValue::new(&mut target)
                        .range(1.0..=captured.max(1.0))
                        .clamp_existing_to_range(false)
                        .speed(1.0)
                        .custom_formatter(|seconds, _| minutes_seconds(seconds))
                        .custom_parser(parse_minutes_seconds),
                )
                .labelled_by(label.id);
            // Only the user's own edits count: a value clamped while nothing is captured yet
            // is not a choice.
            if response.changed()
                && (response.dragged() || response.has_focus() || response.lost_focus())
            {
                self.fit_seconds = Some(target);
            }
            let running = matches!(fit, Some(FitState::Running { .. }));
            if ui
                .add_enabled(!running, egui::Button::new("Fit to length"))
                .clicked()
            {
                *lock(&self.session.fit) = Some(FitState::Running { target_s: target });
                if !self.session.request(Job::Fit { target_s: target }) {
                    *lock(&self.session.fit) = Some(FitState::Failed(
                        "the plugin is not active (start playback in the host)".into(),
                    ));
                }
            }
        });
        match &fit {
            Some(FitState::Running { target_s }) => {
                ui.label(format!("Fitting to {}…", minutes_seconds(*target_s)));
            }
            Some(FitState::Done { result, .. }) => {
                ui.horizontal(|ui| {
                    ui.label(format!(
                        "Fitted: {} with {}, score {:+.2}{}",
                        minutes_seconds(result.best.output_seconds),
                        plural(result.best.joins.len(), "join", "joins"),
                        result.best.score,
                        result
                            .message
                            .as_deref()
                            .map(|m| format!(" ({m})"))
                            .unwrap_or_default()
                    ));
                    if ui
                        .selectable_label(self.source == EditSource::Fitted, "Use fitted edit")
                        .clicked()
                    {
                        self.source = EditSource::Fitted;
                    }
                });
            }
            Some(FitState::Failed(e)) => {
                ui.colored_label(Color32::LIGHT_RED, format!("Fit failed: {e}"));
            }
            None => {}
        }
        ui.horizontal(|ui| {
            let what = match self.source {
                EditSource::Accepted => {
                    plural(self.accepted.len(), "accepted cut", "accepted cuts")
                }
                EditSource::Fitted => "the fitted edit".to_string(),
            };
            ui.label(format!("Edit: {what}"));
            if ui.button("Render").clicked() {
                self.render();
            }
            if ui.button("Export markers").clicked() {
                self.export_markers();
            }
        });
        if let Some(message) = lock(&self.session.message).clone() {
            ui.label(message);
        }
    }

    /// The edit Render and Export use, over the capture's complete beats, and its score.
    fn chosen_edit(&self) -> Result<(usize, Edit, Option<f32>), String> {
        let beats = lock(&self.session.capture).complete_beats();
        match self.source {
            EditSource::Accepted => {
                if self.accepted.is_empty() {
                    return Err("Nothing to render: accept a proposal or fit to length".into());
                }
                let edit = Edit::new(beats, self.accepted.iter().copied())
                    .map_err(|e| format!("The accepted cuts do not form an edit: {e}"))?;
                Ok((beats, edit, None))
            }
            EditSource::Fitted => match lock(&self.session.fit).clone() {
                Some(FitState::Done { beats, result, .. }) => {
                    Ok((beats, result.best.edit.clone(), Some(result.best.score)))
                }
                _ => Err("No fitted edit: press Fit to length first".into()),
            },
        }
    }

    fn output_path(&self, extension: &str) -> Result<PathBuf, String> {
        let dir = self
            .output_dir
            .clone()
            .ok_or("No folder for renders: this platform has no home folder")?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("Cannot create {}: {e}", dir.display()))?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(dir.join(format!("cutscore-{stamp}.{extension}")))
    }

    /// Renders the chosen edit to a WAV in the background; the message names the file.
    pub fn render(&self) {
        let chosen = self
            .chosen_edit()
            .and_then(|(beats, edit, _)| Ok((beats, edit, self.output_path("wav")?)));
        let (beats, edit, path) = match chosen {
            Ok(chosen) => chosen,
            Err(e) => return self.session.set_message(e),
        };
        actions::in_background(&self.session, "render", move |session| {
            let snapshot = lock(&session.capture).snapshot();
            Finished::Message(match actions::render_to(&snapshot, beats, &edit, &path) {
                Ok(seconds) => format!("Rendered {} to {}", clock(seconds), path.display()),
                Err(e) => format!("Not rendered: {e}"),
            })
        });
    }

    /// Writes Audacity labels and REAPER regions for the chosen edit in the background.
    pub fn export_markers(&self) {
        let chosen = self
            .chosen_edit()
            .and_then(|(beats, edit, score)| Ok((beats, edit, score, self.output_path("txt")?)));
        let (beats, edit, score, labels) = match chosen {
            Ok(chosen) => chosen,
            Err(e) => return self.session.set_message(e),
        };
        actions::in_background(&self.session, "marker export", move |session| {
            let snapshot = lock(&session.capture).snapshot();
            let regions = labels.with_extension("csv");
            let written = [&labels, &regions]
                .into_iter()
                .try_for_each(|path| actions::export_markers(&snapshot, beats, &edit, score, path));
            Finished::Message(match written {
                Ok(()) => format!(
                    "Markers written: {} (Audacity), {} (REAPER)",
                    labels.display(),
                    regions.display()
                ),
                Err(e) => format!("Markers not written: {e}"),
            })
        });
    }

    fn status(&self, ui: &mut Ui, latency: Option<std::time::Duration>) {
        let model = lock(&self.session.model).clone();
        let decisions = self.session.decisions.load(Ordering::Relaxed) as usize;
        let prefs = self
            .params
            .prefs_dir()
            .map_or_else(|| "<prefs folder>".into(), |p| p.display().to_string());
        let dropped = self.session.tap.dropped_frames.load(Ordering::Relaxed);
        let rate = f64::from(lock(&self.session.capture).audio.sample_rate.max(1));
        ui.horizontal_wrapped(|ui| {
            ui.label(status_line(&model, decisions));
            if let Some(latency) = latency {
                ui.weak(format!("· new bars scored in {} ms", latency.as_millis()));
            }
        });
        if dropped > 0 {
            ui.colored_label(
                Color32::YELLOW,
                format!(
                    "{:.1} s of audio went unanalysed: the analysis fell behind",
                    dropped as f64 / rate
                ),
            );
        }
        self.learn(ui, decisions, &prefs);
        self.model_undo(ui);
        if let Some(problem) = model.problem {
            ui.colored_label(Color32::LIGHT_RED, problem);
        }
    }

    /// "Learn from my decisions" (runs `trainer finetune` in the background; the scoring worker
    /// swaps the new model in when the file changes), its progress and its result; without a
    /// trainer, the command to run by hand.
    fn learn(&self, ui: &mut Ui, decisions: usize, prefs: &str) {
        let state = self.session.learner.state();
        ui.horizontal_wrapped(|ui| match &state {
            LearnState::Running { started, stage } => {
                ui.spinner();
                ui.label(format!(
                    "Learning your taste from your decisions… {} s · {stage}",
                    started.elapsed().as_secs()
                ));
                ui.ctx()
                    .request_repaint_after(std::time::Duration::from_millis(250));
            }
            _ => {
                let (Some(trainer), Some(prefs_dir), Some(model)) = (
                    self.trainer.as_deref(),
                    self.params.prefs_dir(),
                    self.session.user_model.as_deref(),
                ) else {
                    ui.label("Teach it your taste from your decisions:");
                    ui.code(format!("trainer finetune '{prefs}'"));
                    if self.trainer.is_none() {
                        ui.weak(format!(
                            "(put `trainer` beside the plugin or on your PATH, or name it in {}, and a \
                             button does it)",
                            learn::TRAINER_ENV
                        ));
                    }
                    return;
                };
                let button = ui
                    .add_enabled(decisions > 0, egui::Button::new("Learn from my decisions"))
                    .on_hover_text(
                        "Learns your taste from everything you accepted, rejected and answered \
                         in Teach (tens of seconds, at low priority); the proposals rescore \
                         with it when it is done",
                    )
                    .on_disabled_hover_text("Accept or reject some proposals first");
                if button.clicked() {
                    self.session.learner.start(trainer, &prefs_dir, model);
                }
            }
        });
        match state {
            LearnState::Done(summary) => {
                ui.label(summary);
            }
            LearnState::Failed(reason) => {
                ui.colored_label(Color32::LIGHT_RED, format!("Learning failed: {reason}"));
            }
            LearnState::Idle | LearnState::Running { .. } => {}
        }
    }

    /// "Revert to previous model" once fine-tuning has replaced a model, "Reset to the shipped
    /// model" while the user's scores; the scoring worker notices the file change and swaps.
    fn model_undo(&self, ui: &mut Ui) {
        let Some(model) = self.session.user_model.as_deref() else {
            return;
        };
        // Learning writes the model and keeps the one before it: switching files meanwhile
        // could lose one of them.
        if self.session.learner.is_running() {
            return;
        }
        let has_previous = backup_path(model).exists();
        let has_own = model.exists();
        if !has_previous && !has_own {
            return;
        }
        ui.horizontal(|ui| {
            if has_previous
                && ui
                    .button("Revert to previous model")
                    .on_hover_text("Scores with the model your last fine-tuning replaced")
                    .clicked()
            {
                self.session.set_message(match user_model::revert(model) {
                    Ok(()) => "Went back to your previous model".to_owned(),
                    Err(e) => format!("Could not revert: {e}"),
                });
            }
            if has_own
                && ui
                    .button("Reset to the shipped model")
                    .on_hover_text("Puts your model aside; Revert brings it back")
                    .clicked()
            {
                self.session
                    .set_message(match user_model::reset_to_shipped(model) {
                        Ok(()) => {
                            "Scoring with the shipped model; your model is kept as the previous one"
                                .to_owned()
                        }
                        Err(e) => format!("Could not reset: {e}"),
                    });
            }
        });
    }
}

/// A button of the header's grid controls (tempo, bar lines, beats): enabled unless `off` says
/// why not, with `hover` as its help. Returns whether it was clicked.
fn grid_button(
    ui: &mut Ui,
    button: egui::Button<'_>,
    off: Option<&str>,
    hover: impl Into<egui::WidgetText>,
) -> bool {
    ui.add_enabled(off.is_none(), button)
        .on_hover_text(hover)
        .on_disabled_hover_text(off.unwrap_or_default())
        .clicked()
}

/// Where the model runs, which model it is and how many decisions are logged, in a
/// musician's words: "Scoring on the CPU · your model, from 120 of your choices (2 Dec) ·
/// 14 decisions logged".
pub fn status_line(model: &crate::session::ModelStatus, decisions: usize) -> String {
    if model.device.is_empty() {
        return "Starting the scoring model…".into();
    }
    let processor = if model.device.starts_with("cuda") {
        "the GPU"
    } else {
        "the CPU"
    };
    let date = model.created.as_deref().and_then(day_month);
    let which = if model.source == "your model" {
        let mut text = "your model".to_string();
        if model.user_pairs > 0 {
            text.push_str(&format!(", from {} of your choices", model.user_pairs));
        }
        if let Some(date) = date {
            text.push_str(&format!(" ({date})"));
        }
        text
    } else {
        "the default model".into()
    };
    format!(
        "Scoring on {processor} · {which} · {} logged",
        plural(decisions, "decision", "decisions")
    )
}

/// "2 Dec" from an RFC 3339 time ("2026-12-02T10:00:00Z").
fn day_month(rfc3339: &str) -> Option<String> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month: usize = rfc3339.get(5..7)?.parse().ok()?;
    let day: u32 = rfc3339.get(8..10)?.parse().ok()?;
    Some(format!("{day} {}", MONTHS.get(month.checked_sub(1)?)?))
}

/// `1 bar`, `2 bars`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A length as musicians type it: `m:ss` (`3:05`).
pub fn minutes_seconds(seconds: f64) -> String {
    let whole = seconds.max(0.0).round() as u64;
    format!("{}:{:02}", whole / 60, whole % 60)
}

/// Reads `m:ss`, `m:ss.s` or plain seconds.
pub fn parse_minutes_seconds(text: &str) -> Option<f64> {
    let text = text.trim();
    let seconds = match text.split_once(':') {
        Some((minutes, seconds)) => {
            let minutes: u32 = minutes.trim().parse().ok()?;
            let seconds: f64 = seconds.trim().parse().ok()?;
            if !(0.0..60.0).contains(&seconds) {
                return None;
            }
            f64::from(minutes) * 60.0 + seconds
        }
        None => text.parse().ok()?,
    };
    (seconds.is_finite() && seconds >= 0.0).then_some(seconds)
}

impl NiceEguiApp for CutscoreEditor {
    fn build(
        &mut self,
        _egui_ctx: egui::Context,
        nice_gui_ctx: GuiContext,
        _frame: &mut nice_plug_egui::Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        self.gui = Some(nice_gui_ctx);
        Ok(())
    }

    fn ui(&mut self, ui: &mut Ui, _frame: &mut nice_plug_egui::Frame) {
        egui::ScrollArea::vertical().show(ui, |ui| self.show(ui));
        // Keep the overview moving while audio comes in.
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_millis(250));
    }

    fn resized(&mut self, new_size: nice_plug_egui::baseview::WindowSize) {
        if let Ok(mut size) = self.params.window_size.write() {
            *size = (
                new_size.logical.width.round() as u32,
                new_size.logical.height.round() as u32,
            );
        }
    }

    fn editor_closed(&mut self) {
        self.gui = None;
    }
}
