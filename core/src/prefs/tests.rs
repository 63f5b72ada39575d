//! The decision log: round trips, crash damage, newer versions, missing tracks, the pair rule.

use super::*;
use crate::edit::Edit;
use crate::features::FeatureMatrix;
use crate::grid::BeatGrid;

const TRACK: &str = "00112233aabbccdd";

fn track_record(id: &str, beats: usize) -> TrackRecord {
    let grid = BeatGrid::regular(0.0, 0.5, beats, 4, 0).unwrap();
    let mut features = FeatureMatrix::zeros(beats);
    features.row_mut(1)[3] = 0.25;
    TrackRecord::new(id.into(), Some("song.wav".into()), grid, features)
}

fn decision(track: &str, span: (usize, usize), verdict: Verdict) -> Record {
    Record::Decision(Decision {
        v: 1,
        time: "2026-11-24T21:00:00Z".into(),
        track: track.into(),
        edit: Edit::new(32, [span]).unwrap(),
        verdict,
        score: Some(1.5),
        model: Some("0123456789abcdef".into()),
        shown: vec![Edit::new(32, [(4, 8)]).unwrap()],
    })
}

fn log_with_track() -> (tempfile::TempDir, PrefsLog) {
    let dir = tempfile::tempdir().unwrap();
    let log = PrefsLog::create(dir.path()).unwrap();
    assert!(log.save_track(&track_record(TRACK, 32)).unwrap());
    (dir, log)
}

fn decisions_path(log: &PrefsLog) -> std::path::PathBuf {
    log.dir().join(DECISIONS_FILE)
}

#[test]
fn round_trip_of_decisions_comparisons_and_tracks() {
    let (_dir, log) = log_with_track();
    assert!(
        !log.save_track(&track_record(TRACK, 32)).unwrap(),
        "a track is stored once"
    );
    log.append(&decision(TRACK, (8, 12), Verdict::Accept))
        .unwrap();
    log.append(&decision(TRACK, (16, 20), Verdict::Reject))
        .unwrap();
    let comparison = Record::Comparison(Comparison {
        v: 1,
        time: Record::now(),
        track: TRACK.into(),
        a: Edit::new(32, [(8, 16)]).unwrap(),
        b: Edit::new(32, [(12, 14)]).unwrap(),
        preferred: Side::B,
        confidence: 0.8,
        source: Some("synthetic-oracle".into()),
    });
    log.append(&comparison).unwrap();
    let contents = PrefsContents::read(log.dir()).unwrap();
    assert_eq!(contents.report.decisions, 2);
    assert_eq!(contents.report.comparisons, 1);
    assert!(contents.report.skipped.is_empty());
    assert_eq!(contents.tracks[TRACK], track_record(TRACK, 32));
    assert_eq!(contents.records[2], comparison);
    let pairs = contents.pairs();
    assert_eq!(pairs.len(), 2);
    assert_eq!(pairs[0].chosen, Edit::new(32, [(12, 14)]).unwrap());
    assert_eq!(pairs[0].confidence, 0.8);
    assert_eq!(pairs[1].chosen, Edit::new(32, [(8, 12)]).unwrap());
    assert_eq!(pairs[1].rejected, Edit::new(32, [(16, 20)]).unwrap());
    assert_eq!(pairs[1].source, PairSource::User);
}

#[test]
fn a_torn_last_line_is_skipped_and_the_next_append_survives() {
    let (_dir, log) = log_with_track();
    log.append(&decision(TRACK, (8, 12), Verdict::Accept))
        .unwrap();
    // A crash mid-write leaves half a line without its newline.
    let mut file = OpenOptions::new()
        .append(true)
        .open(decisions_path(&log))
        .unwrap();
    file.write_all(br#"{"kind":"decision","time":"2026-11-24T21:0"#)
        .unwrap();
    drop(file);
    let contents = PrefsContents::read(log.dir()).unwrap();
    assert_eq!(contents.records.len(), 1);
    assert_eq!(contents.report.skipped.len(), 1);
    assert_eq!(contents.report.skipped[0].line, 2);
    log.append(&decision(TRACK, (16, 20), Verdict::Reject))
        .unwrap();
    let contents = PrefsContents::read(log.dir()).unwrap();
    assert_eq!(contents.records.len(), 2, "{:?}", contents.report);
    assert_eq!(contents.pairs().len(), 1);
}

#[test]
fn corrupt_lines_unknown_kinds_and_fields_do_not_lose_other_records() {
    let (_dir, log) = log_with_track();
    log.append(&decision(TRACK, (8, 12), Verdict::Accept))
        .unwrap();
    let mut file = OpenOptions::new()
        .append(true)
        .open(decisions_path(&log))
        .unwrap();
    writeln!(file, "not json at all").unwrap();
    writeln!(file, r#"{{"kind":"rating","track":"{TRACK}","stars":5}}"#).unwrap();
    writeln!(
        file,
        r#"{{"v":2,"kind":"decision","time":"t","track":"{TRACK}","edit":{{"beats":32,"removed":[[20,24]]}},"verdict":"reject","mood":"happy"}}"#
    )
    .unwrap();
    writeln!(file, r#"{{"kind":"decision","track":"{TRACK}","edit":{{"beats":32,"removed":[[9,99]]}},"time":"t","verdict":"reject"}}"#).unwrap();
    drop(file);
    let contents = PrefsContents::read(log.dir()).unwrap();
    assert_eq!(contents.records.len(), 2);
    let reasons: Vec<usize> = contents.report.skipped.iter().map(|s| s.line).collect();
    assert_eq!(reasons, vec![2, 3, 5]);
    assert!(
        contents.report.skipped[1]
            .reason
            .contains("unknown record kind")
    );
    assert_eq!(contents.pairs().len(), 1);
}

#[test]
fn decisions_whose_track_is_missing_or_foreign_are_reported_and_skipped() {
    let (dir, log) = log_with_track();
    let other = "ffff0000ffff0000";
    log.append(&decision(other, (8, 12), Verdict::Accept))
        .unwrap();
    let mut foreign = track_record("abab", 32);
    foreign.feature_schema = 999;
    std::fs::write(
        dir.path().join(TRACKS_DIR).join("abab.json"),
        serde_json::to_vec(&foreign).unwrap(),
    )
    .unwrap();
    log.append(&decision("abab", (8, 12), Verdict::Accept))
        .unwrap();
    log.append(&decision("../etc", (8, 12), Verdict::Accept))
        .unwrap();
    log.append(&decision(TRACK, (8, 12), Verdict::Accept))
        .unwrap();
    let contents = PrefsContents::read(log.dir()).unwrap();
    assert_eq!(contents.records.len(), 1);
    let skipped = &contents.report.skipped;
    assert_eq!(skipped.len(), 3);
    assert!(skipped[0].reason.contains("is missing"), "{skipped:?}");
    assert!(
        skipped[1].reason.contains("feature schema v999"),
        "{skipped:?}"
    );
    assert!(
        skipped[2].reason.contains("not a valid file name"),
        "{skipped:?}"
    );
}

#[test]
fn reading_never_modifies_the_folder() {
    let (dir, log) = log_with_track();
    log.append(&decision(TRACK, (8, 12), Verdict::Accept))
        .unwrap();
    let mut file = OpenOptions::new()
        .append(true)
        .open(decisions_path(&log))
        .unwrap();
    file.write_all(b"{torn").unwrap();
    drop(file);
    let before = std::fs::read(decisions_path(&log)).unwrap();
    PrefsContents::read(dir.path()).unwrap();
    assert_eq!(std::fs::read(decisions_path(&log)).unwrap(), before);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn missing_and_empty_folders() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    assert!(matches!(
        PrefsContents::read(&missing),
        Err(PrefsError::NotAFolder { .. })
    ));
    let empty = PrefsContents::read(dir.path()).unwrap();
    assert!(empty.records.is_empty() && empty.pairs().is_empty());
}

#[test]
fn the_latest_verdict_wins_and_one_sided_logs_make_no_pairs() {
    let records = vec![
        decision(TRACK, (8, 12), Verdict::Accept),
        decision(TRACK, (16, 20), Verdict::Accept),
        decision(TRACK, (8, 12), Verdict::Reject),
    ];
    let pairs = pairs_from_records(&records);
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].chosen, Edit::new(32, [(16, 20)]).unwrap());
    assert_eq!(pairs[0].rejected, Edit::new(32, [(8, 12)]).unwrap());
    let all_accept = vec![
        decision(TRACK, (8, 12), Verdict::Accept),
        decision(TRACK, (16, 20), Verdict::Accept),
    ];
    assert!(pairs_from_records(&all_accept).is_empty());
}

#[test]
fn track_ids_depend_on_samples_and_rate() {
    let a = track_id(&[0.0, 0.5, -0.5], 48_000);
    assert_eq!(a.len(), 16);
    assert_eq!(a, track_id(&[0.0, 0.5, -0.5], 48_000));
    assert_ne!(a, track_id(&[0.0, 0.5, -0.5], 44_100));
    assert_ne!(a, track_id(&[0.0, 0.5, -0.25], 48_000));
    let long: Vec<f32> = (0..10_000).map(|i| (i as f32 * 0.01).sin()).collect();
    assert_eq!(
        track_id_of_parts([&long[..3], &long[3..5000], &long[5000..]], 48_000),
        track_id(&long, 48_000),
        "chunked audio hashes as one slice"
    );
}

#[test]
fn invalid_tracks_are_not_saved() {
    let dir = tempfile::tempdir().unwrap();
    let log = PrefsLog::create(dir.path()).unwrap();
    let mut bad = track_record(TRACK, 32);
    bad.features = FeatureMatrix::zeros(31);
    assert!(matches!(
        log.save_track(&bad),
        Err(PrefsError::BadTrack { .. })
    ));
    assert!(!log.has_track(TRACK));
}

fn undo(track: &str, span: (usize, usize)) -> Record {
    Record::Undo(Undo {
        v: 1,
        time: "2026-11-24T21:01:00Z".into(),
        track: track.into(),
        edit: Edit::new(32, [span]).unwrap(),
    })
}

#[test]
fn an_undo_withdraws_the_latest_decision_on_its_edit() {
    let (_dir, log) = log_with_track();
    for record in [
        decision(TRACK, (8, 12), Verdict::Accept),
        decision(TRACK, (16, 20), Verdict::Reject),
        decision(TRACK, (20, 24), Verdict::Reject),
        // A mis-click: (20, 24) accepted, then undone, so its reject stands again.
        decision(TRACK, (20, 24), Verdict::Accept),
        undo(TRACK, (20, 24)),
        // (16, 20)'s reject withdrawn altogether.
        undo(TRACK, (16, 20)),
        // An undo with nothing to withdraw changes nothing.
        undo(TRACK, (4, 8)),
    ] {
        log.append(&record).unwrap();
    }
    let contents = PrefsContents::read(log.dir()).unwrap();
    assert_eq!(contents.report.undos, 3);
    assert_eq!(contents.report.decisions, 4);
    let pairs = pairs_from_records(&contents.records);
    let spans: Vec<_> = pairs
        .iter()
        .map(|p| (p.chosen.removed()[0].start, p.rejected.removed()[0].start))
        .collect();
    assert_eq!(spans, vec![(8, 20)], "{pairs:?}");
}

#[test]
fn decisions_on_a_track_that_grew_are_read_against_its_longest_analysis_and_pair() {
    let dir = tempfile::tempdir().unwrap();
    let log = PrefsLog::create(dir.path()).unwrap();
    // The first decision was made when 24 beats were known, the second at 32.
    let short = track_record(TRACK, 24);
    let long = track_record(TRACK, 32);
    assert!(long.extends(&short));
    assert!(log.save_track(&short).unwrap());
    let early = Record::Decision(Decision {
        edit: Edit::new(24, [(8, 12)]).unwrap(),
        shown: vec![],
        ..match decision(TRACK, (8, 12), Verdict::Accept) {
            Record::Decision(d) => d,
            _ => unreachable!(),
        }
    });
    log.append(&early).unwrap();
    assert!(
        log.save_track(&long).unwrap(),
        "the longer analysis replaces the shorter"
    );
    assert!(
        !log.save_track(&short).unwrap(),
        "and is never replaced by a shorter one"
    );
    log.append(&decision(TRACK, (16, 20), Verdict::Reject))
        .unwrap();

    let contents = PrefsContents::read(dir.path()).unwrap();
    assert!(
        contents.report.skipped.is_empty(),
        "{:?}",
        contents.report.skipped
    );
    assert_eq!(contents.tracks[TRACK].grid.len(), 32);
    let pairs = pairs_from_records(&contents.records);
    assert_eq!(pairs.len(), 1, "the two decisions pair");
    assert_eq!(pairs[0].chosen, Edit::new(32, [(8, 12)]).unwrap());

    // Another song under the same id (different beats) never replaces the stored one.
    let mut longer = long.clone();
    longer.grid = BeatGrid::regular(0.01, 0.5, 40, 4, 0).unwrap();
    longer.features = FeatureMatrix::zeros(40);
    assert!(!longer.extends(&contents.tracks[TRACK]));
    assert!(!log.save_track(&longer).unwrap());
}
