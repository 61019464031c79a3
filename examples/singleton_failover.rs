//! Placeholder: this example is being written.

fn main() {
    eprintln!("the singleton_failover example is not written yet");
}
