//! `mongowire replay --listen ADDR FIXTURE`: plays a fixture's server side to the client that
//! connects, and exits non-zero when the client did not do what the recording says.

use std::process::ExitCode;
use std::time::Duration;

use mongowire::capture::Fixture;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Address to accept the client on, such as 127.0.0.1:27998 (port 0 picks a free one).
    #[arg(long)]
    listen: String,
    /// Stop after this many seconds without a request.
    #[arg(long, default_value_t = 10)]
    idle_timeout: u64,
    /// The fixture to play.
    fixture: std::path::PathBuf,
}

pub(crate) async fn run(args: &Args) -> ExitCode {
    let fixture = match std::fs::File::open(&args.fixture).map(std::io::BufReader::new) {
        Ok(file) => match Fixture::read(file) {
            Ok(fixture) => fixture,
            Err(error) => {
                eprintln!("{}: {error}", args.fixture.display());
                return ExitCode::from(2);
            }
        },
        Err(error) => {
            eprintln!("{}: {error}", args.fixture.display());
            return ExitCode::from(2);
        }
    };
    let (listener, address) = match mongowire::traffic::bind(&args.listen).await {
        Ok(bound) => bound,
        Err(error) => {
            eprintln!("mongowire replay: cannot listen on {}: {error}", args.listen);
            return ExitCode::from(2);
        }
    };
    println!("replaying {} on {address}", args.fixture.display());
    let report = match mongowire::traffic::replay(listener, &fixture, Duration::from_secs(args.idle_timeout)).await {
        Ok(report) => report,
        Err(error) => {
            eprintln!("mongowire replay: {error}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "mongowire replay: {} of {} recorded operations performed over {} connections",
        report.performed, report.operations, report.connections
    );
    if let Some(mismatch) = &report.mismatch {
        eprintln!("{mismatch}");
    }
    if let Some(missing) = &report.missing {
        eprintln!("the client stopped before {missing}");
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
