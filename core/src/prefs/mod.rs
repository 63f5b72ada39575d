//! The decision log: what the user accepted and rejected, written by the plugin and read by
//! `trainer finetune`. The format is specified in `docs/prefs-format.md`; in short:
//!
//! ```text
//! prefs/
//!   decisions.jsonl      append-only JSON lines: decisions (plugin) and comparisons (synthetic)
//!   tracks/<id>.json     each track's beat grid and 121-feature matrix
//! ```
//!
//! Writing appends one whole line per record and fsyncs it; track files are written atomically,
//! and rewritten only by a longer analysis of the same audio (a capture that grew). Reading is forgiving where a crash or a newer version could leave
//! something odd: a torn or corrupt line, an unknown record kind, a decision whose track file
//! is missing or was made for other features are each reported in [`LoadReport`] and skipped,
//! and nothing else is lost. Unknown fields are ignored. The log is never modified by readers.

mod pairs;
mod record;

pub use pairs::{PairSource, Preference, pairs_from_records};
pub use record::{
    Comparison, Decision, RECORD_VERSION, Record, Side, TrackRecord, USER_SOURCE, Undo, Verdict,
    track_id, track_id_of_parts,
};

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Name of the decision log inside a prefs folder.
pub const DECISIONS_FILE: &str = "decisions.jsonl";
/// Name of the folder of track files inside a prefs folder.
pub const TRACKS_DIR: &str = "tracks";

/// Why the decision log could not be written or read at all.
#[derive(Debug, thiserror::Error)]
pub enum PrefsError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(
        "{path} does not exist or is not a folder; expected a prefs folder with {DECISIONS_FILE}"
    )]
    NotAFolder { path: PathBuf },
    #[error("track id `{0}` is not a valid file name; expected hex digits")]
    BadTrackId(String),
    #[error("track {track} is invalid: {reason}")]
    BadTrack { track: String, reason: String },
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> PrefsError + 'a {
    move |source| PrefsError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// A prefs folder, for appending decisions and storing track analyses.
#[derive(Debug, Clone)]
pub struct PrefsLog {
    dir: PathBuf,
}

impl PrefsLog {
    /// Opens (creating if needed) the prefs folder `dir`.
    pub fn create(dir: &Path) -> Result<Self, PrefsError> {
        let tracks = dir.join(TRACKS_DIR);
        fs::create_dir_all(&tracks).map_err(io_error("create", &tracks))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one record as one line and flushes it to disk. If the log ends in a torn line
    /// (a crash mid-write), the new record starts on a fresh line so it is not lost with it.
    pub fn append(&self, record: &Record) -> Result<(), PrefsError> {
        let path = self.dir.join(DECISIONS_FILE);
        let mut line = serde_json::to_string(record).expect("records always serialize");
        line.push('\n');
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io_error("open", &path))?;
        if ends_in_torn_line(&mut file).map_err(io_error("read", &path))? {
            line.insert(0, '\n');
        }
        file.write_all(line.as_bytes())
            .map_err(io_error("append to", &path))?;
        file.sync_data().map_err(io_error("sync", &path))
    }

    /// Stores a track's analysis. A stored analysis for the same id is left as it is, unless
    /// this one is longer and begins with the same beats (the plugin's capture grew between
    /// two decisions on one track): then it replaces it, atomically, so every decision on the
    /// track (each over the beats there were then) is read against the longest analysis.
    /// Returns whether a file was written.
    pub fn save_track(&self, track: &TrackRecord) -> Result<bool, PrefsError> {
        track.validate().map_err(|reason| PrefsError::BadTrack {
            track: track.track.clone(),
            reason,
        })?;
        let path = self.track_path(&track.track)?;
        if path.exists() {
            let grows = load_track(&self.dir, &track.track)
                .is_ok_and(|stored| stored.grid.len() < track.grid.len() && track.extends(&stored));
            if !grows {
                return Ok(false);
            }
        }
        let json = serde_json::to_vec(track).expect("track records always serialize");
        crate::atomic::write(&path, &json).map_err(io_error("write", &path))?;
        Ok(true)
    }

    /// Whether the analysis of `track` is already stored.
    pub fn has_track(&self, track: &str) -> bool {
        self.track_path(track).is_ok_and(|p| p.exists())
    }

    fn track_path(&self, track: &str) -> Result<PathBuf, PrefsError> {
        if track.is_empty() || !track.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(PrefsError::BadTrackId(track.to_string()));
        }
        Ok(self.dir.join(TRACKS_DIR).join(format!("{track}.json")))
    }
}

fn ends_in_torn_line(file: &mut File) -> io::Result<bool> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// A line or track that was skipped while reading, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    /// 1-based line of `decisions.jsonl`, or 0 for a track-level problem.
    pub line: usize,
    pub reason: String,
}

/// What reading a prefs folder found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    pub lines: usize,
    pub decisions: usize,
    pub comparisons: usize,
    /// Decisions withdrawn by [`Record::Undo`].
    pub undos: usize,
    pub skipped: Vec<Skipped>,
}

/// Everything usable in a prefs folder: records whose tracks are present and valid.
#[derive(Debug, Clone, Default)]
pub struct PrefsContents {
    pub records: Vec<Record>,
    pub tracks: HashMap<String, TrackRecord>,
    pub report: LoadReport,
}

impl PrefsContents {
    /// Reads a prefs folder without modifying anything in it.
    pub fn read(dir: &Path) -> Result<Self, PrefsError> {
        if !dir.is_dir() {
            return Err(PrefsError::NotAFolder {
                path: dir.to_path_buf(),
            });
        }
        let path = dir.join(DECISIONS_FILE);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(io_error("open", &path)(e)),
        };
        let mut contents = Self::default();
        let mut track_status: HashMap<String, Result<(), String>> = HashMap::new();
        for (index, line) in BufReader::new(file).split(b'\n').enumerate() {
            let line = line.map_err(io_error("read", &path))?;
            let number = index + 1;
            contents.report.lines = number;
            let text = String::from_utf8_lossy(&line);
            if text.trim().is_empty() {
                continue;
            }
            let record = match Record::parse(&text) {
                Ok(Some(record)) => record,
                Ok(None) => {
                    contents.skip(number, "unknown record kind (written by a newer version?)");
                    continue;
                }
                Err(e) => {
                    contents.skip(
                        number,
                        &format!("not a valid record ({e}); a torn or corrupt line"),
                    );
                    continue;
                }
            };
            let track = record.track().to_string();
            let status = track_status.entry(track.clone()).or_insert_with(|| {
                load_track(dir, &track).map(|t| {
                    contents.tracks.insert(track.clone(), t);
                })
            });
            if let Err(reason) = status {
                let reason = reason.clone();
                contents.skip(number, &reason);
                continue;
            }
            let beats = contents.tracks[&track].grid.len();
            if let Some(edit_beats) = record
                .edits()
                .iter()
                .map(|e| e.source_beats())
                .find(|&b| b > beats)
            {
                contents.skip(
                    number,
                    &format!("edit is for {edit_beats} beats but track {track} has {beats}"),
                );
                continue;
            }
            // A decision made while the track was shorter cuts the same beats of the longer
            // analysis.
            let record = match record.extended_to(beats) {
                Ok(record) => record,
                Err(e) => {
                    contents.skip(number, &format!("edit does not fit track {track}: {e}"));
                    continue;
                }
            };
            match record {
                Record::Decision(_) => contents.report.decisions += 1,
                Record::Comparison(_) => contents.report.comparisons += 1,
                Record::Undo(_) => contents.report.undos += 1,
            }
            contents.records.push(record);
        }
        for skipped in &contents.report.skipped {
            log::warn!(
                "{}: line {}: {}",
                path.display(),
                skipped.line,
                skipped.reason
            );
        }
        Ok(contents)
    }

    fn skip(&mut self, line: usize, reason: &str) {
        self.report.skipped.push(Skipped {
            line,
            reason: reason.to_string(),
        });
    }

    /// The preference pairs these records make (see [`pairs_from_records`]).
    pub fn pairs(&self) -> Vec<Preference> {
        pairs_from_records(&self.records)
    }
}

fn load_track(dir: &Path, track: &str) -> Result<TrackRecord, String> {
    let log = PrefsLog {
        dir: dir.to_path_buf(),
    };
    let path = log.track_path(track).map_err(|e| e.to_string())?;
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(format!("track file {} is missing", path.display()));
        }
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let record: TrackRecord = serde_json::from_slice(&bytes)
        .map_err(|e| format!("track file {} is not valid: {e}", path.display()))?;
    if record.feature_schema != crate::features::FEATURE_SCHEMA_VERSION {
        return Err(format!(
            "track {track} was analysed with feature schema v{}; this build uses v{}",
            record.feature_schema,
            crate::features::FEATURE_SCHEMA_VERSION
        ));
    }
    record
        .validate()
        .map_err(|reason| format!("track {track} is invalid: {reason}"))?;
    Ok(record)
}

#[cfg(test)]
mod tests;
