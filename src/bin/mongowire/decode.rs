//! `mongowire decode FILE...`: one JSON object per message on stdout, problems on stderr.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use mongowire::capture::{RawStreamReader, StreamItem, message_json};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Files holding back-to-back wire messages (as sent on one TCP stream).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Exit status 0 when every message decoded, 1 when some did not, 2 when a file could not be read.
pub(crate) fn run(args: &Args) -> ExitCode {
    let stdout = std::io::stdout().lock();
    let mut out = BufWriter::new(stdout);
    let mut status = ExitCode::SUCCESS;
    for path in &args.files {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(error) => {
                eprintln!("{}: {error}", path.display());
                return ExitCode::from(2);
            }
        };
        let mut reader = RawStreamReader::new(BufReader::new(file));
        loop {
            let item = match reader.next_item() {
                Ok(Some(item)) => item,
                Ok(None) => break,
                Err(error) => {
                    eprintln!("{}: {error}", path.display());
                    return ExitCode::from(2);
                }
            };
            match item {
                StreamItem::Message { message, .. } => {
                    if writeln!(out, "{}", message_json(&message)).is_err() {
                        // stdout closed (`| head`): nothing more to do.
                        return status;
                    }
                }
                StreamItem::Error {
                    offset,
                    error,
                    recovered,
                } => {
                    let rest = if recovered {
                        "skipped"
                    } else {
                        "the rest of the file cannot be framed"
                    };
                    eprintln!("{}: message at byte {offset}: {error}; {rest}", path.display());
                    status = ExitCode::FAILURE;
                }
                StreamItem::Truncated { offset, available } => {
                    eprintln!(
                        "{}: message at byte {offset} is cut short after {available} bytes",
                        path.display()
                    );
                    status = ExitCode::FAILURE;
                }
            }
        }
    }
    if out.flush().is_err() {
        return status;
    }
    status
}
