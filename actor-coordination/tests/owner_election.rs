//! File ownership inside one process: record corruption, epochs, self-fencing, hand-over.
//! (The OS lock is per open file, so two joins in one process exclude each other as two
//! processes would.)

use std::time::Duration;

use actor_coordination::owner::{self, LostReason, OwnerConfig, OwnerError, RecordError, Role};

/// Bound for anything that should happen within a few renewal intervals.
const BOUND: Duration = Duration::from_secs(10);

fn config(dir: &tempfile::TempDir, ttl_ms: u64) -> OwnerConfig {
    OwnerConfig::new(dir.path().join("x.lease"))
        .with_ttl(Duration::from_millis(ttl_ms))
        .with_poll_interval(Duration::from_millis(5))
}

#[tokio::test]
async fn the_first_joiner_owns_and_later_joiners_follow_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = config(&dir, 3_000).with_endpoint("127.0.0.1:7000");
    let first = owner::join(cfg.clone()).await.expect("join");
    assert_eq!(first.role(), Role::Owner { epoch: 1 });
    assert_eq!(first.epoch(), Some(1));

    let second = owner::join(cfg).await.expect("join");
    assert_ne!(second.instance_id(), first.instance_id());
    let Role::Follower { owner: Some(view) } = second.role() else {
        panic!(
            "expected a follower with a known owner, got {:?}",
            second.role()
        )
    };
    assert_eq!(view.instance_id, first.instance_id());
    assert_eq!(view.epoch, 1);
    assert_eq!(view.endpoint.as_deref(), Some("127.0.0.1:7000"));
    assert!(!second.is_owner());
    assert_eq!(second.epoch(), None);
}

#[tokio::test]
async fn a_corrupt_record_is_a_typed_error_and_means_no_live_owner() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = config(&dir, 3_000);
    std::fs::write(
        &cfg.lease_path,
        b"actor-coordination owner record v1\ninstance_id=abc\nepo",
    )
    .expect("write truncated record");
    match owner::read_record(&cfg.lease_path) {
        Err(OwnerError::CorruptRecord { source, .. }) => {
            assert!(
                matches!(
                    source,
                    RecordError::MissingField { field: "epoch" } | RecordError::Truncated
                ),
                "{source:?}"
            )
        }
        other => panic!("expected a corrupt-record error, got {other:?}"),
    }
    // No live owner: the lock is free, so a joiner owns it.
    let first = owner::join(cfg.clone())
        .await
        .expect("join over a corrupt record");
    assert!(first.is_owner());
    assert_eq!(first.epoch(), Some(1));

    // The owner holds the lock; garbage in the record leaves a follower with no known owner.
    std::fs::write(&cfg.lease_path, [0xde, 0xad, 0xbe, 0xef]).expect("write garbage");
    let second = owner::join(cfg).await.expect("join");
    assert_eq!(second.role(), Role::Follower { owner: None });
    assert!(matches!(
        second.current_owner(),
        Err(OwnerError::CorruptRecord {
            source: RecordError::NotUtf8,
            ..
        })
    ));
    assert!(
        first.is_owner(),
        "a corrupt record never unseats the lock holder"
    );
}

#[tokio::test]
async fn the_epoch_grows_on_every_change_of_owner_even_without_a_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = config(&dir, 3_000);
    let mut last = 0;
    for round in 0..4 {
        if round == 2 {
            std::fs::remove_file(&cfg.lease_path).expect("delete record");
        }
        let me = owner::join(cfg.clone()).await.expect("join");
        let epoch = me.epoch().expect("owner");
        assert!(epoch > last, "round {round}: epoch {epoch} after {last}");
        last = epoch;
        me.release().await.expect("release");
    }
}

#[tokio::test]
async fn release_marks_the_record_and_a_waiting_follower_takes_over() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = config(&dir, 60_000);
    let first = owner::join(cfg.clone()).await.expect("join");
    let mut second = owner::join(cfg.clone()).await.expect("join");
    let waiter = tokio::spawn(async move {
        second.wait_for_ownership().await.expect("wait");
        second
    });
    first.release().await.expect("release");
    let second = tokio::time::timeout(BOUND, waiter)
        .await
        .expect("take-over in time")
        .expect("task");
    assert_eq!(second.epoch(), Some(2));
    let record = owner::read_record(&cfg.lease_path)
        .expect("read")
        .expect("record");
    assert_eq!(record.instance_id, second.instance_id());
    assert!(!record.released);
}

#[tokio::test]
async fn dropping_the_owner_frees_the_lock() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = config(&dir, 60_000);
    let first = owner::join(cfg.clone()).await.expect("join");
    let mut second = owner::join(cfg).await.expect("join");
    assert!(!second.try_take_over().await.expect("try"));
    drop(first);
    tokio::time::timeout(BOUND, second.wait_for_ownership())
        .await
        .expect("take-over in time")
        .expect("wait");
    assert!(second.is_owner());
}

#[tokio::test]
async fn renewals_push_the_record_expiry_forward() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = config(&dir, 3_000);
    let me = owner::join(cfg.clone()).await.expect("join");
    let before = owner::read_record(&cfg.lease_path)
        .expect("read")
        .expect("record")
        .expires_at;
    // Wall-clock milliseconds in the record: make sure the next renewal lands in a later one.
    let later = std::time::SystemTime::now() + Duration::from_millis(2);
    while std::time::SystemTime::now() < later {
        tokio::task::yield_now().await;
    }
    me.renew_now().await.expect("renew");
    let after = owner::read_record(&cfg.lease_path)
        .expect("read")
        .expect("record")
        .expires_at;
    assert!(after > before, "{after:?} should be after {before:?}");
}

#[cfg(unix)]
#[tokio::test]
async fn an_owner_whose_lock_file_is_replaced_fences_itself() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A long ttl with fast renewals: only the replaced lock can end this ownership in time.
    let cfg = config(&dir, 5_000).with_renew_interval(Duration::from_millis(20));
    let me = owner::join(cfg.clone()).await.expect("join");
    let lost = me.lost();
    std::fs::remove_file(dir.path().join("x.lease.lock")).expect("unlink lock file");
    let reason = tokio::time::timeout(BOUND, lost)
        .await
        .expect("lost in time");
    assert_eq!(reason, LostReason::LockReplaced);
    assert!(!me.is_owner());
    let next = owner::join(cfg).await.expect("join");
    assert!(next.is_owner(), "the fenced owner no longer blocks anyone");
}

#[tokio::test]
async fn an_owner_that_cannot_write_its_record_fences_itself_by_the_deadline() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Fast renewals: the first failure comes long before the deadline.
    let cfg = config(&dir, 800).with_renew_interval(Duration::from_millis(20));
    let joined = std::time::Instant::now();
    let me = owner::join(cfg.clone()).await.expect("join");
    let lost = me.lost();
    // A non-empty directory where the record should go: every atomic replace now fails. A
    // renewal may put the record back between the two calls, so retry until the dir is in.
    loop {
        let _ = std::fs::remove_file(&cfg.lease_path);
        match std::fs::create_dir(&cfg.lease_path) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("creating the blocking dir: {e}"),
        }
    }
    std::fs::write(cfg.lease_path.join("blocker"), b"x").expect("fill dir");
    let reason = tokio::time::timeout(BOUND, lost)
        .await
        .expect("lost in time");
    assert!(
        matches!(reason, LostReason::RenewalFailed { .. }),
        "{reason:?}"
    );
    // Failed renewals are retried until the deadline (at least a ttl after the join started),
    // not abandoned at the first failure a renewal interval in.
    assert!(
        joined.elapsed() >= cfg.ttl,
        "fenced {:?} after joining, before the ttl",
        joined.elapsed()
    );
    assert!(!me.is_owner());
    assert!(matches!(me.renew_now().await, Err(OwnerError::Lost { .. })));
}

#[tokio::test]
async fn a_follower_never_reports_lost() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = config(&dir, 3_000);
    let _owner = owner::join(cfg.clone()).await.expect("join");
    let follower = owner::join(cfg).await.expect("join");
    assert!(!follower.is_lost());
    // A bounded check: the follower's lost() is a never-completing future.
    let lost = tokio::time::timeout(Duration::from_millis(50), follower.lost()).await;
    assert!(lost.is_err());
    assert!(matches!(
        follower.renew_now().await,
        Err(OwnerError::NotOwner)
    ));
    follower
        .release()
        .await
        .expect("releasing a follower is a no-op");
}

#[tokio::test]
async fn invalid_settings_are_rejected_before_touching_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = config(&dir, 3_000).with_renew_interval(Duration::from_secs(2));
    assert!(matches!(
        owner::join(cfg).await,
        Err(OwnerError::InvalidConfig {
            field: "renew_interval",
            ..
        })
    ));
    assert!(!dir.path().join("x.lease.lock").exists());
}
