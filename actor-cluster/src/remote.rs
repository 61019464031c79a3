//! Remoting: typed actor refs across nodes on top of a [`crate::Transport`].
