//! The backend-independent part of a lease handle: acquire, release, renewal and self-fencing
//! around a [`Backend`] that only knows how to compare-and-set a holding.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::task::AbortHandle;
use tokio::time::{Instant, timeout};

use super::holder::{Holder, HolderEvent};
use super::renewal;
use super::{
    Acquired, BoxFuture, FencingToken, LeaseError, LeaseOperation, LeaseSettings, LossReason,
    LostCallback,
};

/// The answer of a backend to a renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RenewOutcome {
    /// The holding was extended to a full TTL from now (by the backend's clock).
    Renewed,
    /// The backend no longer records this holding.
    Lost(LossReason),
}

/// The storage operations a lease backend provides; everything else is shared.
pub(crate) trait Backend: Send + Sync + 'static {
    /// Compare-and-set: grants the lease to this owner if it is free, expired, or already this
    /// owner's; returns the fencing token, or `None` if another owner holds it. A backend that
    /// pushes revocations registers `(holder, generation)` in the same atomic step.
    fn try_acquire<'a>(
        &'a self,
        holder: &'a Arc<Holder>,
        generation: u64,
    ) -> BoxFuture<'a, Result<Option<FencingToken>, LeaseError>>;

    /// Extends the holding with `token` by a full TTL, if it is still this owner's and live.
    fn renew(&self, token: FencingToken) -> BoxFuture<'_, Result<RenewOutcome, LeaseError>>;

    /// Frees the holding with `token`; returns whether it was live and this owner's.
    fn release(&self, token: FencingToken) -> BoxFuture<'_, Result<bool, LeaseError>>;

    /// Returns `true` while a test hook has frozen this owner's renewals.
    fn renewals_paused(&self) -> bool {
        false
    }
}

/// A lease handle over backend `B`: what `InMemoryLease` and `PostgresLease` wrap.
pub(crate) struct LeaseHandle<B> {
    pub(crate) settings: LeaseSettings,
    pub(crate) holder: Arc<Holder>,
    pub(crate) backend: Arc<B>,
    /// Serialises acquire and release on this handle.
    ops: tokio::sync::Mutex<()>,
    renewal: Mutex<Option<AbortHandle>>,
}

impl<B: Backend> LeaseHandle<B> {
    /// Creates an idle handle.
    pub(crate) fn new(settings: LeaseSettings, backend: B) -> Self {
        LeaseHandle {
            holder: Arc::new(Holder::new(settings.name(), settings.trusted_window())),
            settings,
            backend: Arc::new(backend),
            ops: tokio::sync::Mutex::new(()),
            renewal: Mutex::new(None),
        }
    }

    fn timeout_error(&self, operation: LeaseOperation) -> LeaseError {
        LeaseError::Timeout {
            name: self.settings.name().to_owned(),
            operation,
            timeout: self.settings.operation_timeout(),
        }
    }

    /// Acquires (see [`Lease::acquire_with_lost_callback`](super::Lease)).
    pub(crate) async fn acquire(
        &self,
        on_lost: Option<LostCallback>,
    ) -> Result<Acquired, LeaseError> {
        let _ops = self.ops.lock().await;
        let on_lost = match self.holder.reacquire_if_held(on_lost) {
            Ok(token) => return Ok(Acquired::Held(token)),
            Err(on_lost) => on_lost,
        };
        let (generation, notice) = self.holder.begin_attempt();
        if let Some(notice) = notice {
            notice.notify();
        }
        let started = Instant::now();
        let answer = timeout(
            self.settings.operation_timeout(),
            self.backend.try_acquire(&self.holder, generation),
        )
        .await;
        let token = match answer {
            Ok(Ok(Some(token))) => token,
            Ok(Ok(None)) => {
                let _ = self.holder.apply(HolderEvent::Denied { generation });
                return Ok(Acquired::NotHeld);
            }
            Ok(Err(error)) => {
                let _ = self.holder.apply(HolderEvent::Denied { generation });
                return Err(error);
            }
            Err(_elapsed) => {
                let _ = self.holder.apply(HolderEvent::Denied { generation });
                return Err(self.timeout_error(LeaseOperation::Acquire));
            }
        };
        match self
            .holder
            .finish_granted(generation, token, started, on_lost)
        {
            Some(token) => {
                let task = renewal::spawn(
                    self.holder.clone(),
                    self.backend.clone(),
                    &self.settings,
                    generation,
                    token,
                    started,
                );
                if let Some(old) = self.renewal.lock().replace(task) {
                    old.abort();
                }
                Ok(Acquired::Held(token))
            }
            None => Ok(Acquired::NotHeld),
        }
    }

    /// Releases (see [`Lease::release`](super::Lease)).
    pub(crate) async fn release(&self) -> Result<bool, LeaseError> {
        let _ops = self.ops.lock().await;
        if let Some(task) = self.renewal.lock().take() {
            task.abort();
        }
        let (was_held, token) = self.holder.release();
        let Some(token) = token else {
            return Ok(false);
        };
        match timeout(
            self.settings.operation_timeout(),
            self.backend.release(token),
        )
        .await
        {
            Ok(Ok(released)) => Ok(was_held && released),
            Ok(Err(error)) => Err(error),
            Err(_elapsed) => Err(self.timeout_error(LeaseOperation::Release)),
        }
    }

    /// Renews now, outside the background schedule; returns whether the lease is still held.
    pub(crate) async fn renew_now(&self) -> Result<bool, LeaseError> {
        let Some((generation, token, _)) = self.holder.holding() else {
            return Ok(false);
        };
        let started = Instant::now();
        let outcome =
            match timeout(self.settings.operation_timeout(), self.backend.renew(token)).await {
                Ok(outcome) => outcome?,
                Err(_elapsed) => return Err(self.timeout_error(LeaseOperation::Renew)),
            };
        let event = match outcome {
            RenewOutcome::Renewed => HolderEvent::Renewed {
                generation,
                started,
            },
            RenewOutcome::Lost(reason) => HolderEvent::Lost { generation, reason },
        };
        if let Some(notice) = self.holder.apply(event) {
            notice.notify();
        }
        Ok(self.check_lease())
    }

    /// Returns whether the handle holds the lease now (no I/O).
    pub(crate) fn check_lease(&self) -> bool {
        self.holder.holding().is_some()
    }

    /// Returns the token of the current holding.
    pub(crate) fn fencing_token(&self) -> Option<FencingToken> {
        self.holder.holding().map(|(_, token, _)| token)
    }
}

impl<B> Drop for LeaseHandle<B> {
    fn drop(&mut self) {
        if let Some(task) = self.renewal.get_mut().take() {
            task.abort();
        }
    }
}
