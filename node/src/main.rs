//! The `stockade` binary (CLI arrives in the next commit).
fn main() {}
