//! MultiNodeSpec: run one test body per role on a cluster of actor systems (work in progress).
