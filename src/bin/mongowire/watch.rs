//! `mongowire watch`: tail a change stream as JSON lines, with durable resume checkpoints.
//!
//! Exit status: 0 after `--limit` events, an invalidate, Ctrl-C/SIGTERM or a closed stdout; 1
//! when the server or the network failed; 2 for a usage error (a bad flag, URI or checkpoint).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bson::{Bson, Document, RawDocumentBuf, Timestamp};
use mongowire::Error;
use mongowire::driver::{ChangeStream, Client};
use mongowire::protocol::change_stream::{ChangeEvent, ChangeStreamOptions, FullDocument, FullDocumentBeforeChange};

use crate::checkpoint::Checkpoint;
use crate::signals::shutdown_signal;

/// How events are printed.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Format {
    /// Relaxed Extended JSON, one event per line.
    Relaxed,
    /// Canonical Extended JSON (types kept exactly), one event per line.
    Canonical,
    /// The events' BSON bytes, back to back.
    Raw,
}

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Connection string.
    #[arg(long)]
    uri: String,
    /// DB or DB.COLL to watch; the whole deployment when absent.
    #[arg(long)]
    ns: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Relaxed)]
    format: Format,
    /// Stages after $changeStream, as a JSON array (Extended JSON).
    #[arg(long)]
    pipeline: Option<String>,
    /// fullDocument: default, updateLookup, whenAvailable, required (or any value the server accepts).
    #[arg(long)]
    full_document: Option<String>,
    /// fullDocumentBeforeChange: off, whenAvailable, required.
    #[arg(long)]
    full_document_before_change: Option<String>,
    /// Resume after this token (Extended JSON).
    #[arg(long)]
    resume_after: Option<String>,
    /// Start after this token, even an invalidate's (Extended JSON).
    #[arg(long)]
    start_after: Option<String>,
    /// Start at this cluster time, T:I (seconds:increment).
    #[arg(long)]
    start_at_operation_time: Option<String>,
    /// Events per batch.
    #[arg(long)]
    batch_size: Option<u32>,
    /// How long each getMore waits for events.
    #[arg(long)]
    max_await_time_ms: Option<u64>,
    /// Include DDL events (create, createIndexes, ...).
    #[arg(long)]
    show_expanded_events: bool,
    /// Split events over 16 MB on the server and print each reassembled.
    #[arg(long)]
    split_large_events: bool,
    /// Exit after this many events.
    #[arg(long)]
    limit: Option<u64>,
    /// Keep the resume token here, durably, after each event; resume from it on start.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// No progress line on stderr.
    #[arg(long, short)]
    quiet: bool,
    /// Logs on stderr (-v: info, -vv: debug).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

impl Args {
    /// How much logging `-v` asked for.
    pub(crate) fn verbosity(&self) -> u8 {
        self.verbose
    }
}

/// A failure, with the exit status it maps to.
struct Failure {
    message: String,
    status: u8,
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        status: 2,
    }
}

/// The server's code for a resume point that has fallen off the oplog.
const CHANGE_STREAM_HISTORY_LOST: i32 = 286;

/// One line that says what failed, where, as whom: the reason this command exists.
fn runtime_failure(error: &Error) -> Failure {
    let message = match error {
        Error::Usage(_) => return usage(error.to_string()),
        Error::ServerSelection(selection) => selection.to_string().replace('\n', "; "),
        Error::Authentication(auth) => format!(
            "authentication failed for user {:?} with {} (source {:?}): {}",
            auth.user, auth.mechanism, auth.source_db, auth.reason
        ),
        Error::Server(server) => {
            let at = server.address.as_ref().map(|a| format!(" at {a}")).unwrap_or_default();
            // ChangeStreamHistoryLost: say what to do, since a stale checkpoint is the usual cause.
            let hint = if server.code == CHANGE_STREAM_HISTORY_LOST {
                " (the position to start from is older than the oplog: remove the checkpoint, or start from a \
                 later --start-at-operation-time; the events in between can no longer be read)"
            } else {
                ""
            };
            format!(
                "server error {} ({}){at}: {}{hint}",
                server.code, server.code_name, server.message
            )
        }
        other => other.to_string(),
    };
    Failure { message, status: 1 }
}

fn json_document(text: &str, what: &str) -> Result<RawDocumentBuf, Failure> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| usage(format!("{what}: not JSON: {e}")))?;
    match Bson::try_from(value) {
        Ok(Bson::Document(document)) => RawDocumentBuf::try_from(&document).map_err(|e| usage(format!("{what}: {e}"))),
        _ => Err(usage(format!("{what}: expected a JSON object"))),
    }
}

fn options(args: &Args) -> Result<(Vec<RawDocumentBuf>, ChangeStreamOptions), Failure> {
    let mut pipeline = Vec::new();
    if let Some(text) = &args.pipeline {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| usage(format!("--pipeline: not JSON: {e}")))?;
        let serde_json::Value::Array(stages) = value else {
            return Err(usage("--pipeline: expected a JSON array of stages"));
        };
        for (index, stage) in stages.into_iter().enumerate() {
            pipeline.push(json_document(&stage.to_string(), &format!("--pipeline stage {index}"))?);
        }
    }
    if args.split_large_events {
        pipeline.push(bson::rawdoc! { "$changeStreamSplitLargeEvent": {} });
    }
    let start_at_operation_time = match &args.start_at_operation_time {
        Some(text) => {
            let parsed = text
                .split_once(':')
                .and_then(|(t, i)| Some((t.parse().ok()?, i.parse().ok()?)));
            let Some((time, increment)) = parsed else {
                return Err(usage(format!(
                    "--start-at-operation-time: expected T:I (seconds:increment), got {text:?}"
                )));
            };
            Some(Timestamp { time, increment })
        }
        None => None,
    };
    let options = ChangeStreamOptions {
        full_document: args.full_document.as_deref().map(FullDocument::from_name),
        full_document_before_change: args
            .full_document_before_change
            .as_deref()
            .map(FullDocumentBeforeChange::from_name),
        resume_after: args
            .resume_after
            .as_deref()
            .map(|t| json_document(t, "--resume-after"))
            .transpose()?,
        start_after: args
            .start_after
            .as_deref()
            .map(|t| json_document(t, "--start-after"))
            .transpose()?,
        start_at_operation_time,
        batch_size: args.batch_size,
        max_await_time: args.max_await_time_ms.map(Duration::from_millis),
        show_expanded_events: args.show_expanded_events.then_some(true),
        reassemble_split_events: args.split_large_events,
        ..ChangeStreamOptions::default()
    };
    Ok((pipeline, options))
}

fn render(event: &ChangeEvent, format: Format, out: &mut Vec<u8>) -> Result<(), Failure> {
    match format {
        Format::Raw => out.extend_from_slice(event.raw().as_bytes()),
        Format::Relaxed | Format::Canonical => {
            let document = Document::try_from(event.raw()).map_err(|e| Failure {
                message: format!("an event is not valid BSON: {e}"),
                status: 1,
            })?;
            let value = match format {
                Format::Canonical => Bson::Document(document).into_canonical_extjson(),
                _ => Bson::Document(document).into_relaxed_extjson(),
            };
            serde_json::to_writer(&mut *out, &value).map_err(|e| Failure {
                message: e.to_string(),
                status: 1,
            })?;
            out.push(b'\n');
        }
    }
    Ok(())
}

/// Progress on stderr, at most once a second, when stderr is a terminal: events so far, the rate
/// since the last report, and the lag of the last event (from its wall time to its printing).
struct Progress {
    enabled: bool,
    events: u64,
    reported_at: Instant,
    reported_events: u64,
    lag_ms: Option<i64>,
}

impl Progress {
    fn new(enabled: bool) -> Progress {
        Progress {
            enabled,
            events: 0,
            reported_at: Instant::now(),
            reported_events: 0,
            lag_ms: None,
        }
    }

    fn event(&mut self, event: &ChangeEvent) {
        self.events += 1;
        if self.enabled {
            let now = bson::DateTime::now().timestamp_millis();
            self.lag_ms = event.wall_time().map(|wall| now - wall.timestamp_millis());
            self.report();
        }
    }

    fn report(&mut self) {
        let elapsed = self.reported_at.elapsed();
        if !self.enabled || elapsed < Duration::from_secs(1) {
            return;
        }
        let rate = (self.events - self.reported_events) as f64 / elapsed.as_secs_f64();
        let lag = self
            .lag_ms
            .map(|ms| format!(", lag {:.1} s", ms as f64 / 1000.0))
            .unwrap_or_default();
        eprint!("\r{} events, {rate:.0}/s{lag}    ", self.events);
        self.reported_at = Instant::now();
        self.reported_events = self.events;
    }
}

pub(crate) async fn run(args: &Args) -> ExitCode {
    match watch(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("mongowire watch: {}", failure.message);
            ExitCode::from(failure.status)
        }
    }
}

/// Connects and opens the stream. A stored checkpoint wins over the start options, since it is
/// where this watcher got to; it is passed as `startAfter`, which behaves as `resumeAfter` for an
/// ordinary token and also accepts an invalidate's, so a watcher that ended on an invalidate
/// carries on with the collection's next incarnation.
async fn open(args: &Args, checkpoint: Option<RawDocumentBuf>) -> Result<(Client, ChangeStream), Failure> {
    let (pipeline, mut options) = options(args)?;
    if let Some(token) = checkpoint {
        options.start_after = Some(token);
        options.resume_after = None;
        options.start_at_operation_time = None;
    }
    let client = Client::connect(&args.uri).await.map_err(|e| runtime_failure(&e))?;
    let watched = match args.ns.as_deref().map(|ns| ns.split_once('.').unwrap_or((ns, ""))) {
        None => client.watch(pipeline, options).await,
        Some((db, "")) => client.database(db).watch(pipeline, options).await,
        Some((db, coll)) => client.database(db).collection(coll).watch(pipeline, options).await,
    };
    match watched {
        Ok(stream) => Ok((client, stream)),
        Err(error) => {
            client.shutdown().await;
            Err(runtime_failure(&error))
        }
    }
}

async fn watch(args: &Args) -> Result<(), Failure> {
    let (mut checkpoint, stored) = match &args.checkpoint {
        Some(path) => {
            let (checkpoint, stored) = Checkpoint::open(path).map_err(usage)?;
            (Some(checkpoint), stored)
        }
        None => (None, None),
    };
    let (client, mut stream) = open(args, stored).await?;
    let mut progress = Progress::new(!args.quiet && std::io::stderr().is_terminal());
    let stop = shutdown_signal();
    let result = tokio::select! {
        () = stop => Ok(()),
        result = pump(args, &mut stream, checkpoint.as_mut(), &mut progress) => result,
    };
    if progress.enabled {
        eprintln!();
    }
    stream.close().await;
    client.shutdown().await;
    result
}

/// Prints events until the limit, an invalidate, a closed stdout or a failure. Each event's
/// token is stored only after the event is written and flushed, so a crash repeats at most the
/// event in flight and never skips one.
async fn pump(
    args: &Args,
    stream: &mut ChangeStream,
    mut checkpoint: Option<&mut Checkpoint>,
    progress: &mut Progress,
) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    let mut line = Vec::new();
    while args.limit.is_none_or(|limit| progress.events < limit) {
        let event = match stream.try_next().await {
            Ok(Some(event)) => event,
            Ok(None) if stream.is_alive() => {
                // No event, but the token may have moved (postBatchResumeToken): keeping the
                // checkpoint fresh spares a restart from scanning the oplog again.
                store(checkpoint.as_deref_mut(), stream)?;
                progress.report();
                continue;
            }
            Ok(None) => return Ok(()),
            Err(error) => return Err(runtime_failure(&error)),
        };
        line.clear();
        render(&event, args.format, &mut line)?;
        if let Err(error) = out.write_all(&line).and_then(|()| out.flush()) {
            if error.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(Failure {
                message: format!("writing to stdout: {error}"),
                status: 1,
            });
        }
        store(checkpoint.as_deref_mut(), stream)?;
        progress.event(&event);
    }
    Ok(())
}

fn store(checkpoint: Option<&mut Checkpoint>, stream: &ChangeStream) -> Result<(), Failure> {
    match (checkpoint, stream.resume_token()) {
        (Some(checkpoint), Some(token)) => checkpoint
            .store(&token)
            .map_err(|message| Failure { message, status: 1 }),
        _ => Ok(()),
    }
}
