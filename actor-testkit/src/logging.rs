//! Quiet test logging: one `tracing` subscriber per process, `warn` unless `RUST_LOG` says
//! otherwise, written through the test harness's output capture.

use std::sync::Once;

use tracing_subscriber::EnvFilter;

/// The level logged when `RUST_LOG` is unset: warnings and errors only, so a passing test
/// prints nothing and a failing one shows what went wrong.
pub const DEFAULT_LOG_LEVEL: &str = "warn";

/// Installs the test subscriber once per process; later calls do nothing. A subscriber
/// installed by someone else first is left in place.
pub fn init_logging() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let filter =
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_LEVEL));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}
