//! `mongowire decode FILE...`: one JSON object per message on stdout, problems on stderr.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use mongowire::capture::{CaptureItem, CaptureOptions, CaptureReader, captured_json};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// pcap or pcapng captures, mongoreplay playback files, fixtures written by `mongowire
    /// record`, or files of back-to-back wire messages (as sent on one TCP stream); the format
    /// is recognised from the first bytes.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The MongoDB server's TCP port, for captures where the server cannot be recognised (no
    /// SYN, no reply, no default port). Overrides what is inferred.
    #[arg(long, value_name = "N")]
    server_port: Option<u16>,
}

/// What happened to the files so far.
#[derive(Default)]
struct Outcome {
    failed: bool,
    unreadable: bool,
}

/// Exit status 0 when every message decoded, 1 when some did not, 2 when a file could not be
/// read. Every file is read even after a failure.
pub(crate) fn run(args: &Args) -> ExitCode {
    let stdout = std::io::stdout().lock();
    let mut out = BufWriter::new(stdout);
    let mut outcome = Outcome::default();
    let options = CaptureOptions {
        server_port: args.server_port,
    };
    for path in &args.files {
        if !decode_file(path, options, &mut out, &mut outcome) {
            // stdout closed (`| head`): nothing more to do.
            break;
        }
    }
    // A flush failure is stdout going away as well.
    let _ = out.flush();
    if outcome.unreadable {
        ExitCode::from(2)
    } else if outcome.failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Prints one file's messages; returns `false` when stdout is gone.
fn decode_file(path: &PathBuf, options: CaptureOptions, out: &mut impl Write, outcome: &mut Outcome) -> bool {
    let name = path.display();
    let reader = File::open(path).and_then(|file| CaptureReader::new(BufReader::new(file), options));
    let mut reader = match reader {
        Ok(reader) => reader,
        Err(error) => {
            eprintln!("{name}: {error}");
            outcome.unreadable = true;
            return true;
        }
    };
    loop {
        match reader.next_item() {
            Ok(Some(CaptureItem::Message(message))) => {
                if writeln!(out, "{}", captured_json(&message)).is_err() {
                    return false;
                }
            }
            Ok(Some(CaptureItem::Problem(problem))) => {
                if problem.failure {
                    outcome.failed = true;
                    eprintln!("{name}: {problem}");
                } else {
                    eprintln!("{name}: note: {problem}");
                }
            }
            Ok(None) => return true,
            Err(error) => {
                eprintln!("{name}: {error}");
                outcome.unreadable = true;
                return true;
            }
        }
    }
}
