//! The Change Streams specification's own tests (Unified Test Format, `source/change-streams/
//! tests/unified/` of mongodb/specifications) against the real 3-member replica set, through the
//! runner in `tests/unified/`.
//!
//! The test files are CC BY-NC-SA, so they are never committed: they are read from
//! `$MONGOWIRE_SHARED/specs/change-streams-unified` (by default `../shared` beside the checkout),
//! and the test prints a notice and passes when they are absent. Run with `-- --nocapture` to see
//! every verdict and the table per file.
#![allow(clippy::indexing_slicing)]

mod common;
mod unified;

use std::path::{Path, PathBuf};

use unified::runner::{Environment, TestReport, Verdict, run_file};

/// `$MONGOWIRE_SHARED/specs/change-streams-unified`, when it exists.
fn spec_dir() -> Option<PathBuf> {
    let shared = std::env::var_os("MONGOWIRE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let dir = shared.join("specs/change-streams-unified");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is absent", dir.display());
        None
    }
}

/// The 3-member set: the specification's tests are written for a real replica set, and this
/// one replicates majority writes and elects a primary like production ones. The single-node
/// set stands in only when the 3-member one is not configured.
fn deployment() -> Option<(String, &'static str)> {
    if std::env::var("MONGOWIRE_TEST_RS3_URI").is_ok_and(|uri| !uri.is_empty()) {
        return common::rs3().map(|uri| (uri, "the 3-member replica set"));
    }
    common::single().map(|uri| (uri, "the single-node replica set (MONGOWIRE_TEST_RS3_URI is unset)"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_streams_specification_tests() {
    let Some(dir) = spec_dir() else { return };
    let Some((uri, which)) = deployment() else { return };
    let env = Environment::connect(&uri)
        .await
        .expect("connecting the internal client");
    println!(
        "Change Streams specification tests against {which}: MongoDB {}",
        env.describe()
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no test files in {}", dir.display());

    let mut table = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        println!("{name}");
        table.push((name, run_file(&env, path).await));
    }
    env.shutdown().await;

    print_table(&table);
    let failures: Vec<String> = table
        .iter()
        .flat_map(|(file, reports)| {
            reports.iter().filter_map(move |report| match &report.verdict {
                Verdict::Failed(why) => Some(format!("{file}: {}: {why}", report.description)),
                _ => None,
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} tests failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Counts per file, then every skip with its reason.
fn print_table(table: &[(String, Vec<TestReport>)]) {
    println!("\n{:<40} {:>6} {:>6} {:>7}", "file", "passed", "failed", "skipped");
    let mut totals = [0; 3];
    for (file, reports) in table {
        let mut counts = [0; 3];
        for report in reports {
            counts[match report.verdict {
                Verdict::Passed => 0,
                Verdict::Failed(_) => 1,
                Verdict::Skipped(_) => 2,
            }] += 1;
        }
        println!("{file:<40} {:>6} {:>6} {:>7}", counts[0], counts[1], counts[2]);
        for (total, count) in totals.iter_mut().zip(counts) {
            *total += count;
        }
    }
    println!("{:<40} {:>6} {:>6} {:>7}", "total", totals[0], totals[1], totals[2]);
    println!("\nskipped:");
    for (file, reports) in table {
        for report in reports {
            if let Verdict::Skipped(why) = &report.verdict {
                println!("  {file}: {}: {why}", report.description);
            }
        }
    }
}
