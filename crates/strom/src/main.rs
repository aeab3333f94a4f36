//! `strom`: a thin `main` that parses the command line and calls the library crates:
//! `strom serve` runs a broker; the other commands are clients (strom-client).

mod bench;
mod cli;
mod cluster;
mod consume;
mod group;
mod produce;
mod serve;
mod topic;
mod txn;

use clap::{Command, FromArgMatches, Subcommand};

// The client commands (`serve` is built with clap's builder from the settings table).
// A plain comment: a doc comment here would replace the program's about line.
#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Create, list, describe, delete topics and change their configs
    #[command(subcommand)]
    Topic(topic::TopicCommand),
    /// Write lines from stdin or a file as records
    Produce(produce::ProduceArgs),
    /// Print records of a topic
    Consume(consume::ConsumeArgs),
    /// List, describe, reset and delete consumer groups
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// List, describe and abort transactions; list a partition's producers
    #[command(subcommand)]
    Txn(txn::TxnCommand),
    /// Show the cluster's brokers and partition leadership
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Measure throughput and latency of a produce/consume workload, or the machine's
    /// raw limits (`strom bench baseline`)
    Bench(bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Command::new("strom")
        .about("Strom: a Kafka-compatible commit-log broker")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(serve::command());
    let cli = ClientCommand::augment_subcommands(cli);
    let matches = match cli.try_get_matches() {
        Ok(m) => m,
        Err(e) => usage_error(e),
    };
    if let Some(("serve", m)) = matches.subcommand() {
        return serve::run(m);
    }
    let command = ClientCommand::from_arg_matches(&matches).unwrap_or_else(|e| usage_error(e));
    let result = match command {
        ClientCommand::Topic(c) => topic::run(c),
        ClientCommand::Produce(a) => produce::run(a),
        ClientCommand::Consume(a) => consume::run(a),
        ClientCommand::Group(c) => group::run(c),
        ClientCommand::Txn(c) => txn::run(c),
        ClientCommand::Cluster(c) => cluster::run(c),
        ClientCommand::Bench(a) => bench::run(a),
    };
    if let Err(e) = result {
        // One line: the error and its causes, no backtrace.
        eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
        std::process::exit(1);
    }
    Ok(())
}

/// Help and version go to stdout as clap prints them; a usage error is one line on
/// stderr (clap's first line, which names the problem) and exit status 2.
fn usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or("error: invalid arguments");
    eprintln!("{first} (see --help)");
    std::process::exit(2);
}
