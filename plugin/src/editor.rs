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

use cutscore_model::edit::Edit;
use cutscore_model::editing::markers::clock;
use cutscore_model::prefs::Verdict;
use egui::{Color32, RichText, Sense, Stroke, Ui};
use nice_plug::context::gui::GuiContext;
use nice_plug_egui::NiceEguiApp;
use nice_plug_egui::widgets::ParamSlider;

use crate::actions::{self, ActionError};
use crate::jobs::Job;
use crate::params::CutscoreParams;
use crate::session::{FitState, Proposal, Session, lock};

const OVERVIEW_HEIGHT: f32 = 110.0;
const ACCENT: Color32 = Color32::from_rgb(90, 170, 255);

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
        }
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
        let shown_count = self.params.shown.value().max(1) as usize;
        // Copy only what is drawn: a long track has thousands of ranked proposals.
        let (shown, beats, pending, latency) = {
            let proposals = lock(&self.session.proposals);
            let shown: Vec<Proposal> = proposals.ranked.iter().take(shown_count).cloned().collect();
            (shown, proposals.beats, proposals.pending, proposals.latency)
        };
        if self
            .selected
            .is_none_or(|span| !shown.iter().any(|p| (p.start, p.end) == span))
        {
            self.selected = shown.first().map(|p| (p.start, p.end));
        }
        self.header(ui);
        self.overview(ui, &shown);
        ui.separator();
        self.limits(ui);
        ui.separator();
        self.proposal_list(ui, &shown, pending);
        self.proposal_buttons(ui, beats, &shown);
        ui.separator();
        self.fit_and_render(ui);
        ui.separator();
        self.status(ui, latency);
    }

    fn header(&mut self, ui: &mut Ui) {
        let capture = lock(&self.session.capture);
        let text = format!(
            "Captured {} · {} beats · {} bars · {:.1} BPM{}",
            clock(capture.seconds()),
            capture.complete_beats(),
            capture.grid.bar_starts().len(),
            capture.tempo_bpm,
            if capture.full {
                " · capture full (20 min)"
            } else {
                ""
            }
        );
        let error = capture.error.clone();
        let non_finite = capture.non_finite;
        let gaps = capture.feature_gaps;
        drop(capture);
        ui.horizontal(|ui| {
            ui.heading("Cutscore");
            ui.label(text);
            if ui.button("Start over").clicked() {
                self.session.restart.store(true, Ordering::Release);
                self.accepted.clear();
                *lock(&self.session.fit) = None;
            }
        });
        if let Some(error) = error {
            ui.colored_label(Color32::LIGHT_RED, error);
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

    fn overview(&self, ui: &mut Ui, shown: &[Proposal]) {
        let width = ui.available_width().max(100.0);
        let (rect, _) = ui.allocate_exact_size(egui::vec2(width, OVERVIEW_HEIGHT), Sense::hover());
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 4.0, Color32::from_gray(20));
        let capture = lock(&self.session.capture);
        let seconds = capture.seconds().max(1.0);
        let x = |t: f64| rect.left() + (t / seconds) as f32 * rect.width();
        for p in shown {
            let selected = self.selected == Some((p.start, p.end));
            let shade = (p.score.clamp(-10.0, 10.0) + 10.0) / 20.0;
            let fill = Color32::from_rgba_unmultiplied(
                (255.0 * (1.0 - shade)) as u8,
                (200.0 * shade) as u8,
                80,
                if selected { 110 } else { 45 },
            );
            let region = egui::Rect::from_x_y_ranges(x(p.from_s)..=x(p.to_s), rect.y_range());
            painter.rect_filled(region, 0.0, fill);
        }
        let mid = rect.center().y;
        let points = capture.envelope.len().max(1);
        for (i, &peak) in capture.envelope.iter().enumerate() {
            let px = rect.left() + i as f32 / points as f32 * rect.width();
            let h = peak.min(1.0) * rect.height() * 0.45;
            painter.line_segment(
                [egui::pos2(px, mid - h), egui::pos2(px, mid + h)],
                Stroke::new(1.0, Color32::from_gray(150)),
            );
        }
        for (&t, &b) in capture.grid.beats.iter().zip(&capture.grid.beat_in_bar) {
            let (alpha, w) = if b == 0 { (140, 1.0) } else { (40, 0.5) };
            painter.vline(
                x(t),
                rect.y_range(),
                Stroke::new(w, Color32::from_rgba_unmultiplied(120, 180, 255, alpha)),
            );
        }
        for &(start, end) in &self.accepted {
            if let (Some(&a), Some(&b)) =
                (capture.grid.beats.get(start), capture.grid.beats.get(end))
            {
                let region =
                    egui::Rect::from_x_y_ranges(x(a)..=x(b), rect.bottom() - 6.0..=rect.bottom());
                painter.rect_filled(region, 0.0, Color32::from_rgb(255, 120, 60));
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
            ui.label("No proposals yet: play the track (at least two bars).");
            return;
        }
        if pending > 0 {
            ui.weak(format!("{pending} proposals being rescored…"));
        }
        egui::ScrollArea::vertical()
            .max_height(220.0)
            .show(ui, |ui| {
                egui::Grid::new("proposals").striped(true).show(ui, |ui| {
                    for heading in ["#", "Score", "Cut from", "Resume at", "Length"] {
                        ui.strong(heading);
                    }
                    ui.end_row();
                    for (rank, p) in shown.iter().enumerate() {
                        let span = (p.start, p.end);
                        let selected = self.selected == Some(span);
                        if ui
                            .selectable_label(selected, format!("{}", rank + 1))
                            .clicked()
                        {
                            self.selected = Some(span);
                        }
                        ui.label(RichText::new(format!("{:+.2}", p.score)).color(ACCENT));
                        ui.label(format!("{} ({})", p.start_at, clock(p.from_s)));
                        ui.label(format!("{} ({})", p.resume_at, clock(p.to_s)));
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
            if self.session.auditioning() && ui.button("Stop audition").clicked() {
                self.session.audition.active.store(false, Ordering::Release);
            }
        });
    }

    fn audition(&self, proposal: &Proposal) {
        let audition = actions::audition(&lock(&self.session.capture), proposal);
        match audition {
            Ok(samples) => {
                *lock(&self.session.audition_request) = Some(samples);
                self.session
                    .set_message("Auditioning: press play in the host to stop, or Stop audition");
            }
            Err(e) => self.session.set_message(e.to_string()),
        }
    }

    fn decide(&mut self, beats: usize, proposal: &Proposal, shown: &[Proposal], verdict: Verdict) {
        let prefs = self.params.prefs_dir();
        match actions::decide(
            &self.session,
            prefs.as_deref(),
            beats,
            proposal,
            shown,
            verdict,
        ) {
            Ok(log) => {
                let span = (proposal.start, proposal.end);
                let mut note = format!("{verdict:?}ed; logged to {}", log.display());
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
                    }
                }
                self.session.set_message(note);
            }
            Err(e) => self.session.set_message(format!("Not logged: {e}")),
        }
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
                let result = self.render();
                self.report(result);
            }
            if ui.button("Export markers").clicked() {
                let result = self.export_markers();
                self.report(result);
            }
        });
        if let Some(message) = lock(&self.session.message).clone() {
            ui.label(message);
        }
    }

    fn report(&self, result: Result<String, String>) {
        match result {
            Ok(note) | Err(note) => self.session.set_message(note),
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
                Some(FitState::Done { beats, result }) => {
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

    /// Renders the chosen edit to a WAV; the message names the file.
    pub fn render(&self) -> Result<String, String> {
        let (beats, edit, _) = self.chosen_edit()?;
        let path = self.output_path("wav")?;
        let seconds = actions::render_to(&lock(&self.session.capture), beats, &edit, &path)
            .map_err(|e: ActionError| e.to_string())?;
        Ok(format!("Rendered {} to {}", clock(seconds), path.display()))
    }

    /// Writes Audacity labels and REAPER regions for the chosen edit.
    pub fn export_markers(&self) -> Result<String, String> {
        let (beats, edit, score) = self.chosen_edit()?;
        let labels = self.output_path("txt")?;
        let regions = labels.with_extension("csv");
        let capture = lock(&self.session.capture);
        for path in [&labels, &regions] {
            actions::export_markers(&capture, beats, &edit, score, path)
                .map_err(|e| e.to_string())?;
        }
        Ok(format!(
            "Markers written: {} (Audacity), {} (REAPER)",
            labels.display(),
            regions.display()
        ))
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
        ui.horizontal(|ui| {
            ui.small("Fine-tune on your decisions:");
            ui.code(format!("trainer finetune '{prefs}'"));
        });
        if let Some(problem) = model.problem {
            ui.colored_label(Color32::LIGHT_RED, problem);
        }
    }
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
