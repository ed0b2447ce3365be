//! `idshare bench redeem` and `idshare bench inquiries` run end to end with a few operations on
//! SQLite, so that the benchmarks do not rot. Their figures are printed, never asserted.

use std::process::Command;

fn bench(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_idshare"))
        .arg("bench")
        .args(args)
        .env_remove("IDSHARE_DATABASE_URL")
        .output()
        .expect("run idshare bench");
    assert!(
        output.status.success(),
        "idshare bench {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

#[test]
fn bench_redeem_one_at_a_time_reports_cost_and_goals() {
    let out = bench(&["redeem", "--tokens", "2", "--one-at-a-time"]);
    for line in [
        "redeem benchmark: Sqlite",
        "end to end (redeem call sent",
        "server (the token's pending_at",
        "server CPU: ",
        "SQL statements, ",
        "of which the redeem call",
        "storage ceiling: ",
        "one redemption alone: end-to-end p50",
        "write transactions per redemption",
    ] {
        assert!(out.contains(line), "no {line:?} in:\n{out}");
    }
}

#[test]
fn bench_inquiries_in_bursts_reports_cost_and_throughput() {
    let out = bench(&["inquiries", "--inquiries", "2"]);
    for line in [
        "inquiries benchmark: Sqlite",
        "create calls (sent → 201)",
        "end to end (submit call sent",
        "throughput: ",
        "server CPU: ",
        "SQL statements, ",
        "ratio to the ceiling: ",
    ] {
        assert!(out.contains(line), "no {line:?} in:\n{out}");
    }
}
