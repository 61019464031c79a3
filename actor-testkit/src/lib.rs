//! `actor-testkit`: test tools for `actor-core`.
//!
//! - [`TestKit`]: an actor system for one test, with quiet logging (a `tracing` subscriber at
//!   `warn` unless `RUST_LOG` is set), probes, spawn helpers and a checked
//!   [`shutdown`](TestKit::shutdown).
//! - [`TestProbe`]: a real actor (it has a path, can be watched and can watch) whose messages
//!   the test inspects: [`expect_msg`](TestProbe::expect_msg),
//!   [`expect_msg_matching`](TestProbe::expect_msg_matching),
//!   [`expect_no_msg`](TestProbe::expect_no_msg), [`receive_one`](TestProbe::receive_one),
//!   [`receive_n`](TestProbe::receive_n), [`fish_for_message`](TestProbe::fish_for_message),
//!   [`within`](TestProbe::within), [`watch`](TestProbe::watch) +
//!   [`expect_terminated`](TestProbe::expect_terminated).
//! - [`await_assert`]: re-check a condition until it holds, never a guessed sleep.
//! - [`LogCapture`]: assert on what was logged (failures, warnings) during a test.
//!
//! A failed expectation panics with the caller's location, what was expected, what arrived
//! instead (or that nothing did) and after how long.
//!
//! # Time
//! Expectations wait up to [`DEFAULT_TIMEOUT`] (3 s) unless told otherwise. Every default is
//! multiplied by the factor in the environment variable [`TIME_FACTOR_ENV`]
//! (`ACTOR_TEST_TIME_FACTOR=3 cargo test` on a slow machine), like Akka's time dilation. All
//! waiting goes through `tokio::time`: under `#[tokio::test(start_paused = true)]` a probe
//! that waits 3 s of virtual time returns at once in wall time, and timers, receive timeouts
//! and backoff delays of the actors under test run in the same virtual time.
//!
//! # Design
//! - A probe is a real actor under `/system` (so it outlives every `/user` actor while the
//!   system terminates, and still hears from `stopped` hooks); it forwards each message into
//!   a channel the test reads. Its child `watcher` runs `watch`/`unwatch` for it, so
//!   `Terminated` signals come from the real death-watch.
//! - Expectations are plain `#[track_caller]` functions returning a future: the caller's
//!   location is taken when the expectation is made and printed when it fails (a
//!   `#[track_caller]` on an `async fn` would not reach the test's line).
//! - A probe's messages and termination signals are two separate queues, so a signal never
//!   fails an `expect_msg` and a message never fails an `expect_terminated`.
//!
//! # Examples
//! A request/response actor tested with a probe that also answers a request itself:
//! ```
//! use actor_core::{Actor, ActorRef, ActorResult, Context, Props, ReplyTo};
//! use actor_testkit::TestKit;
//!
//! #[derive(Debug)]
//! enum Lookup { Price(String, ReplyTo<u32>) }
//!
//! #[derive(Debug, PartialEq)]
//! enum Quote { Total(u32) }
//!
//! /// Asks a price service for each item and reports the sum to `report`.
//! struct Cart { prices: ActorRef<Lookup>, report: ActorRef<Quote> }
//!
//! impl Actor for Cart {
//!     type Msg = Vec<String>;
//!     async fn handle(&mut self, items: Vec<String>, _: &mut Context<Self>) -> ActorResult {
//!         let mut total = 0;
//!         for item in items {
//!             total += self.prices.ask(|r| Lookup::Price(item, r), actor_testkit::default_timeout()).await?;
//!         }
//!         self.report.tell(Quote::Total(total));
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let kit = TestKit::new("cart-test");
//! let prices = kit.probe::<Lookup>();
//! let report = kit.probe::<Quote>();
//! let (p, r) = (prices.actor_ref().clone(), report.actor_ref().clone());
//! let cart = kit.spawn(Props::new(move || Cart { prices: p.clone(), report: r.clone() }), "cart");
//!
//! cart.tell(vec!["tea".into(), "cake".into()]);
//! for (name, price) in [("tea", 3), ("cake", 4)] {
//!     // the probe plays the price service: take the request out and answer it
//!     let reply = prices
//!         .expect_msg_map(|Lookup::Price(item, reply)| (item == name).then_some(reply))
//!         .await;
//!     reply.reply(price);
//! }
//! report.expect_msg(Quote::Total(7)).await;
//! kit.shutdown().await;
//! # }
//! ```
#![deny(missing_docs)]

mod await_assert;
mod kit;
mod log_capture;
mod logging;
#[cfg(feature = "multi-node")]
pub mod multi_node;
mod probe;
mod time;

pub use await_assert::{AssertOutcome, await_assert, await_assert_default};
pub use kit::TestKit;
pub use log_capture::LogCapture;
pub use logging::{DEFAULT_LOG_LEVEL, init_logging};
pub use probe::TestProbe;
pub use time::{
    DEFAULT_NO_MSG_DURATION, DEFAULT_POLL_INTERVAL, DEFAULT_TIMEOUT, TIME_FACTOR_ENV,
    TimeFactorError, default_timeout, dilated, parse_time_factor, time_factor,
};
