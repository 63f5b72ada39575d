//! Cutscore as a CLAP and VST3 plugin. It passes its input through untouched (bit for bit,
//! zero latency) while it listens: the audio thread copies each block into a lock-free ring;
//! the analysis thread finds beats and bars and computes features; the scoring worker proposes
//! cuts and scores them with the reward model; the egui editor lists them for audition,
//! accept/reject (logged for `trainer finetune`, which the editor runs through [`learn`]),
//! fit-to-length, render and marker export.
//! Bypassed (the host's bypass switch, [`params::CutscoreParams::bypass`]), it only passes the
//! audio through: no capture, no audition.
//!
//! Threads: audio → [`tap`] ring → [`analysis_thread`] → [`scoring_worker`] → [`session`] →
//! [`editor`]. [`engine`] starts and stops them with activation.

use std::num::NonZeroU32;
use std::sync::Arc;

use nice_plug::prelude::*;
use nice_plug_egui::{EguiEditor, EguiEditorState, EguiNiceSettings, RepaintNotifier};

pub mod actions;
pub mod analysis_thread;
pub mod capture_audio;
pub mod editor;
pub mod engine;
pub mod half_beats;
pub mod jobs;
pub mod learn;
pub mod params;
pub mod score_cache;
pub mod scoring_worker;
pub mod session;
pub mod settle;
pub mod tap;
pub mod teach;

use engine::{AudioEnds, Engine};
use params::CutscoreParams;
use session::Session;

pub struct Cutscore {
    params: Arc<CutscoreParams>,
    session: Arc<Session>,
    repaint: RepaintNotifier,
    engine: Option<Engine>,
    audio: Option<AudioEnds>,
    /// Scoring workers of earlier activations still finishing a fit; joined on drop.
    retired: Vec<std::thread::JoinHandle<()>>,
}

impl Default for Cutscore {
    fn default() -> Self {
        Self {
            params: Arc::new(CutscoreParams::default()),
            session: Arc::new(Session::new(cutscore_reward::user_model::user_model_path())),
            repaint: RepaintNotifier::new(),
            engine: None,
            audio: None,
            retired: Vec::new(),
        }
    }
}

impl Cutscore {
    /// The state the threads and the editor share (for tests and the editor).
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// Stops the threads without waiting for a fit in progress (see [`Engine::stop`]).
    fn stop_engine(&mut self) {
        self.audio = None;
        *session::lock(&self.session.jobs) = None;
        // A fit in progress is dropped with its worker: say so instead of "Fitting…" forever.
        let mut fit = session::lock(&self.session.fit);
        if matches!(*fit, Some(session::FitState::Running { .. })) {
            *fit = Some(session::FitState::Failed(
                "interrupted: the host deactivated the plugin; press Fit to length again".into(),
            ));
        }
        drop(fit);
        if let Some(engine) = self.engine.take() {
            self.retired.extend(engine.stop());
        }
        self.retired.retain(|worker| !worker.is_finished());
    }
}

impl Drop for Cutscore {
    fn drop(&mut self) {
        self.stop_engine();
        for worker in self.retired.drain(..) {
            let _ = worker.join();
        }
    }
}

impl Plugin for Cutscore {
    const NAME: &'static str = "Cutscore";
    const VENDOR: &'static str = "Cutscore";
    const URL: &'static str = "https://cutscore.invalid";
    const EMAIL: &'static str = "dev@cutscore.invalid";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[
        AudioIOLayout {
            main_input_channels: NonZeroU32::new(2),
            main_output_channels: NonZeroU32::new(2),
            ..AudioIOLayout::const_default()
        },
        AudioIOLayout {
            main_input_channels: NonZeroU32::new(1),
            main_output_channels: NonZeroU32::new(1),
            ..AudioIOLayout::const_default()
        },
    ];

    type Editor = EguiEditor<editor::CutscoreEditor>;
    type SysExMessage = ();
    type BackgroundTask = ();

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn filter_state(state: &mut PluginState) {
        params::migrate_state(state);
    }

    fn editor(&mut self, _async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        let (width, height) = self
            .params
            .window_size
            .read()
            .map(|size| *size)
            .unwrap_or(params::DEFAULT_WINDOW_SIZE);
        let state = EguiEditorState::from_size(
            nice_plug::editor::dpi::LogicalSize::new(width as f64, height as f64),
            1.0,
        );
        let settings = EguiNiceSettings::new()
            .with_tile("Cutscore")
            .with_resize_hint(ResizeHint {
                can_resize: true,
                ..ResizeHint::default()
            });
        nice_plug_egui::create_egui_editor(
            state,
            self.repaint.clone(),
            settings,
            editor::CutscoreEditor::new(self.params.clone(), self.session.clone()),
        )
    }

    fn activate(
        &mut self,
        audio_io_layout: &AudioIOLayout,
        buffer_config: &BufferConfig,
        _context: &mut impl ActivateContext<Self>,
    ) -> bool {
        self.stop_engine();
        let channels = audio_io_layout
            .main_input_channels
            .map_or(2, |c| c.get() as usize);
        let sample_rate = buffer_config.sample_rate.round() as u32;
        match Engine::start(
            &self.session,
            &self.params,
            &self.repaint,
            sample_rate,
            channels,
        ) {
            Ok((engine, mut audio)) => {
                audio
                    .tap
                    .set_offline(buffer_config.process_mode == ProcessMode::Offline);
                self.engine = Some(engine);
                self.audio = Some(audio);
                true
            }
            Err(e) => {
                nice_error!("Cutscore could not start its threads: {e}");
                false
            }
        }
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        // The main buffer is processed in place: the output already holds the input.
        if let Some(audio) = self.audio.as_mut() {
            let host = tap::HostPosition::from_transport(context.transport());
            audio.process(buffer.as_slice(), host, self.params.bypass.value());
        }
        ProcessStatus::Normal
    }

    fn deactivate(&mut self) {
        self.stop_engine();
    }
}

impl ClapPlugin for Cutscore {
    const CLAP_ID: &'static str = "com.cutscore.plugin";
    const CLAP_DESCRIPTION: Option<&'static str> =
        Some("Finds beats and bars and proposes cuts scored by a learned reward model");
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] = &[
        ClapFeature::AudioEffect,
        ClapFeature::Analyzer,
        ClapFeature::Utility,
    ];
}

impl Vst3Plugin for Cutscore {
    const VST3_CLASS_ID: [u8; 16] = *b"CutscoreCutsPlug";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] = &[
        Vst3SubCategory::Fx,
        Vst3SubCategory::Analyzer,
        Vst3SubCategory::Tools,
    ];
}

nice_export_clap!(Cutscore);
nice_export_vst3!(Cutscore);
