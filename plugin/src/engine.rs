//! Starting and stopping the plugin's worker threads. An [`Engine`] exists while the plugin is
//! active: activation starts the analysis thread and the scoring worker and hands the audio
//! thread its ring ends. Deactivation ([`Engine::stop`]) joins the analysis thread, which parks
//! its tracker in the session for the next activation, but does not wait for the scoring
//! worker, which may be in the middle of a fit: it is told to stop and drops the fit's result,
//! and its handle is returned to be joined later. Dropping an engine joins both.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use nice_plug_egui::RepaintNotifier;

use crate::analysis_thread::AnalysisThread;
use crate::jobs::Job;
use crate::params::CutscoreParams;
use crate::scoring_worker::ScoringWorker;
use crate::session::{Session, lock};
use crate::tap::{AUDITION_RING_S, AudioTap, AuditionPlayer, CAPTURE_RING_S, HostPosition};

/// Jobs queued for the worker (new-bar wake-ups coalesce: one queued is enough).
const JOB_QUEUE: usize = 8;

/// The running threads of an active plugin.
pub struct Engine {
    stop: Arc<AtomicBool>,
    jobs: Sender<Job>,
    analysis: Option<JoinHandle<()>>,
    worker: Option<JoinHandle<()>>,
}

/// What the audio thread gets from [`Engine::start`].
pub struct AudioEnds {
    pub tap: AudioTap,
    pub player: AuditionPlayer,
}

impl AudioEnds {
    /// The audio thread's work for one block, processed in place (the block holds the input):
    /// captures it for the analysis and plays the audition, if one is on. While `bypassed`
    /// nothing is captured, any audition is stopped and the input passes untouched.
    /// Real-time safe: it only copies samples and touches atomics.
    pub fn process(&mut self, block: &mut [&mut [f32]], host: HostPosition, bypassed: bool) {
        if bypassed {
            self.player.stop();
            return;
        }
        self.tap.capture_at(block, host);
        self.player.play(block, host.playing);
    }
}

impl Engine {
    /// Starts the threads for audio of `channels` channels at `sample_rate` Hz.
    pub fn start(
        session: &Arc<Session>,
        params: &Arc<CutscoreParams>,
        repaint: &RepaintNotifier,
        sample_rate: u32,
        channels: usize,
    ) -> std::io::Result<(Self, AudioEnds)> {
        let frames = |seconds: f64| (seconds * f64::from(sample_rate)).ceil() as usize;
        let (mut tap, ring) = AudioTap::new(channels, frames(CAPTURE_RING_S), session.tap.clone());
        let segments = tap.take_segment_reader();
        let (player, audition) =
            AuditionPlayer::new(channels, frames(AUDITION_RING_S), session.audition.clone());
        let (jobs, receiver) = crossbeam_channel::bounded(JOB_QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let analysis = AnalysisThread {
            session: session.clone(),
            ring,
            segments,
            ring_frames: 0,
            audition,
            jobs: jobs.clone(),
            sample_rate,
            channels: channels.max(1),
            stop: stop.clone(),
        };
        let worker = ScoringWorker {
            session: session.clone(),
            params: params.clone(),
            jobs: receiver,
            repaint: repaint.clone(),
            stop: stop.clone(),
        };
        let mut engine = Self {
            stop,
            jobs: jobs.clone(),
            analysis: None,
            worker: None,
        };
        engine.analysis = Some(
            std::thread::Builder::new()
                .name("cutscore-analysis".into())
                .spawn(move || analysis.run())?,
        );
        engine.worker = Some(
            std::thread::Builder::new()
                .name("cutscore-scoring".into())
                .spawn(move || worker.run())?,
        );
        *lock(&session.jobs) = Some(jobs);
        Ok((engine, AudioEnds { tap, player }))
    }

    /// Stops both threads and waits for the analysis thread, which analyses what is still
    /// queued in the ring (at most its 4 s of audio) and parks its tracker. A fit in progress
    /// is cancelled (within one batch of model evaluations). Returns the scoring worker's
    /// handle if it is still busy, to be joined later.
    pub fn stop(mut self) -> Option<JoinHandle<()>> {
        self.signal();
        if let Some(analysis) = self.analysis.take() {
            let _ = analysis.join();
        }
        self.worker.take().filter(|worker| !worker.is_finished())
    }

    fn signal(&self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.jobs.try_send(Job::Stop);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.signal();
        for thread in [self.analysis.take(), self.worker.take()]
            .into_iter()
            .flatten()
        {
            let _ = thread.join();
        }
    }
}
