//! Placeholder: this example is being written.

fn main() {
    eprintln!("the cluster_node example is not written yet");
}
