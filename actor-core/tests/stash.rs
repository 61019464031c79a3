//! Stash: a bound with a typed error, unstash order, and stashed messages kept over a restart.

use std::time::Duration;

use actor_core::{Actor, ActorError, ActorRef, ActorResult, Context, Props, StashFull};
use actor_testkit::{TestKit, TestProbe};

#[derive(Debug)]
enum SMsg {
    Item(u32),
    Open,
    Fail,
}

/// Stashes items until opened; reports handled items and refused stashes.
struct Gate {
    open: bool,
    report: ActorRef<String>,
}

impl Actor for Gate {
    type Msg = SMsg;

    async fn handle(&mut self, msg: SMsg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            SMsg::Item(n) if self.open => self.report.tell(format!("item {n}")),
            item @ SMsg::Item(_) => match ctx.stash(item) {
                Ok(()) => self.report.tell(format!("stashed {}", ctx.stash_len())),
                Err(StashFull {
                    capacity,
                    message: SMsg::Item(n),
                }) => self.report.tell(format!("full {capacity} {n}")),
                Err(StashFull { message, .. }) => {
                    return Err(ActorError::msg(format!("unexpected {message:?}")));
                }
            },
            SMsg::Open => {
                self.open = true;
                ctx.unstash_all();
                self.report
                    .tell(format!("opened, {} stashed", ctx.stash_len()));
            }
            SMsg::Fail => return Err(ActorError::msg("fail on command")),
        }
        Ok(())
    }
}

fn spawn_gate(kit: &TestKit, capacity: usize) -> (ActorRef<SMsg>, TestProbe<String>) {
    let report = kit.probe::<String>();
    let to = report.actor_ref().clone();
    let gate = kit.spawn(
        Props::new(move || Gate {
            open: false,
            report: to.clone(),
        })
        .with_stash_capacity(capacity),
        "gate",
    );
    (gate, report)
}

async fn expect_in_order(probe: &TestProbe<String>, texts: &[&str]) {
    for t in texts {
        probe.expect_msg(t.to_string()).await;
    }
}

#[tokio::test(start_paused = true)]
async fn the_stash_is_bounded_and_unstashes_in_order() {
    let kit = TestKit::new("stash-bound");
    let (gate, report) = spawn_gate(&kit, 3);
    for n in 1..=4 {
        gate.tell(SMsg::Item(n));
    }
    gate.tell(SMsg::Open);
    gate.tell(SMsg::Item(5));
    expect_in_order(
        &report,
        &[
            "stashed 1",
            "stashed 2",
            "stashed 3",
            // the fourth does not fit: the actor gets it back with the capacity
            "full 3 4",
            "opened, 0 stashed",
            // stashed messages come first, in the order they were stashed
            "item 1",
            "item 2",
            "item 3",
            "item 5",
        ],
    )
    .await;
    report.expect_no_msg(Duration::from_secs(1)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn stashed_messages_survive_a_restart() {
    let kit = TestKit::new("stash-restart");
    let (gate, report) = spawn_gate(&kit, 10);
    gate.tell(SMsg::Item(1));
    gate.tell(SMsg::Item(2));
    gate.tell(SMsg::Fail);
    gate.tell(SMsg::Open);
    expect_in_order(
        &report,
        &[
            "stashed 1",
            "stashed 2",
            // the restart put them back in front of the mailbox; the fresh, closed
            // instance stashes them again
            "stashed 1",
            "stashed 2",
            "opened, 0 stashed",
            "item 1",
            "item 2",
        ],
    )
    .await;
    report.expect_no_msg(Duration::from_secs(1)).await;
    kit.shutdown().await;
}
