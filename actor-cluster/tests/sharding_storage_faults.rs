//! Sharding when the runner storage misbehaves, on one node (no remoting), once on the
//! in-memory runner storage and once on SQLite, through a [`FlakyStorage`] wrapper: calls
//! that hang for ever (acquire, refresh, release, lock-table reads) are given up at their
//! bound and work resumes when the storage answers; a shard fenced by failed refreshes
//! restarts its remembered entities by itself; and a refresh answer that comes back after
//! its shard actor was replaced leaves the new actor alone.

#[path = "cluster_support/mod.rs"]
mod cluster_support;
mod sharding_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use actor_cluster::sharding::{CoordinatorMsg, RegionCtl, default_shard_id};
use actor_testkit::await_assert;
use sharding_support::{
    Backend, Cmd, Event, FlakyStorage, LOCAL_POLL, LOCAL_WAIT as WAIT, LOCK_TTL, Local, Storage,
    TYPE, add, await_count, await_event, get, get_eventually, is_stopped, is_stopping,
    on_both_backends, settings_through, start_flaky_local, start_local, start_probe_region, starts,
    stops_of,
};
use tokio::sync::Notify;

/// Asks entity `id` until it answers `value`, which must happen within `bound` from now.
async fn answers_within(local: &Local, id: &str, value: u64, bound: Duration) {
    let since = tokio::time::Instant::now();
    assert_eq!(get_eventually(&local.region, id, WAIT).await.value, value);
    assert!(
        since.elapsed() <= bound,
        "{id} answered after {:?}",
        since.elapsed()
    );
}

/// A refresh call that never returns is given up after the lock validity: the shard fences
/// at its deadline as with a failed refresh, and once the storage answers again the region
/// refreshes again, so the restarted entity keeps running. (Before the fix the region stayed
/// "refreshing" for ever: every shard it started afterwards fenced one validity later.)
async fn a_hung_refresh_fences_the_shard_and_refreshing_resumes(backend: Backend) {
    let storage = Storage::open(backend).await;
    let (local, flaky) = start_flaky_local(&storage, |s| s);
    local.region.tell(add("f", 1));
    assert_eq!(get_eventually(&local.region, "f", WAIT).await.value, 1);
    let hung_at = tokio::time::Instant::now();
    flaky.hang_refresh.store(true, Ordering::SeqCst);
    await_event(&local.log, "stop of f", |e| is_stopped(e, "f")).await;
    assert!(hung_at.elapsed() < LOCK_TTL, "{:?}", hung_at.elapsed());
    assert!(flaky.hung.load(Ordering::SeqCst) >= 1, "no refresh hung");
    flaky.hang_refresh.store(false, Ordering::SeqCst);
    assert_eq!(get_eventually(&local.region, "f", WAIT).await.value, 0);
    // Three lock ttls later the same instance still runs: its lock is refreshed again.
    let stops = stops_of(&local.log, "f");
    let until = tokio::time::Instant::now() + LOCK_TTL * 3;
    while tokio::time::Instant::now() < until {
        assert_eq!(get_eventually(&local.region, "f", WAIT).await.value, 0);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(stops_of(&local.log, "f"), stops, "fenced again: no refresh");
    local.system.terminate().await;
}

/// An acquire call that never returns is given up after the lock validity and retried: the
/// shard serves once the storage answers again. (Before the fix the acquire stayed "in
/// flight" for ever and the entity never answered.)
async fn a_hung_acquire_is_given_up_and_retried(backend: Backend) {
    let storage = Storage::open(backend).await;
    let (local, flaky) = start_flaky_local(&storage, |s| s);
    assert_ne!(default_shard_id("w", 12), default_shard_id("x", 12));
    get_eventually(&local.region, "w", WAIT).await;
    flaky.hang_acquire.store(true, Ordering::SeqCst);
    local.region.tell(add("x", 1));
    await_count(&flaky.hung, 1, "the acquire did not hang yet").await;
    flaky.hang_acquire.store(false, Ordering::SeqCst);
    // The hung call is given up after the validity (ttl - margin), then retried.
    answers_within(&local, "x", 1, LOCK_TTL + Duration::from_secs(1)).await;
    local.system.terminate().await;
}

/// A release call that never returns does not hold up a hand-off: the shard reports it
/// stopped once the release timed out (the lock then expires on its own), and the shard
/// can start again here. (Before the fix the release blocked the shard's mailbox for ever
/// and the hand-off never finished.)
async fn a_hung_release_does_not_hold_up_the_hand_off(backend: Backend) {
    let storage = Storage::open(backend).await;
    let flaky = FlakyStorage::new(storage.storage.clone());
    let probe = start_probe_region(settings_through(&storage, &flaky)).await;
    let (region, ctl) = (&probe.region, &probe.ctl);
    let shard = default_shard_id("h", 12);
    probe.host(shard);
    region.tell(add("h", 1));
    assert_eq!(get_eventually(region, "h", WAIT).await.value, 1);

    flaky.hang_release.store(true, Ordering::SeqCst);
    let handed_at = tokio::time::Instant::now();
    ctl.tell(RegionCtl::HandOff { shard });
    probe.expect_shard_stopped(shard).await;
    assert!(
        flaky.hung.load(Ordering::SeqCst) >= 1,
        "the release did not hang"
    );
    // The entity's stop (1 s) plus the release bound (the validity, ttl - margin).
    assert!(
        handed_at.elapsed() <= Duration::from_secs(1) + LOCK_TTL,
        "{:?}",
        handed_at.elapsed()
    );
    flaky.hang_release.store(false, Ordering::SeqCst);
    probe.host(shard);
    assert_eq!(get_eventually(region, "h", WAIT).await.value, 0);
    probe.system.terminate().await;
}

/// Reading the lock table that never returns (at the coordinator's start and in the
/// region's ttl check) is given up after the lock ttl and read again: sharding serves once
/// the storage answers. (Before the fix the coordinator never finished its start and the
/// region never registered.)
async fn a_hung_lock_table_read_is_given_up_and_read_again(backend: Backend) {
    let storage = Storage::open(backend).await;
    let flaky = FlakyStorage::new(storage.storage.clone());
    flaky.hang_list_locks.store(true, Ordering::SeqCst);
    let local = start_local(
        settings_through(&storage, &flaky)
            .build()
            .expect("settings"),
    );
    local.region.tell(add("l", 1));
    await_count(&flaky.hung, 2, "the reads did not hang yet").await;
    flaky.hang_list_locks.store(false, Ordering::SeqCst);
    // Each hung read is given up after one lock ttl, then retried within a retry interval.
    answers_within(&local, "l", 1, LOCK_TTL + Duration::from_secs(2)).await;
    local.system.terminate().await;
}

/// Remember-entities across a fence: a shard that fenced itself (its refreshes failed) comes
/// back in the same region once the storage answers again, and restarts its remembered
/// entity without a message.
async fn remembered_entities_restart_after_a_fence(backend: Backend) {
    let storage = Storage::open(backend).await;
    let (local, flaky) = start_flaky_local(&storage, |s| s.with_remember_entities(true));
    local.region.tell(add("m", 1));
    assert_eq!(get_eventually(&local.region, "m", WAIT).await.value, 1);
    flaky.fail_refresh.store(true, Ordering::SeqCst);
    await_event(&local.log, "stop of m", |e| is_stopped(e, "m")).await;
    flaky.fail_refresh.store(false, Ordering::SeqCst);
    let log = local.log.clone();
    await_assert(
        || {
            if starts(&log, "m").len() == 2 {
                Ok(())
            } else {
                Err("not restarted")
            }
        },
        WAIT,
        LOCAL_POLL,
    )
    .await;
    assert_eq!(get(&local.region, "m").await.value, 0, "a fresh instance");
    local.system.terminate().await;
}

/// H7: a refresh answer about a shard actor that has been replaced since the refresh
/// started (the shard was handed off, released, and started again here) is not applied to
/// the new actor: the new one keeps serving. (Before the fix the answer, which no longer
/// listed the shard, fenced the new actor at once.)
async fn a_refresh_answer_for_a_replaced_shard_actor_leaves_the_new_one_alone(backend: Backend) {
    let storage = Storage::open(backend).await;
    let flaky = FlakyStorage::new(storage.storage.clone());
    let probe = start_probe_region(settings_through(&storage, &flaky)).await;
    let (region, ctl, log) = (&probe.region, &probe.ctl, &probe.log);
    let shard = default_shard_id("h", 12);
    probe.host(shard);
    region.tell(add("h", 1));
    assert_eq!(get_eventually(region, "h", WAIT).await.value, 1);

    // The next refresh (asking for the first actor) waits before it reaches the storage.
    let (reach, answer) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    *flaky.refresh_gate.lock() = Some((reach.clone(), answer.clone()));
    let gated = |stage: u64| {
        let flaky = flaky.clone();
        move || {
            if flaky.gated.load(Ordering::SeqCst) == stage {
                Ok(())
            } else {
                Err(format!("refresh not at stage {stage}"))
            }
        }
    };
    await_assert(gated(1), WAIT, LOCAL_POLL).await;
    // Meanwhile the shard is handed off: its lock is released.
    ctl.tell(RegionCtl::HandOff { shard });
    probe.expect_shard_stopped(shard).await;
    // The refresh reaches the storage now: the shard is not held, so it is not returned.
    reach.notify_one();
    await_assert(gated(2), WAIT, LOCAL_POLL).await;
    // The shard comes back here; a new actor takes the lock and serves.
    probe.host(shard);
    region.tell(add("h", 2));
    assert_eq!(get_eventually(region, "h", WAIT).await.value, 2);
    let stops = stops_of(log, "h");
    // The stale answer arrives.
    answer.notify_one();
    // Over two refresh intervals the new instance keeps running and serving.
    let until = tokio::time::Instant::now() + Duration::from_secs(4);
    while tokio::time::Instant::now() < until {
        assert_eq!(get_eventually(region, "h", WAIT).await.value, 2);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        stops_of(log, "h"),
        stops,
        "the new actor was fenced by the old answer"
    );
    probe.system.terminate().await;
}

/// One refresh call that hangs (the storage answers again right after) does not fence the
/// shards: once it has been in flight for a refresh interval the next refresh goes out
/// anyway and extends their locks. (Before the fix no refresh went out until the hung one
/// was given up, one lock validity later, so every local shard fenced meanwhile, also
/// those acquired after the hang.)
async fn one_hung_refresh_does_not_fence_the_shards(backend: Backend) {
    let storage = Storage::open(backend).await;
    let (local, flaky) = start_flaky_local(&storage, |s| s);
    local.region.tell(add("f", 1));
    assert_eq!(get_eventually(&local.region, "f", WAIT).await.value, 1);
    flaky.hang_refresh.store(true, Ordering::SeqCst);
    await_count(&flaky.hung, 1, "hung refreshes").await;
    flaky.hang_refresh.store(false, Ordering::SeqCst);
    // An entity of another shard starts just after the hang.
    assert_ne!(default_shard_id("f", 12), default_shard_id("w", 12));
    local.region.tell(add("w", 1));
    assert_eq!(get_eventually(&local.region, "w", WAIT).await.value, 1);
    // Two lock ttls later both still run, never stopped.
    let until = tokio::time::Instant::now() + LOCK_TTL * 2;
    while tokio::time::Instant::now() < until {
        assert_eq!(get(&local.region, "f").await.value, 1);
        assert_eq!(get(&local.region, "w").await.value, 1);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(stops_of(&local.log, "f"), 0, "f fenced");
    assert_eq!(stops_of(&local.log, "w"), 0, "w fenced");
    assert_eq!(flaky.hung.load(Ordering::SeqCst), 1, "more refreshes hung");
    local.system.terminate().await;
}

/// A region told to hand off a shard whose actor is already stopping after a fence reports
/// the shard stopped once that actor is gone. (Before the fix it never did: the fenced actor
/// sends no hand-off report, so the coordinator's hand-off hung until its timeout, aborted,
/// and the shard could not move.)
async fn a_hand_off_of_a_fenced_shard_still_stopping_is_reported(backend: Backend) {
    let storage = Storage::open(backend).await;
    let flaky = FlakyStorage::new(storage.storage.clone());
    let probe = start_probe_region(
        settings_through(&storage, &flaky).with_lock_refresh_interval(Duration::from_millis(200)),
    )
    .await;
    let (region, ctl, log) = (&probe.region, &probe.ctl, &probe.log);
    let shard = default_shard_id("p", 12);
    let other = (0..)
        .map(|i| format!("q{i}"))
        .find(|id| default_shard_id(id, 12) == shard)
        .expect("an id of the same shard");
    probe.host(shard);
    for id in ["p", other.as_str()] {
        region.tell(add(id, 1));
        assert_eq!(get_eventually(region, id, WAIT).await.value, 1);
    }
    // p passivates (its stop message takes 1 s), so the shard actor outlives its fence.
    region.tell(Cmd::Passivate { id: "p".into() });
    await_event(log, "stop message of p", |e| is_stopping(e, "p")).await;
    let lock = storage
        .storage
        .list_locks()
        .await
        .expect("locks")
        .into_iter()
        .find(|l| l.shard.group() == TYPE && l.shard.number() == shard)
        .expect("the shard is locked");
    storage
        .storage
        .release(&lock.holder, &lock.shard)
        .await
        .expect("release");
    // The fence stops the other entity at once; p still stops.
    await_event(log, "fence", |e| is_stopped(e, &other)).await;
    assert_eq!(stops_of(log, "p"), 0, "p stopped already: no window");
    ctl.tell(RegionCtl::HandOff { shard });
    probe.expect_shard_stopped(shard).await;
    probe.system.terminate().await;
}

/// A shard that fences while one of its entities passivates gives the messages waiting for
/// that entity back to its region, which sends them to the shard's next instance. (Before
/// the fix they were dropped with the fenced shard, silently: not even a dead letter.)
async fn a_fence_during_a_passivation_keeps_the_waiting_messages(backend: Backend) {
    let storage = Storage::open(backend).await;
    let (local, _flaky) = start_flaky_local(&storage, |s| {
        s.with_lock_refresh_interval(Duration::from_millis(200))
    });
    local.region.tell(add("p", 1));
    assert_eq!(get_eventually(&local.region, "p", WAIT).await.value, 1);
    // p passivates (its stop message takes 1 s); a message for it waits in the shard.
    local.region.tell(Cmd::Passivate { id: "p".into() });
    await_event(&local.log, "stop message of p", |e| is_stopping(e, "p")).await;
    local.region.tell(add("p", 5));
    // The shard's lock disappears from the storage: the next refresh (within 200 ms, while
    // p still stops) fences the shard at once.
    let shard = default_shard_id("p", 12);
    let lock = storage
        .storage
        .list_locks()
        .await
        .expect("locks")
        .into_iter()
        .find(|l| l.shard.group() == TYPE && l.shard.number() == shard)
        .expect("p's shard is locked");
    storage
        .storage
        .release(&lock.holder, &lock.shard)
        .await
        .expect("release");
    // The waiting message reaches p's next instance.
    await_event(
        &local.log,
        "p got 5",
        |e| matches!(e, Event::Got { id, n: 5, .. } if id == "p"),
    )
    .await;
    assert_eq!(
        get(&local.region, "p").await.value,
        5,
        "a fresh instance got 5"
    );
    local.system.terminate().await;
}

/// A region told to host a shard it already runs (the coordinator re-homes a shard to the
/// region holding its lock, after having pointed it elsewhere) reports the shard's
/// remembered entities again: the coordinator ignored its reports while it believed the
/// shard lived elsewhere, so without this its set would lack them, and they would not
/// restart after a crash of this node.
async fn a_shard_hosted_again_reports_its_remembered_entities(backend: Backend) {
    let storage = Storage::open(backend).await;
    let flaky = FlakyStorage::new(storage.storage.clone());
    let probe =
        start_probe_region(settings_through(&storage, &flaky).with_remember_entities(true)).await;
    let shard = default_shard_id("k", 12);
    probe.host(shard);
    probe.region.tell(add("k", 1));
    assert_eq!(get_eventually(&probe.region, "k", WAIT).await.value, 1);
    let reported = |msg: Option<CoordinatorMsg>| match msg {
        Some(CoordinatorMsg::EntitiesChanged {
            shard: s, started, ..
        }) => s == shard && started.contains(&"k".to_owned()),
        _ => false,
    };
    let mut first = false;
    while let Some(msg) = probe
        .coordinator
        .receive_one(Duration::from_millis(500))
        .await
    {
        first |= reported(Some(msg));
    }
    assert!(first, "k's start was not reported");
    // The coordinator re-homes the shard here.
    probe.host(shard);
    let mut again = false;
    while let Some(msg) = probe
        .coordinator
        .receive_one(Duration::from_millis(500))
        .await
    {
        again |= reported(Some(msg));
    }
    assert!(
        again,
        "k not reported again when the shard was hosted again"
    );
    assert_eq!(starts(&probe.log, "k").len(), 1, "k restarted");
    probe.system.terminate().await;
}

on_both_backends!(
    a_hand_off_of_a_fenced_shard_still_stopping_is_reported,
    one_hung_refresh_does_not_fence_the_shards,
    a_fence_during_a_passivation_keeps_the_waiting_messages,
    a_shard_hosted_again_reports_its_remembered_entities,
    a_hung_refresh_fences_the_shard_and_refreshing_resumes,
    a_hung_acquire_is_given_up_and_retried,
    a_hung_release_does_not_hold_up_the_hand_off,
    a_hung_lock_table_read_is_given_up_and_read_again,
    remembered_entities_restart_after_a_fence,
    a_refresh_answer_for_a_replaced_shard_actor_leaves_the_new_one_alone,
);
