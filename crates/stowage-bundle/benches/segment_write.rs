//! Segment write throughput: the bundle's durable segment writer next to a plain write + fsync.
fn main() {}
