//! Cluster sharding: entities spread over the cluster by shard (work in progress).
