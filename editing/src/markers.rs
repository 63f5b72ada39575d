//! Marker exports for the joins of an edit or a list of proposed cuts:
//!
//! - Audacity label track (`.txt`): one `start<TAB>end<TAB>label` line per label, times in
//!   seconds; a point label has `start == end`. Import with File > Import > Labels.
//! - REAPER region/marker list (`.csv`): `#,Name,Start,End,Length` with `M<n>` rows for markers
//!   and `R<n>` rows for regions, times as `m:ss.fff` (REAPER's Minutes:Seconds format), as the
//!   Region/Marker Manager exports and imports them.
//! - Edit list (`.json`): every join with its source times, output time and score.

use std::path::Path;

use serde::Serialize;

use super::render::RenderedJoin;

/// A point (`end_s == start_s`) or region marker.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub start_s: f64,
    pub end_s: f64,
    pub name: String,
}

/// One join of an edit list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EditListJoin {
    /// Source time where the cut starts.
    pub from_s: f64,
    /// Source time where playback resumes.
    pub to_s: f64,
    /// Time of the join in the output.
    pub output_s: f64,
    /// Crossfade length used.
    pub crossfade_s: f64,
    /// Reward-model score of the edit around this join, if scored.
    pub score: Option<f32>,
}

/// Everything about a rendered edit a person or another tool needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EditList {
    pub source_seconds: f64,
    pub output_seconds: f64,
    /// Score of the whole edit.
    pub score: Option<f32>,
    pub joins: Vec<EditListJoin>,
}

/// Marker file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerFormat {
    Audacity,
    Reaper,
    EditList,
}

impl MarkerFormat {
    /// The format a file name asks for: `.txt` Audacity, `.csv` REAPER, `.json` edit list.
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "txt" => Some(Self::Audacity),
            "csv" => Some(Self::Reaper),
            "json" => Some(Self::EditList),
            _ => None,
        }
    }
}

/// Point markers at each join on the output timeline, naming where in the source it jumps.
pub fn join_markers(joins: &[EditListJoin]) -> Vec<Marker> {
    joins
        .iter()
        .enumerate()
        .map(|(i, j)| Marker {
            start_s: j.output_s,
            end_s: j.output_s,
            name: match j.score {
                Some(score) => format!(
                    "join {} ({} -> {}, score {score:.2})",
                    i + 1,
                    clock(j.from_s),
                    clock(j.to_s)
                ),
                None => format!("join {} ({} -> {})", i + 1, clock(j.from_s), clock(j.to_s)),
            },
        })
        .collect()
}

/// Builds an edit list from rendered joins.
pub fn edit_list(
    source_seconds: f64,
    output_seconds: f64,
    score: Option<f32>,
    joins: &[RenderedJoin],
    join_scores: Option<&[f32]>,
) -> EditList {
    EditList {
        source_seconds,
        output_seconds,
        score,
        joins: joins
            .iter()
            .enumerate()
            .map(|(i, j)| EditListJoin {
                from_s: j.from_s,
                to_s: j.to_s,
                output_s: j.output_s,
                crossfade_s: j.crossfade_s,
                score: join_scores.and_then(|s| s.get(i).copied()),
            })
            .collect(),
    }
}

/// `m:ss.fff`.
pub fn clock(seconds: f64) -> String {
    let millis = (seconds.max(0.0) * 1000.0).round() as u64;
    format!(
        "{}:{:02}.{:03}",
        millis / 60_000,
        millis / 1000 % 60,
        millis % 1000
    )
}

fn clean(name: &str) -> String {
    name.replace(['\t', '\n', '\r'], " ")
}

/// The Audacity label-track text of `markers`.
pub fn audacity_labels(markers: &[Marker]) -> String {
    markers
        .iter()
        .map(|m| format!("{:.6}\t{:.6}\t{}\n", m.start_s, m.end_s, clean(&m.name)))
        .collect()
}

/// The REAPER region/marker CSV of `markers`.
pub fn reaper_csv(markers: &[Marker]) -> String {
    let mut out = String::from("#,Name,Start,End,Length\n");
    let (mut regions, mut points) = (0, 0);
    for m in markers {
        let name = format!("\"{}\"", clean(&m.name).replace('"', "\"\""));
        if m.end_s > m.start_s {
            regions += 1;
            out += &format!(
                "R{regions},{name},{},{},{}\n",
                clock(m.start_s),
                clock(m.end_s),
                clock(m.end_s - m.start_s)
            );
        } else {
            points += 1;
            out += &format!("M{points},{name},{},,\n", clock(m.start_s));
        }
    }
    out
}

/// Writes markers (or the edit list) in the format the file's extension names, atomically.
pub fn write_markers(path: &Path, list: &EditList, markers: &[Marker]) -> std::io::Result<()> {
    let text = match MarkerFormat::from_path(path) {
        Some(MarkerFormat::Audacity) => audacity_labels(markers),
        Some(MarkerFormat::Reaper) => reaper_csv(markers),
        Some(MarkerFormat::EditList) => {
            serde_json::to_string_pretty(list).map_err(std::io::Error::other)? + "\n"
        }
        None => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "{}: expected a .txt (Audacity), .csv (REAPER) or .json (edit list) file",
                    path.display()
                ),
            ));
        }
    };
    cutscore_core::atomic::write(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (EditList, Vec<Marker>) {
        let joins = [RenderedJoin {
            from_s: 62.5,
            to_s: 94.25,
            output_s: 62.5,
            crossfade_s: 0.03,
            correlation: 0.4,
            law: 0.4,
        }];
        let list = edit_list(180.0, 148.25, Some(4.5), &joins, Some(&[4.5]));
        let mut markers = join_markers(&list.joins);
        markers.push(Marker {
            start_s: 62.5,
            end_s: 94.25,
            name: "cut \"verse 2\", bars 17-32".into(),
        });
        (list, markers)
    }

    #[test]
    fn audacity_labels_are_tab_separated_seconds() {
        let (_, markers) = sample();
        assert_eq!(
            audacity_labels(&markers),
            "62.500000\t62.500000\tjoin 1 (1:02.500 -> 1:34.250, score 4.50)\n62.500000\t94.250000\tcut \"verse 2\", bars 17-32\n"
        );
    }

    #[test]
    fn reaper_csv_has_markers_and_regions_with_quoted_names() {
        let (_, markers) = sample();
        assert_eq!(
            reaper_csv(&markers),
            "#,Name,Start,End,Length\nM1,\"join 1 (1:02.500 -> 1:34.250, score 4.50)\",1:02.500,,\nR1,\"cut \"\"verse 2\"\", bars 17-32\",1:02.500,1:34.250,0:31.750\n"
        );
    }

    #[test]
    fn files_are_written_by_extension_and_unknown_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (list, markers) = sample();
        for name in ["m.txt", "m.csv", "m.json"] {
            write_markers(&dir.path().join(name), &list, &markers).unwrap();
        }
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("m.json")).unwrap()).unwrap();
        assert_eq!(json["joins"][0]["from_s"], 62.5);
        assert_eq!(json["joins"][0]["to_s"], 94.25);
        assert_eq!(json["output_seconds"], 148.25);
        assert!(write_markers(&dir.path().join("m.doc"), &list, &markers).is_err());
        assert!(!dir.path().join("m.doc").exists());
    }

    #[test]
    fn clock_rounds_to_milliseconds() {
        assert_eq!(clock(0.0), "0:00.000");
        assert_eq!(clock(59.9996), "1:00.000");
        assert_eq!(clock(3725.25), "62:05.250");
    }
}
