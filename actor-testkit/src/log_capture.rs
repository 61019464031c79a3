//! [`LogCapture`]: records the `tracing` events of the current thread, so a test can assert
//! that something was logged (Akka's `EventFilter`).

use std::io;
use std::sync::Arc;

use parking_lot::Mutex;
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::fmt::MakeWriter;

/// Records every `tracing` event at `level` or above emitted on the current thread while it
/// lives, one formatted line per event (level, target, message and fields, no colours).
///
/// On a current-thread runtime (the `#[tokio::test]` default) every actor runs on the test's
/// thread, so all their events are captured; on a multi-thread runtime only the events of
/// the test's own thread are.
///
/// # Examples
/// ```
/// use actor_testkit::LogCapture;
///
/// let logs = LogCapture::start(tracing::Level::WARN);
/// tracing::warn!(actor = "a", "something odd");
/// tracing::debug!("not recorded");
/// assert!(logs.contains("something odd"));
/// assert_eq!(logs.lines().len(), 1);
/// ```
pub struct LogCapture {
    buffer: Arc<Mutex<Vec<u8>>>,
    _guard: DefaultGuard,
}

#[derive(Clone)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl LogCapture {
    /// Starts recording the current thread's events at `level` or above.
    pub fn start(level: tracing::Level) -> Self {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .without_time()
            .with_writer(Buffer(buffer.clone()))
            .finish();
        LogCapture {
            buffer,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    /// The recorded lines so far.
    pub fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.buffer.lock())
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Whether a recorded line contains `text`.
    pub fn contains(&self, text: &str) -> bool {
        self.count(text) > 0
    }

    /// How many recorded lines contain `text`.
    pub fn count(&self, text: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(text)).count()
    }
}

impl std::fmt::Debug for LogCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogCapture")
            .field("lines", &self.lines().len())
            .finish_non_exhaustive()
    }
}
