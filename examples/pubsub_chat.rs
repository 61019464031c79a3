//! Placeholder: this example is being written.

fn main() {
    eprintln!("the pubsub_chat example is not written yet");
}
