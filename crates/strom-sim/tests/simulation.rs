//! Runs the deterministic simulation over many seeds. `STROM_SIM_SEEDS=N` runs more
//! (scripts/sim.sh); `STROM_SIM_SEED=S` reruns one.

use strom_sim::{Sim, SimConfig};

fn seeds() -> Vec<u64> {
    if let Ok(s) = std::env::var("STROM_SIM_SEED") {
        return vec![s.parse().expect("STROM_SIM_SEED is a number")];
    }
    let n = std::env::var("STROM_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    (0..n).collect()
}

#[test]
fn acknowledged_writes_survive_crashes_partitions_message_loss_and_failed_fsyncs() {
    let mut totals = (0, 0, 0, 0, 0, 0);
    let (mut retentions, mut all_committed) = (0, 0);
    for seed in seeds() {
        let r = Sim::new(SimConfig::new(seed)).run();
        assert!(r.proposals > 0, "seed {seed}: nothing was proposed");
        totals.0 += r.acked;
        totals.1 += r.proposals;
        totals.2 += r.crashes;
        totals.3 += r.partitions;
        totals.4 += r.elections;
        totals.5 += r.fsync_failures;
        retentions += r.retentions;
        all_committed += r.all_committed;
    }
    eprintln!(
        "acked {} of {} proposals; {} crashes, {} partitions, {} failed fsyncs, {} retention passes that removed segments, {} leaders elected",
        totals.0, totals.1, totals.2, totals.3, totals.5, retentions, totals.4
    );
    assert!(
        retentions > 0,
        "retention never removed a segment: the log-start paths went unexercised"
    );
    assert!(totals.0 > 0, "no proposal was ever acknowledged");
    assert!(
        all_committed > 0,
        "no wait for a whole log (a retried batch's) was answered: that path went unexercised"
    );
    assert!(
        totals.5 > 0,
        "no fsync failed: the failure path went unexercised"
    );
}

#[test]
fn a_run_is_reproducible_from_its_seed() {
    let a = Sim::new(SimConfig::new(7)).run();
    let b = Sim::new(SimConfig::new(7)).run();
    assert_eq!(
        (
            a.acked,
            a.proposals,
            a.crashes,
            a.fsync_failures,
            a.elections,
            a.final_offsets
        ),
        (
            b.acked,
            b.proposals,
            b.crashes,
            b.fsync_failures,
            b.elections,
            b.final_offsets
        )
    );
}
