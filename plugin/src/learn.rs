//! "Learn from my decisions": runs `trainer finetune` on the prefs folder in a child process at
//! low priority, reports its stage and result for the status line, and leaves the swap to the
//! scoring worker, which reloads the user's model when the file changes.
//!
//! A child process rather than a thread: fine-tuning renders synthetic songs to replay and
//! scores a few thousand edits, which would make the plugin carry the synthesiser and the oracle
//! and share the host's process with a CPU-heavy job. As a process it runs at low priority
//! (`nice` where there is one), cannot take the host down, and the plugin stays small. The
//! trainer is found through `CUTSCORE_TRAINER`, beside the plugin (`cargo xtask bundle` builds
//! one next to the bundles, to be installed with them) or on `PATH`; without one, the editor
//! says how to install it.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::session::lock;

/// The environment variable that names the `trainer` binary to run.
pub const TRAINER_ENV: &str = "CUTSCORE_TRAINER";

/// Where learning stands.
#[derive(Debug, Clone, PartialEq)]
pub enum LearnState {
    Idle,
    /// Running since `started`; `stage` is the trainer's latest line ("scoring your edits").
    Running {
        started: Instant,
        stage: String,
    },
    /// Finished: what to tell the user.
    Done(String),
    Failed(String),
}

/// Starts and watches one fine-tuning at a time. Owned by the plugin's session: dropping it
/// (the plugin unloads) stops the trainer and waits for the thread watching it, so no thread
/// outlives the plugin's code.
#[derive(Debug)]
pub struct Learner {
    state: Arc<Mutex<LearnState>>,
    /// The running trainer, for [`Learner::drop`] to stop.
    child: Arc<Mutex<Option<Child>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Default for Learner {
    fn default() -> Self {
        Self {
            state: Arc::new(Mutex::new(LearnState::Idle)),
            child: Arc::new(Mutex::new(None)),
            thread: Mutex::new(None),
        }
    }
}

impl Drop for Learner {
    fn drop(&mut self) {
        if let Some(child) = lock(&self.child).as_mut() {
            let _ = child.kill();
        }
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

impl Learner {
    pub fn state(&self) -> LearnState {
        lock(&self.state).clone()
    }

    pub fn is_running(&self) -> bool {
        matches!(*lock(&self.state), LearnState::Running { .. })
    }

    /// Runs `trainer finetune PREFS --out MODEL --json` in the background. Does nothing while a
    /// run is going on.
    pub fn start(&self, trainer: &Path, prefs: &Path, model: &Path) {
        let mut state = lock(&self.state);
        if matches!(*state, LearnState::Running { .. }) {
            return;
        }
        *state = LearnState::Running {
            started: Instant::now(),
            stage: "starting".into(),
        };
        drop(state);
        let (shared, child) = (Arc::clone(&self.state), Arc::clone(&self.child));
        let (trainer, prefs, model) = (trainer.to_owned(), prefs.to_owned(), model.to_owned());
        let spawned = std::thread::Builder::new()
            .name("cutscore-learn".into())
            .spawn(move || {
                let outcome = match run(&trainer, &prefs, &model, &shared, &child) {
                    Ok(summary) => LearnState::Done(summary),
                    Err(reason) => LearnState::Failed(reason),
                };
                *lock(&shared) = outcome;
            });
        match spawned {
            Ok(handle) => {
                // The previous run's thread has finished (its state left Running).
                if let Some(old) = lock(&self.thread).replace(handle) {
                    let _ = old.join();
                }
            }
            Err(e) => {
                *lock(&self.state) = LearnState::Failed(format!("could not start learning: {e}"))
            }
        }
    }
}

/// The trainer's file name.
const TRAINER_NAME: &str = if cfg!(windows) {
    "trainer.exe"
} else {
    "trainer"
};

/// The `trainer` binary: `CUTSCORE_TRAINER` if it names a file, else one installed beside the
/// plugin's library or the file it links to ([`installed_with`]), else `trainer` on `PATH`.
pub fn find_trainer() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(TRAINER_ENV).map(PathBuf::from) {
        return path.is_file().then_some(path);
    }
    process_path::get_dylib_path()
        .and_then(|library| installed_with(&library, TRAINER_NAME))
        .or_else(|| on_path(TRAINER_NAME))
}

/// `name` [`beside`] the plugin's library `library` or, where that is a symlink (a bundle
/// linked into the DAW's folder), beside the file it links to.
fn installed_with(library: &Path, name: &str) -> Option<PathBuf> {
    beside(library, name).or_else(|| {
        std::fs::canonicalize(library)
            .ok()
            .and_then(|original| beside(&original, name))
    })
}

/// `name` in the folder of the plugin's library `library`, or else in the folder that holds
/// its bundle: a VST3 bundle keeps the library in `Cutscore.vst3/Contents/<arch>/` (a macOS
/// CLAP in `Cutscore.clap/Contents/MacOS/`), while a Linux CLAP is the library itself, so a
/// trainer copied into `~/.vst3/` or `~/.clap/` beside the bundles is found either way.
fn beside(library: &Path, name: &str) -> Option<PathBuf> {
    let bundle = library.ancestors().skip(1).find(|folder| {
        folder
            .extension()
            .is_some_and(|extension| extension == "vst3" || extension == "clap")
    });
    [library.parent(), bundle.and_then(Path::parent)]
        .into_iter()
        .flatten()
        .map(|folder| folder.join(name))
        .find(|candidate| candidate.is_file())
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Runs the trainer to the end (kept in `slot` meanwhile, so it can be stopped), passing its
/// stage lines to `state`; returns the summary.
fn run(
    trainer: &Path,
    prefs: &Path,
    model: &Path,
    state: &Mutex<LearnState>,
    slot: &Mutex<Option<Child>>,
) -> Result<String, String> {
    if !trainer.is_file() {
        return Err(format!(
            "could not start {}: no such file",
            trainer.display()
        ));
    }
    let mut command = match on_path("nice") {
        Some(nice) => {
            let mut c = Command::new(nice);
            c.args(["-n", "10"]).arg(trainer);
            c
        }
        None => Command::new(trainer),
    };
    command
        .arg("finetune")
        .arg(prefs)
        .arg("--out")
        .arg(model)
        .arg("--json")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", trainer.display()))?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    *lock(slot) = Some(child);
    // The report is one line; read it beside the log so neither pipe can fill up.
    let report = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let mut last_error = String::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        let text = stage_text(&line);
        if let Some(message) = text.strip_prefix("error: ") {
            last_error = message.to_owned();
        }
        if let LearnState::Running { stage, .. } = &mut *lock(state) {
            *stage = text;
        }
    }
    let report = report.join().unwrap_or_else(|_| Ok(String::new()));
    let status = lock(slot)
        .take()
        .map(|mut child| child.wait())
        .ok_or("the trainer was stopped")?
        .map_err(|e| format!("lost the trainer: {e}"))?;
    if !status.success() {
        return Err(if last_error.is_empty() {
            format!("the trainer stopped ({status})")
        } else {
            last_error
        });
    }
    let report = report.map_err(|e| format!("the trainer's report could not be read: {e}"))?;
    summary(report.lines().last().unwrap_or_default())
}

/// A log line without its `[INFO  module]` prefix.
fn stage_text(line: &str) -> String {
    match line
        .strip_prefix('[')
        .and_then(|rest| rest.split_once("] "))
    {
        Some((_, text)) => text.trim().to_owned(),
        None => line.trim().to_owned(),
    }
}

/// What the trainer's JSON report means to the user.
pub fn summary(json: &str) -> Result<String, String> {
    let report: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| format!("the trainer's report could not be read: {e}"))?;
    let number = |key: &str| report.get(key).and_then(serde_json::Value::as_f64);
    let pct = |key: &str| number(key).map(|v| format!("{:.0} %", v * 100.0));
    let pairs = number("user_pairs").unwrap_or(0.0) as u64;
    let songs = number("user_songs").unwrap_or(0.0) as u64;
    let mut text = format!("Learned your taste from {pairs} pairs on {songs} songs");
    if let (Some(before), Some(after)) = (pct("user_agreement_before"), pct("user_agreement_after"))
    {
        text.push_str(&format!(
            "; on songs it held out it agrees with you {after} of the time ({before} without your \
             taste)"
        ));
    }
    if let (Some(before), Some(after)) = (pct("base_accuracy_before"), pct("base_accuracy_after")) {
        text.push_str(&format!("; craft kept {after} (was {before})"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_reads_as_a_sentence() {
        let json = r#"{"user_pairs": 250, "user_songs": 10, "user_agreement_before": 0.5,
            "user_agreement_after": 0.84, "base_accuracy_before": 0.995,
            "base_accuracy_after": 0.99, "model_id": "abc"}"#;
        assert_eq!(
            summary(&json.replace('\n', " ")).unwrap(),
            "Learned your taste from 250 pairs on 10 songs; on songs it held out it agrees with \
             you 84 % of the time (50 % without your taste); craft kept 99 % (was 100 %)"
        );
        let single = r#"{"user_pairs": 25, "user_songs": 1, "user_agreement_after": null}"#;
        assert_eq!(
            summary(single).unwrap(),
            "Learned your taste from 25 pairs on 1 songs"
        );
        assert!(summary("no json").is_err());
        assert_eq!(
            stage_text("[INFO  trainer::cmd::finetune] scoring your edits"),
            "scoring your edits"
        );
    }

    #[test]
    fn a_trainer_beside_the_plugin_or_its_bundle_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // A Linux CLAP is one library file in the plugin folder; a VST3 bundle keeps its
        // library two folders down.
        let clap = root.join("clap/Cutscore.clap");
        let vst3 = root.join("vst3/Cutscore.vst3/Contents/x86_64-linux/Cutscore.so");
        for library in [&clap, &vst3] {
            std::fs::create_dir_all(library.parent().unwrap()).unwrap();
            std::fs::write(library, b"plugin").unwrap();
            assert_eq!(beside(library, TRAINER_NAME), None);
        }
        std::fs::write(root.join("clap").join(TRAINER_NAME), b"trainer").unwrap();
        assert_eq!(
            beside(&clap, TRAINER_NAME),
            Some(root.join("clap").join(TRAINER_NAME))
        );
        assert_eq!(beside(&vst3, TRAINER_NAME), None);
        // Beside the VST3 bundle, then inside it beside its library, which comes first.
        let outside = root.join("vst3").join(TRAINER_NAME);
        std::fs::write(&outside, b"trainer").unwrap();
        assert_eq!(beside(&vst3, TRAINER_NAME), Some(outside));
        let inside = vst3.parent().unwrap().join(TRAINER_NAME);
        std::fs::write(&inside, b"trainer").unwrap();
        assert_eq!(beside(&vst3, TRAINER_NAME), Some(inside));
        // A folder of that name is not a trainer.
        let elsewhere = root.join("other/Cutscore.clap");
        std::fs::create_dir_all(elsewhere.parent().unwrap().join(TRAINER_NAME)).unwrap();
        assert_eq!(beside(&elsewhere, TRAINER_NAME), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_trainer_beside_the_bundle_a_symlink_points_to_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let (built, installed) = (dir.path().join("bundles"), dir.path().join("clap"));
        for folder in [&built, &installed] {
            std::fs::create_dir_all(folder).unwrap();
        }
        let library = built.join("Cutscore.clap");
        std::fs::write(&library, b"plugin").unwrap();
        let link = installed.join("Cutscore.clap");
        std::os::unix::fs::symlink(&library, &link).unwrap();
        assert_eq!(installed_with(&link, TRAINER_NAME), None);
        std::fs::write(built.join(TRAINER_NAME), b"trainer").unwrap();
        assert_eq!(
            installed_with(&link, TRAINER_NAME),
            Some(std::fs::canonicalize(&built).unwrap().join(TRAINER_NAME))
        );
        // One beside the link itself comes first.
        std::fs::write(installed.join(TRAINER_NAME), b"trainer").unwrap();
        assert_eq!(
            installed_with(&link, TRAINER_NAME),
            Some(installed.join(TRAINER_NAME))
        );
    }

    /// A stand-in trainer: a shell script that logs a stage, writes the model file it was given
    /// and prints a report, or fails with an error line.
    #[cfg(unix)]
    fn fake_trainer(dir: &Path, fail: bool) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let body = if fail {
            "echo 'error: reading decisions from x: no pairs' >&2; exit 1".to_owned()
        } else {
            "echo '[INFO  trainer] scoring your edits' >&2; sleep 0.2; \
             printf weights > \"$4\"; \
             echo '{\"user_pairs\": 12, \"user_songs\": 2}'"
                .to_owned()
        };
        let path = dir.join(if fail { "failing-trainer" } else { "trainer" });
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[cfg(unix)]
    fn wait(learner: &Learner) -> LearnState {
        let deadline = Instant::now() + std::time::Duration::from_secs(20);
        while learner.is_running() && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        learner.state()
    }

    #[cfg(unix)]
    #[test]
    fn a_run_reports_its_stage_then_its_result_and_a_failure_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model.safetensors");
        let learner = Learner::default();
        learner.start(&fake_trainer(dir.path(), false), dir.path(), &model);
        assert!(learner.is_running());
        // A second press while it runs starts nothing.
        learner.start(&fake_trainer(dir.path(), true), dir.path(), &model);
        assert_eq!(
            wait(&learner),
            LearnState::Done("Learned your taste from 12 pairs on 2 songs".into())
        );
        assert_eq!(std::fs::read(&model).unwrap(), b"weights");
        learner.start(&fake_trainer(dir.path(), true), dir.path(), &model);
        assert_eq!(
            wait(&learner),
            LearnState::Failed("reading decisions from x: no pairs".into())
        );
        learner.start(&dir.path().join("missing"), dir.path(), &model);
        assert!(matches!(wait(&learner), LearnState::Failed(m) if m.contains("could not start")));
    }
}
