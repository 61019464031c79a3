//! Cluster singleton: exactly one instance of an actor across the cluster (work in progress).
