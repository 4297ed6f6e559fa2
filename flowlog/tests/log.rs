//! The flow log through its public API: persistence, rotation, the size
//! bound, queries, and recovery from damaged files.

mod common;

use std::fs::{self, OpenOptions};

use common::{all, newest_first, open, payloads, rec, segment_files, small, Rec};
use stockade_flowlog::{FlowLog, FlowLogError, Limits, MAX_RECORD_BYTES};

#[test]
fn records_survive_reopen_and_appends_continue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first: Vec<Rec> = (0..100).map(|i| rec(i, 1_000 + i)).collect();
    {
        let mut log = open(dir.path(), Limits::default());
        log.append(&first[..60]).expect("appends");
        log.append(&first[60..]).expect("appends");
        log.sync().expect("syncs");
    }
    let mut log = open(dir.path(), Limits::default());
    assert_eq!(all(&log), newest_first(&first));
    let s = log.stats();
    assert_eq!((s.records, s.segments), (100, 1));
    assert_eq!((s.oldest_ms, s.newest_ms), (Some(1_000), Some(1_099)));
    assert_eq!(s.corrupt_records + s.truncated_bytes + s.dropped_records, 0);
    assert_eq!(
        s.bytes,
        fs::metadata(&segment_files(dir.path())[0])
            .expect("stat")
            .len()
    );

    let more: Vec<Rec> = (100..110).map(|i| rec(i, 1_000 + i)).collect();
    log.append(&more).expect("appends");
    drop(log);
    let log = open(dir.path(), Limits::default());
    let everything: Vec<Rec> = first.into_iter().chain(more).collect();
    assert_eq!(all(&log), newest_first(&everything));
}

#[test]
fn an_empty_log_has_one_empty_segment_and_no_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nested = dir.path().join("a/b");
    let log = open(&nested, Limits::default());
    let s = log.stats();
    assert_eq!((s.records, s.segments, s.bytes), (0, 1, 12));
    assert_eq!((s.oldest_ms, s.newest_ms), (None, None));
    assert!(all(&log).is_empty());
    assert_eq!(
        segment_files(&nested)[0].file_name().expect("name"),
        "00000001.flog"
    );
}

#[test]
fn segments_rotate_and_the_oldest_are_dropped_within_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = small(1024, 4);
    let mut log = open(dir.path(), limits);
    let records: Vec<Rec> = (0..2_000).map(|i| rec(i, i)).collect();
    for batch in records.chunks(37) {
        log.append(batch).expect("appends");
        let s = log.stats();
        assert!(s.bytes <= limits.max_bytes + limits.segment_bytes, "{s:?}");
        let on_disk: u64 = segment_files(dir.path())
            .iter()
            .map(|p| fs::metadata(p).expect("stat").len())
            .sum();
        assert_eq!(on_disk, s.bytes);
        assert_eq!(segment_files(dir.path()).len() as u64, s.segments);
    }
    let s = log.stats();
    assert!(s.dropped_segments > 10 && s.segments >= 3, "{s:?}");
    assert_eq!(s.dropped_records + s.records, 2_000);
    let kept = &records[s.dropped_records as usize..];
    assert_eq!(all(&log), newest_first(kept));
    for p in segment_files(dir.path()) {
        // A segment is closed before a frame would take it past the limit.
        assert!(fs::metadata(&p).expect("stat").len() <= limits.segment_bytes);
    }

    drop(log);
    let log = open(dir.path(), limits);
    assert_eq!(log.stats().records, s.records);
    assert_eq!(all(&log), newest_first(kept));
}

#[test]
fn a_smaller_budget_on_reopen_drops_old_segments_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let records: Vec<Rec> = (0..1_000).map(|i| rec(i, i)).collect();
    open(dir.path(), small(1024, 100))
        .append(&records)
        .expect("appends");
    let log = open(dir.path(), small(1024, 2));
    let s = log.stats();
    assert!(s.bytes <= 2048 && s.dropped_segments > 0, "{s:?}");
    assert_eq!(
        all(&log),
        newest_first(&records[s.dropped_records as usize..])
    );
}

#[test]
fn queries_return_newest_first_within_range_and_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small(512, 1_000));
    // Times wander back and forth, across segment boundaries too.
    let records: Vec<Rec> = (0..600u64)
        .map(|i| rec(i, 10_000 + i * 10 - (i % 7) * 25))
        .collect();
    for batch in records.chunks(13) {
        log.append(batch).expect("appends");
    }
    assert!(log.stats().segments > 10);
    let model = newest_first(&records);
    let even = |r: &Rec| r.id.is_multiple_of(2);
    for (since, until, limit) in [
        (0, u64::MAX, 5),
        (0, u64::MAX, usize::MAX),
        (11_000, 13_000, 17),
        (11_000, 13_000, usize::MAX),
        (15_905, 15_915, 3),
        (99_999, u64::MAX, 10),
    ] {
        let want: Vec<Rec> = model
            .iter()
            .filter(|r| r.t >= since && r.t <= until && even(r))
            .take(limit)
            .cloned()
            .collect();
        let got = log.query(since, until, even, limit).expect("queries");
        assert_eq!(got, want, "since {since} until {until} limit {limit}");
    }
    assert!(log.query(5, 4, |_| true, 10).expect("queries").is_empty());
    assert!(log
        .query(0, u64::MAX, |_| true, 0)
        .expect("queries")
        .is_empty());
}

#[test]
fn a_torn_tail_is_cut_and_appends_continue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let records: Vec<Rec> = (0..20).map(|i| rec(i, i)).collect();
    open(dir.path(), Limits::default())
        .append(&records)
        .expect("appends");
    let file = &segment_files(dir.path())[0];
    let len = fs::metadata(file).expect("stat").len();
    let f = OpenOptions::new().write(true).open(file).expect("opens");
    f.set_len(len - 3).expect("truncates");
    drop(f);

    let mut log = open(dir.path(), Limits::default());
    let s = log.stats();
    assert_eq!(s.records, 19);
    assert_eq!(s.corrupt_records, 1);
    assert!(s.truncated_bytes > 0);
    assert_eq!(all(&log), newest_first(&records[..19]));
    log.append(&[rec(99, 99)]).expect("appends");
    drop(log);

    let log = open(dir.path(), Limits::default());
    let s = log.stats();
    assert_eq!(
        (s.records, s.corrupt_records, s.truncated_bytes),
        (20, 0, 0)
    );
    let mut want = records[..19].to_vec();
    want.push(rec(99, 99));
    assert_eq!(all(&log), newest_first(&want));
}

#[test]
fn a_torn_header_of_a_new_segment_is_rewritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let records: Vec<Rec> = (0..5).map(|i| rec(i, i)).collect();
    open(dir.path(), Limits::default())
        .append(&records)
        .expect("appends");
    // A crash right after the next segment was created.
    fs::write(dir.path().join("00000002.flog"), b"STKF").expect("writes");
    let mut log = open(dir.path(), Limits::default());
    log.append(&[rec(5, 5)]).expect("appends");
    drop(log);
    let log = open(dir.path(), Limits::default());
    assert_eq!(log.stats().segments, 2);
    assert_eq!(log.stats().corrupt_records, 0);
    let mut want = records;
    want.push(rec(5, 5));
    assert_eq!(all(&log), newest_first(&want));
}

#[test]
fn a_flipped_byte_ends_only_its_own_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = small(512, 1_000);
    let records: Vec<Rec> = (0..200).map(|i| rec(i, i)).collect();
    open(dir.path(), limits).append(&records).expect("appends");
    let files = segment_files(dir.path());
    assert!(files.len() >= 3);
    let frames = payloads(&files[1]);
    let first_of_second = payloads(&files[0]).len();
    let middle = frames.len() / 2;
    let mut bytes = fs::read(&files[1]).expect("reads");
    bytes[frames[middle].0 + 1] ^= 0x01;
    fs::write(&files[1], bytes).expect("writes");

    let log = open(dir.path(), limits);
    let s = log.stats();
    assert_eq!(s.corrupt_records, 1);
    assert_eq!(
        s.truncated_bytes, 0,
        "an older segment is read around, not cut"
    );
    let lost = first_of_second + middle..first_of_second + frames.len();
    let want: Vec<Rec> = records
        .iter()
        .filter(|r| !lost.contains(&(r.id as usize)))
        .cloned()
        .collect();
    assert_eq!(s.records, want.len() as u64);
    assert_eq!(all(&log), newest_first(&want));
}

#[test]
fn a_foreign_file_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let foreign = dir.path().join("00000007.flog");
    fs::write(&foreign, b"{\"not\": \"a flow log\"}\n").expect("writes");
    let err = FlowLog::<Rec>::open(dir.path(), Limits::default())
        .err()
        .expect("refused");
    assert!(matches!(err, FlowLogError::Foreign { ref path } if *path == foreign));
    assert!(err.to_string().contains("00000007.flog"), "{err}");
    assert_eq!(
        fs::read(&foreign).expect("reads").len(),
        22,
        "left untouched"
    );

    let mut v9 = b"STKFLOG1".to_vec();
    v9.extend_from_slice(&9u32.to_le_bytes());
    fs::write(&foreign, v9).expect("writes");
    let err = FlowLog::<Rec>::open(dir.path(), Limits::default())
        .err()
        .expect("refused");
    assert!(matches!(
        err,
        FlowLogError::UnsupportedVersion { found: 9, .. }
    ));
    assert!(err.to_string().contains("00000007.flog"), "{err}");
}

#[test]
fn other_files_in_the_folder_are_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("notes.txt"), b"hello").expect("writes");
    fs::write(dir.path().join("1.flog.bak"), b"hello").expect("writes");
    let mut log = open(dir.path(), Limits::default());
    log.append(&[rec(1, 1)]).expect("appends");
    assert_eq!(log.stats().segments, 1);
}

#[test]
fn a_too_large_record_fails_the_batch_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), Limits::default());
    log.append(&[rec(1, 1)]).expect("appends");
    let before = log.stats();
    let mut big = rec(2, 2);
    big.name = "x".repeat(MAX_RECORD_BYTES + 1);
    let err = log.append(&[rec(3, 3), big]).expect_err("too large");
    assert!(matches!(err, FlowLogError::RecordTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("00000001.flog"), "{err}");
    assert_eq!(log.stats(), before);
    assert_eq!(all(&log), vec![rec(1, 1)]);
}

#[test]
fn invalid_limits_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    for limits in [small(0, 4), small(1024, 0)] {
        let err = FlowLog::<Rec>::open(dir.path(), limits)
            .err()
            .expect("refused");
        assert!(matches!(err, FlowLogError::InvalidLimits { .. }), "{err}");
    }
}

#[test]
fn equal_times_in_different_segments_come_latest_appended_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Two records per segment: the first segment holds both the newest
    // record and one at 50, the second only records at 50, so it must still
    // be read once the first has filled a limit of 2.
    let mut log = open(dir.path(), small(60, 1_000));
    let records = [rec(0, 100), rec(1, 50), rec(2, 50), rec(3, 50)];
    log.append(&records).expect("appends");
    assert_eq!(log.stats().segments, 2);
    for limit in 1..=4 {
        let got = log.query(0, u64::MAX, |_| true, limit).expect("queries");
        let ids: Vec<u64> = got.iter().map(|r| r.id).collect();
        assert_eq!(ids, [0, 3, 2, 1][..limit].to_vec(), "limit {limit}");
    }
}
