//! Distributed publish-subscribe across the cluster (work in progress).
