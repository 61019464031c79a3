//! The string-encoded backend interface and the adapter that turns it into a typed
//! [`RunnerStorage`].
//!
//! A backend that persists outside the process (a SQL table, a key-value store) only deals in
//! strings: addresses (`host:port`), runner ids (`host:port#incarnation`), runners and shard
//! ids in the forms described in [`types`](super::types). [`EncodedAdapter`] converts between
//! those and the typed values, and rejects stored strings that do not decode with a typed
//! error.

use std::time::Duration;

use super::{
    BoxFuture, MachineId, Runner, RunnerAddress, RunnerId, RunnerStorage, RunnerStorageError,
    ShardId, ShardLock, dedup_in_order,
};

/// A live lock as an encoded backend reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedLock {
    /// Shard id (`group:number`).
    pub shard_id: String,
    /// Holder's runner id (`host:port#incarnation`).
    pub holder: String,
    /// Time left until expiry, on the backend's clock.
    pub expires_in: Duration,
}

/// Runner storage over strings; the same semantics as [`RunnerStorage`] (see the module docs
/// of [`runner_storage`](super)), with every value in its string form.
///
/// Shard lists passed in are free of duplicates.
pub trait EncodedRunnerStorage: Send + Sync + 'static {
    /// Lists `(runner, healthy)` for every registration.
    ///
    /// # Errors
    ///
    /// Backend errors.
    fn get_runners(&self) -> BoxFuture<'_, Result<Vec<(String, bool)>, RunnerStorageError>>;

    /// Registers `runner` at `address` and returns its machine id.
    ///
    /// # Errors
    ///
    /// Backend errors.
    fn register<'a>(
        &'a self,
        address: &'a str,
        runner: &'a str,
        healthy: bool,
    ) -> BoxFuture<'a, Result<i64, RunnerStorageError>>;

    /// Removes the registration at `address`.
    ///
    /// # Errors
    ///
    /// Backend errors.
    fn unregister<'a>(&'a self, address: &'a str) -> BoxFuture<'a, Result<(), RunnerStorageError>>;

    /// Sets the health flag of the registration at `address`.
    ///
    /// # Errors
    ///
    /// Backend errors.
    fn set_runner_health<'a>(
        &'a self,
        address: &'a str,
        healthy: bool,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>>;

    /// Acquires the locks it can on `shard_ids` for `runner_id`; returns those it holds after.
    ///
    /// # Errors
    ///
    /// Backend errors.
    fn acquire<'a>(
        &'a self,
        runner_id: &'a str,
        shard_ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, RunnerStorageError>>;

    /// Extends the locks `runner_id` still holds among `shard_ids`; returns those.
    ///
    /// # Errors
    ///
    /// Backend errors.
    fn refresh<'a>(
        &'a self,
        runner_id: &'a str,
        shard_ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, RunnerStorageError>>;

    /// Releases `shard_id` if `runner_id` holds it.
    ///
    /// # Errors
    ///
    /// Backend errors.
    fn release<'a>(
        &'a self,
        runner_id: &'a str,
        shard_id: &'a str,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>>;

    /// Releases every lock `runner_id` holds.
    ///
    /// # Errors
    ///
    /// Backend errors.
    fn release_all<'a>(
        &'a self,
        runner_id: &'a str,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>>;

    /// Lists live locks.
    ///
    /// # Errors
    ///
    /// Backend errors.
    fn list_locks(&self) -> BoxFuture<'_, Result<Vec<EncodedLock>, RunnerStorageError>>;
}

/// Adapts an [`EncodedRunnerStorage`] into a typed [`RunnerStorage`].
///
/// # Examples
///
/// ```no_run
/// # #[cfg(feature = "sqlite")]
/// # async fn example() -> Result<(), actor_coordination::runner_storage::RunnerStorageError> {
/// use std::sync::Arc;
/// use actor_coordination::runner_storage::{EncodedAdapter, RunnerStorage, RunnerStorageConfig};
/// use actor_coordination::runner_storage::sqlite::SqliteRunnerStorage;
///
/// let backend = SqliteRunnerStorage::open("/var/lib/app/runners.db", RunnerStorageConfig::default()).await?;
/// let storage: Arc<dyn RunnerStorage> = Arc::new(EncodedAdapter::new(backend));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct EncodedAdapter<E> {
    encoded: E,
}

impl<E: EncodedRunnerStorage> EncodedAdapter<E> {
    /// Wraps an encoded backend.
    pub fn new(encoded: E) -> Self {
        Self { encoded }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &E {
        &self.encoded
    }
}

fn encode_shards(shards: &[ShardId]) -> Vec<String> {
    dedup_in_order(shards)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn decode_shards(shards: Vec<String>) -> Result<Vec<ShardId>, RunnerStorageError> {
    shards.iter().map(|s| s.parse()).collect()
}

impl<E: EncodedRunnerStorage> RunnerStorage for EncodedAdapter<E> {
    fn register<'a>(
        &'a self,
        runner: &'a Runner,
        healthy: bool,
    ) -> BoxFuture<'a, Result<MachineId, RunnerStorageError>> {
        Box::pin(async move {
            let encoded = runner.encode()?;
            let id = self
                .encoded
                .register(&runner.address().to_string(), &encoded, healthy)
                .await?;
            let id = u32::try_from(id).map_err(|_| RunnerStorageError::Invalid {
                what: "machine id",
                value: id.to_string(),
                reason: "out of range for u32",
            })?;
            Ok(MachineId(id))
        })
    }

    fn unregister<'a>(
        &'a self,
        address: &'a RunnerAddress,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>> {
        Box::pin(async move { self.encoded.unregister(&address.to_string()).await })
    }

    fn get_runners(&self) -> BoxFuture<'_, Result<Vec<(Runner, bool)>, RunnerStorageError>> {
        Box::pin(async move {
            let mut runners = self
                .encoded
                .get_runners()
                .await?
                .into_iter()
                .map(|(runner, healthy)| Ok((Runner::decode(&runner)?, healthy)))
                .collect::<Result<Vec<_>, RunnerStorageError>>()?;
            runners.sort_by(|a, b| a.0.address().cmp(b.0.address()));
            Ok(runners)
        })
    }

    fn set_runner_health<'a>(
        &'a self,
        address: &'a RunnerAddress,
        healthy: bool,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>> {
        Box::pin(async move {
            self.encoded
                .set_runner_health(&address.to_string(), healthy)
                .await
        })
    }

    fn acquire<'a>(
        &'a self,
        runner: &'a RunnerId,
        shards: &'a [ShardId],
    ) -> BoxFuture<'a, Result<Vec<ShardId>, RunnerStorageError>> {
        Box::pin(async move {
            let asked = encode_shards(shards);
            if asked.is_empty() {
                return Ok(Vec::new());
            }
            let got = self.encoded.acquire(&runner.to_string(), &asked).await?;
            in_asked_order(&asked, got)
        })
    }

    fn refresh<'a>(
        &'a self,
        runner: &'a RunnerId,
        shards: &'a [ShardId],
    ) -> BoxFuture<'a, Result<Vec<ShardId>, RunnerStorageError>> {
        Box::pin(async move {
            let asked = encode_shards(shards);
            if asked.is_empty() {
                return Ok(Vec::new());
            }
            let held = self.encoded.refresh(&runner.to_string(), &asked).await?;
            in_asked_order(&asked, held)
        })
    }

    fn release<'a>(
        &'a self,
        runner: &'a RunnerId,
        shard: &'a ShardId,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>> {
        Box::pin(async move {
            self.encoded
                .release(&runner.to_string(), &shard.to_string())
                .await
        })
    }

    fn release_all<'a>(
        &'a self,
        runner: &'a RunnerId,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>> {
        Box::pin(async move { self.encoded.release_all(&runner.to_string()).await })
    }

    fn list_locks(&self) -> BoxFuture<'_, Result<Vec<ShardLock>, RunnerStorageError>> {
        Box::pin(async move {
            let mut locks = self
                .encoded
                .list_locks()
                .await?
                .into_iter()
                .map(|lock| {
                    Ok(ShardLock {
                        shard: lock.shard_id.parse()?,
                        holder: lock.holder.parse()?,
                        expires_in: lock.expires_in,
                    })
                })
                .collect::<Result<Vec<_>, RunnerStorageError>>()?;
            locks.sort_by(|a, b| a.shard.cmp(&b.shard));
            Ok(locks)
        })
    }
}

/// Keeps the backend's answer to the shards asked for (a backend must never return others)
/// and puts it in the order asked.
fn in_asked_order(
    asked: &[String],
    answer: Vec<String>,
) -> Result<Vec<ShardId>, RunnerStorageError> {
    let answer: std::collections::BTreeSet<String> = answer.into_iter().collect();
    if let Some(stranger) = answer.iter().find(|s| !asked.contains(s)) {
        return Err(RunnerStorageError::Invalid {
            what: "backend answer",
            value: stranger.clone(),
            reason: "a shard that was not asked for",
        });
    }
    decode_shards(
        asked
            .iter()
            .filter(|s| answer.contains(*s))
            .cloned()
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backend that answers every query with fixed (possibly bad) strings.
    struct Canned {
        runners: Vec<(String, bool)>,
        shards: Vec<String>,
        locks: Vec<EncodedLock>,
        machine_id: i64,
    }

    impl Canned {
        fn new() -> Self {
            Self {
                runners: Vec::new(),
                shards: Vec::new(),
                locks: Vec::new(),
                machine_id: 1,
            }
        }
    }

    impl EncodedRunnerStorage for Canned {
        fn get_runners(&self) -> BoxFuture<'_, Result<Vec<(String, bool)>, RunnerStorageError>> {
            Box::pin(async move { Ok(self.runners.clone()) })
        }
        fn register<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
            _: bool,
        ) -> BoxFuture<'a, Result<i64, RunnerStorageError>> {
            Box::pin(async move { Ok(self.machine_id) })
        }
        fn unregister<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), RunnerStorageError>> {
            Box::pin(async { Ok(()) })
        }
        fn set_runner_health<'a>(
            &'a self,
            _: &'a str,
            _: bool,
        ) -> BoxFuture<'a, Result<(), RunnerStorageError>> {
            Box::pin(async { Ok(()) })
        }
        fn acquire<'a>(
            &'a self,
            _: &'a str,
            _: &'a [String],
        ) -> BoxFuture<'a, Result<Vec<String>, RunnerStorageError>> {
            Box::pin(async move { Ok(self.shards.clone()) })
        }
        fn refresh<'a>(
            &'a self,
            _: &'a str,
            _: &'a [String],
        ) -> BoxFuture<'a, Result<Vec<String>, RunnerStorageError>> {
            Box::pin(async move { Ok(self.shards.clone()) })
        }
        fn release<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
        ) -> BoxFuture<'a, Result<(), RunnerStorageError>> {
            Box::pin(async { Ok(()) })
        }
        fn release_all<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), RunnerStorageError>> {
            Box::pin(async { Ok(()) })
        }
        fn list_locks(&self) -> BoxFuture<'_, Result<Vec<EncodedLock>, RunnerStorageError>> {
            Box::pin(async move { Ok(self.locks.clone()) })
        }
    }

    fn runner_id() -> RunnerId {
        RunnerId::new(RunnerAddress::new("h", 1).expect("address"), 1)
    }

    #[tokio::test]
    async fn a_backend_answer_with_unasked_shards_is_rejected() {
        let backend = Canned {
            shards: vec!["default:1".into(), "default:9".into()],
            ..Canned::new()
        };
        let storage = EncodedAdapter::new(backend);
        let asked = [ShardId::default_group(1), ShardId::default_group(2)];
        let result = storage.acquire(&runner_id(), &asked).await;
        assert!(
            matches!(&result, Err(RunnerStorageError::Invalid { value, .. }) if value == "default:9"),
            "{result:?}"
        );
        assert!(storage.refresh(&runner_id(), &asked).await.is_err());
    }

    #[tokio::test]
    async fn answers_come_back_in_the_order_asked() {
        let backend = Canned {
            shards: vec!["default:3".into(), "default:1".into()],
            ..Canned::new()
        };
        let storage = EncodedAdapter::new(backend);
        let asked = [
            ShardId::default_group(1),
            ShardId::default_group(2),
            ShardId::default_group(3),
        ];
        let got = storage
            .acquire(&runner_id(), &asked)
            .await
            .expect("acquire");
        assert_eq!(got, [ShardId::default_group(1), ShardId::default_group(3)]);
    }

    #[tokio::test]
    async fn corrupt_stored_strings_are_typed_errors() {
        let bad_runner = Canned {
            runners: vec![("not a runner".into(), true)],
            ..Canned::new()
        };
        assert!(matches!(
            EncodedAdapter::new(bad_runner).get_runners().await,
            Err(RunnerStorageError::Invalid { what: "runner", .. })
        ));
        let bad_lock = Canned {
            locks: vec![EncodedLock {
                shard_id: "default:1".into(),
                holder: "h:1#x".into(),
                expires_in: Duration::from_secs(1),
            }],
            ..Canned::new()
        };
        assert!(matches!(
            EncodedAdapter::new(bad_lock).list_locks().await,
            Err(RunnerStorageError::Invalid {
                what: "runner id",
                ..
            })
        ));
        let bad_id = Canned {
            machine_id: -1,
            ..Canned::new()
        };
        let runner = Runner::new(RunnerAddress::new("h", 1).expect("address"), 1);
        assert!(matches!(
            EncodedAdapter::new(bad_id).register(&runner, true).await,
            Err(RunnerStorageError::Invalid {
                what: "machine id",
                ..
            })
        ));
    }
}
