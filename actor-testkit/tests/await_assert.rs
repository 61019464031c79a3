//! Self-tests of the free `await_assert` function.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use actor_testkit::{await_assert, await_assert_default};

fn counter_bumped_every(period: Duration, times: u32) -> Arc<AtomicU32> {
    let count = Arc::new(AtomicU32::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        for _ in 0..times {
            tokio::time::sleep(period).await;
            c.fetch_add(1, Ordering::SeqCst);
        }
    });
    count
}

#[tokio::test(start_paused = true)]
async fn passes_once_the_condition_holds_and_returns_the_value() {
    let count = counter_bumped_every(Duration::from_millis(100), 5);
    let start = tokio::time::Instant::now();
    let seen = await_assert(
        || match count.load(Ordering::SeqCst) {
            n if n >= 5 => Ok(n),
            n => Err(format!("count is {n}")),
        },
        Duration::from_secs(2),
        Duration::from_millis(10),
    )
    .await;
    assert_eq!(seen, 5);
    assert!(start.elapsed() >= Duration::from_millis(500));
    assert!(start.elapsed() < Duration::from_millis(600));
}

#[tokio::test(start_paused = true)]
async fn accepts_a_bool_condition() {
    let count = counter_bumped_every(Duration::from_millis(50), 2);
    await_assert_default(|| count.load(Ordering::SeqCst) == 2).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "still failing after 1s")]
async fn fails_after_max_with_the_last_error() {
    await_assert(
        || Err::<(), _>("never"),
        Duration::from_secs(1),
        Duration::from_millis(100),
    )
    .await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "attempts, max 1s): \"count is 0\"")]
async fn the_failure_shows_the_last_error() {
    await_assert(
        || Err::<(), _>("count is 0"),
        Duration::from_secs(1),
        Duration::from_millis(100),
    )
    .await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "the condition was false")]
async fn a_false_bool_is_reported() {
    await_assert(
        || false,
        Duration::from_millis(50),
        Duration::from_millis(10),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_failure_names_the_caller() {
    let line = line!() + 2;
    let err = tokio::spawn(async {
        await_assert(
            || false,
            Duration::from_millis(50),
            Duration::from_millis(10),
        )
        .await;
    })
    .await
    .expect_err("await_assert should have failed");
    let msg = err
        .try_into_panic()
        .ok()
        .and_then(|p| p.downcast::<String>().ok())
        .map(|s| *s)
        .unwrap_or_default();
    assert!(msg.contains(&format!("{}:{line}:", file!())), "{msg}");
}
