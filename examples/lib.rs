//! Runnable examples; see the `[[example]]` targets in this package.
