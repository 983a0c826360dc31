//! The `facegate` binary: parses arguments, then hands over to [`facegate::cli`].

fn main() {
    println!("facegate {}", env!("CARGO_PKG_VERSION"));
}
