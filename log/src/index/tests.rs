#![allow(clippy::unwrap_used)]

use strata_format::SegmentMeta;
use strata_storage::Placement;

use super::*;

fn record(base: i64, next: i64) -> SegmentRecord {
    SegmentRecord {
        path: format!("t/0/{base:020}.seg"),
        placement: Placement { nodes: Vec::new() },
        start: 0,
        shared: false,
        object_size: 0,
        meta: SegmentMeta {
            base_offset: base,
            next_offset: next,
            min_timestamp: 0,
            max_timestamp: 0,
            size: 100,
            footer_len: 50,
            batch_count: 1,
            record_count: (next - base) as u64,
        },
        epoch: 1,
        created_ms: 0,
    }
}

fn at(high_watermark: i64, offset: i64) -> ReadAt {
    ReadAt {
        incarnation: 7,
        high_watermark,
        offset,
    }
}

fn bases(view: &View) -> Vec<i64> {
    view.segments.iter().map(|r| r.meta.base_offset).collect()
}

#[tokio::test(start_paused = true)]
async fn a_listing_serves_reads_until_the_high_watermark_moves() {
    let index = SegmentIndex::default();
    assert!(matches!(index.lookup("t", 0, at(30, 0)), Lookup::Miss));
    // [30, 40) is an orphan of a failed commit: past the high watermark, never served.
    let all = vec![
        record(0, 10),
        record(10, 20),
        record(20, 30),
        record(30, 40),
    ];
    let view = index.replace("t", 0, at(30, 12), all);
    assert_eq!(view.log_start, 0);
    assert_eq!(bases(&view), [10, 20]);

    let Lookup::Hit(view) = index.lookup("t", 0, at(30, 0)) else {
        panic!("a current listing is a hit");
    };
    assert_eq!(bases(&view), [0, 10, 20]);
    let Lookup::Hit(view) = index.lookup("t", 0, at(30, 30)) else {
        panic!("a read at the high watermark is a hit");
    };
    assert!(view.segments.is_empty());
    // Another partition, or the same topic recreated (a new checkpoint key), is not listed.
    assert!(matches!(index.lookup("t", 1, at(30, 0)), Lookup::Miss));
    let recreated = ReadAt {
        incarnation: 8,
        ..at(30, 0)
    };
    assert!(matches!(index.lookup("t", 0, recreated), Lookup::Miss));
}

#[tokio::test(start_paused = true)]
async fn new_commits_are_read_as_a_tail() {
    let index = SegmentIndex::default();
    index.replace("t", 0, at(20, 0), vec![record(0, 10), record(10, 20)]);
    let Lookup::Tail(end) = index.lookup("t", 0, at(35, 25)) else {
        panic!("a moved high watermark needs the tail");
    };
    assert_eq!(end, 20);
    // The range from `end` may already hold an orphan past the watermark the read saw.
    let tail = vec![record(20, 30), record(30, 35), record(35, 50)];
    let view = index.extend("t", 0, at(35, 25), 20, tail).unwrap();
    assert_eq!(bases(&view), [20, 30]);
    let Lookup::Hit(view) = index.lookup("t", 0, at(35, 0)) else {
        panic!("extended");
    };
    assert_eq!(bases(&view), [0, 10, 20, 30]);
}

#[tokio::test(start_paused = true)]
async fn a_tail_that_does_not_continue_the_list_needs_a_full_listing() {
    let index = SegmentIndex::default();
    index.replace("t", 0, at(20, 0), vec![record(0, 10), record(10, 20)]);
    // Compaction merged [10, 20) with the new [20, 30) under key 10: the range from 20 on
    // finds nothing of [20, 30).
    assert!(index.extend("t", 0, at(30, 0), 20, vec![]).is_none());
    assert!(
        index
            .extend("t", 0, at(30, 0), 20, vec![record(25, 30)])
            .is_none()
    );
    // A tail that stops short of the high watermark is no better.
    assert!(
        index
            .extend("t", 0, at(40, 0), 20, vec![record(20, 30)])
            .is_none()
    );
    // Someone else extended meanwhile: the list no longer ends where this tail starts.
    index
        .extend("t", 0, at(30, 0), 20, vec![record(20, 30)])
        .unwrap();
    assert!(
        index
            .extend("t", 0, at(30, 0), 20, vec![record(20, 30)])
            .is_none()
    );
}

#[tokio::test(start_paused = true)]
async fn listings_are_renewed_so_retention_and_compaction_show() {
    let index = SegmentIndex::default();
    index.replace("t", 0, at(20, 0), vec![record(0, 10), record(10, 20)]);
    tokio::time::advance(RELIST_AFTER - Duration::from_millis(1)).await;
    assert!(matches!(index.lookup("t", 0, at(20, 0)), Lookup::Hit(_)));
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(matches!(index.lookup("t", 0, at(20, 0)), Lookup::Miss));
    // Retention deleted [0, 10): the new listing starts the log at 10.
    let view = index.replace("t", 0, at(20, 0), vec![record(10, 20)]);
    assert_eq!(view.log_start, 10);
}

#[tokio::test(start_paused = true)]
async fn an_empty_log_starts_at_its_high_watermark() {
    let index = SegmentIndex::default();
    let view = index.replace("t", 0, at(50, 50), vec![]);
    assert_eq!(view.log_start, 50);
    assert!(view.segments.is_empty());
    let Lookup::Tail(50) = index.lookup("t", 0, at(60, 50)) else {
        panic!("the tail starts at the old high watermark");
    };
    let view = index
        .extend("t", 0, at(60, 55), 50, vec![record(50, 60)])
        .unwrap();
    assert_eq!((view.log_start, bases(&view)), (50, vec![50]));
}

#[tokio::test(start_paused = true)]
async fn a_view_is_bounded_and_partitions_not_read_are_forgotten() {
    let index = SegmentIndex::default();
    let many: Vec<_> = (0..200).map(|i| record(i, i + 1)).collect();
    let view = index.replace("t", 0, at(200, 3), many);
    assert_eq!(view.segments.len(), VIEW_SEGMENTS);
    assert_eq!(view.segments[0].meta.base_offset, 3);
    tokio::time::advance(FORGET_AFTER).await;
    index.replace("t", 1, at(1, 0), vec![record(0, 1)]);
    assert_eq!(index.len(), 1);
}
