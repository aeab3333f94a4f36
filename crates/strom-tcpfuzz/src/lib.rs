//! A stateful, broker-level fuzzer for Strom: it starts a real `strom serve`, sends it
//! sequences of real Kafka requests (built with kafka-protocol's types and strom-batch's
//! batch builder, one of every API Strom advertises) that are mutated field by field and
//! byte by byte, over a few TCP connections, and watches the process: death, memory above
//! a ceiling, a panic in its output, or no answer to ApiVersions are findings. Seeds make
//! every sequence reproducible; findings are written as files that `replay` sends again.
//!
//! ```text
//! seed ─▶ sequence::generate ─▶ corpus::build (typed request) ─▶ message::encode
//!            (records field positions) ─▶ mutate ─▶ exec::run over TCP ─▶ broker watchers
//! ```

pub mod batch;
pub mod broker;
pub mod corpus;
pub mod exec;
pub mod fuzz;
pub mod message;
pub mod mutate;
pub mod rng;
pub mod sequence;
