//! Placeholder: this example is being written.

fn main() {
    eprintln!("the sharding_counters example is not written yet");
}
