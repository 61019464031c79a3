//! [`Text`]: a ready-made message for topics that carry plain strings.

use serde::{Deserialize, Serialize};

use crate::wire::RemoteMessage;

/// A plain text message (a chat line, a notice) that can be published as it is.
///
/// Topics of your own types work the same way: derive `Serialize`, `Deserialize` and
/// `Clone`, and implement [`RemoteMessage`] with a stable manifest.
///
/// # Examples
///
/// ```
/// use actor_cluster::pubsub::Text;
///
/// let line = Text::from("hello");
/// assert_eq!(line.as_str(), "hello");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Text(pub String);

impl Text {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl RemoteMessage for Text {
    const MANIFEST: &'static str = "actor_cluster.pubsub.Text";
}

impl From<&str> for Text {
    fn from(text: &str) -> Self {
        Text(text.to_owned())
    }
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        Text(text)
    }
}
