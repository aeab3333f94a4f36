//! `strom`: a thin `main` that parses the command line and calls the library crates.

mod serve;

use clap::Command;

fn main() -> anyhow::Result<()> {
    let cli = Command::new("strom")
        .about("Strom: a Kafka-compatible commit-log broker")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(serve::command());
    let matches = cli.get_matches();
    match matches.subcommand() {
        Some(("serve", m)) => serve::run(m),
        _ => unreachable!("clap enforces a known subcommand"),
    }
}
