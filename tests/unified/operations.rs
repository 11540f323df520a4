//! The operations the change-stream files run, each checked against its `expectResult`,
//! `expectError` and `saveResultAsEntity`. Arguments the runner does not know are an error, as
//! the format requires, never silently dropped.

use std::time::Duration;

use bson::{Bson, Document, RawArrayBuf, RawBson, RawDocumentBuf, doc};
use mongowire::Error;
use mongowire::driver::{ChangeStream, Client};
use mongowire::protocol::change_stream::{ChangeStreamOptions, FullDocument, FullDocumentBeforeChange};
use mongowire::protocol::crud::UpdateModifications;

use super::entities::{Entity, EntityMap, take_str, wrong_kind};
use super::matching::match_root;
use super::{Failure, show};

/// How long one operation may take. Iterating a change stream waits for an event that should
/// already be in the oplog, or for a resume; far longer means the test is stuck.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The operation names this runner implements; tests using any other are skipped as runner
/// limitations (the format allows skipping intentionally unimplemented operations).
pub(crate) const SUPPORTED_OPERATIONS: [&str; 13] = [
    "failPoint",
    "createChangeStream",
    "iterateUntilDocumentOrError",
    "insertOne",
    "updateOne",
    "replaceOne",
    "deleteOne",
    "runCommand",
    "createCollection",
    "dropCollection",
    "createIndex",
    "dropIndex",
    "rename",
];

/// A fail point a test enabled: turned off through the same client when the test ends.
#[derive(Debug)]
pub(crate) struct EnabledFailPoint {
    pub(crate) client: Client,
    pub(crate) name: String,
}

/// What an operation gave back.
enum Outcome {
    Nothing,
    Value(Bson),
    ChangeStream(Box<ChangeStream>),
}

/// Runs one operation of a test and checks what it expects.
pub(crate) async fn run(
    operation: &Document,
    entities: &mut EntityMap,
    fail_points: &mut Vec<EnabledFailPoint>,
) -> Result<(), Failure> {
    let mut operation = operation.clone();
    let name = take_str(&mut operation, "name")?;
    let object = take_str(&mut operation, "object")?;
    let arguments = match operation.remove("arguments") {
        None => Document::new(),
        Some(Bson::Document(arguments)) => arguments,
        Some(other) => return Err(Failure::failed(format!("{name}: arguments {}", show(&other)))),
    };
    let expect_result = operation.remove("expectResult");
    let expect_error = match operation.remove("expectError") {
        None => None,
        Some(Bson::Document(expected)) => Some(expected),
        Some(other) => return Err(Failure::failed(format!("{name}: expectError {}", show(&other)))),
    };
    let save_as = match operation.remove("saveResultAsEntity") {
        None => None,
        Some(Bson::String(id)) => Some(id),
        Some(other) => return Err(Failure::failed(format!("{name}: saveResultAsEntity {}", show(&other)))),
    };
    let ignore_outcome = matches!(operation.remove("ignoreResultAndError"), Some(Bson::Boolean(true)));
    if let Some(key) = operation.keys().next() {
        return Err(Failure::unsupported(format!("operation field {key}")));
    }

    if object == "testRunner" {
        return special(&name, arguments, entities, fail_points).await;
    }
    let call = execute(&name, &object, arguments, entities);
    let outcome = tokio::time::timeout(OPERATION_TIMEOUT, call)
        .await
        .map_err(|_| Failure::failed(format!("{name} on {object} did not finish in {OPERATION_TIMEOUT:?}")))??;
    if ignore_outcome {
        return Ok(());
    }
    let outcome = match (outcome, expect_error) {
        (Err(error), Some(expected)) => return check_error(&expected, &error),
        (Ok(_), Some(expected)) => {
            return Err(Failure::failed(format!(
                "{name} on {object} succeeded; expected the error {}",
                show(&Bson::Document(expected))
            )));
        }
        (Err(error), None) => return Err(Failure::failed(format!("{name} on {object} failed: {error}"))),
        (Ok(outcome), None) => outcome,
    };
    if let Some(expected) = &expect_result {
        let actual = match &outcome {
            Outcome::Value(value) => Some(value),
            Outcome::Nothing => None,
            Outcome::ChangeStream(_) => {
                return Err(Failure::failed(format!("{name}: expectResult on a change stream")));
            }
        };
        match_root(expected, actual).map_err(|failure| prefix(failure, &format!("{name} result")))?;
    }
    if let Some(id) = save_as {
        match outcome {
            Outcome::ChangeStream(stream) => entities.insert(&id, Entity::ChangeStream(stream))?,
            // No file of this suite saves anything else, so no operator reads other entities.
            Outcome::Value(_) => return Err(Failure::unsupported(format!("saving the result of {name}"))),
            Outcome::Nothing => return Err(Failure::failed(format!("{name} returned nothing to save as {id:?}"))),
        }
    }
    Ok(())
}

fn prefix(failure: Failure, context: &str) -> Failure {
    match failure {
        Failure::Failed(message) => Failure::Failed(format!("{context}: {message}")),
        unsupported => unsupported,
    }
}

/// `object: testRunner` operations.
async fn special(
    name: &str,
    mut arguments: Document,
    entities: &EntityMap,
    fail_points: &mut Vec<EnabledFailPoint>,
) -> Result<(), Failure> {
    if name != "failPoint" {
        return Err(Failure::unsupported(format!("test runner operation {name}")));
    }
    let client = entities.client(&take_str(&mut arguments, "client")?)?.client.clone();
    let command = take_document(&mut arguments, "failPoint")?;
    no_more(name, &arguments)?;
    let fail_point = command
        .get_str("configureFailPoint")
        .map_err(|_| Failure::failed("failPoint without configureFailPoint"))?
        .to_owned();
    // Through the test's client with a primary read preference, as the format says.
    client
        .database("admin")
        .run_command(raw(&command)?)
        .await
        .map_err(|e| Failure::failed(format!("configureFailPoint {fail_point}: {e}")))?;
    fail_points.push(EnabledFailPoint {
        client,
        name: fail_point,
    });
    Ok(())
}

/// Runs an entity operation: the outer error is the runner's (bad arguments, unknown entity),
/// the inner result is mongowire's.
async fn execute(
    name: &str,
    object: &str,
    mut args: Document,
    entities: &mut EntityMap,
) -> Result<Result<Outcome, Error>, Failure> {
    if name == "iterateUntilDocumentOrError" {
        no_more(name, &args)?;
        let stream = entities.change_stream(object)?;
        return Ok(match stream.next().await {
            Some(Ok(event)) => Ok(Outcome::Value(Bson::Document(
                Document::try_from(event.raw()).map_err(|e| Failure::failed(format!("event: {e}")))?,
            ))),
            Some(Err(error)) => Err(error),
            None => Err(Error::usage("the change stream is closed")),
        });
    }
    if name == "createChangeStream" {
        let pipeline = pipeline(&mut args)?;
        let options = change_stream_options(&mut args)?;
        no_more(name, &args)?;
        let opened = match entities.get(object)? {
            Entity::Client(client) => client.client.watch(pipeline, options).await,
            Entity::Database { database, .. } => database.watch(pipeline, options).await,
            Entity::Collection { collection, .. } => collection.watch(pipeline, options).await,
            other => return Err(wrong_kind(object, "client, database or collection", other)),
        };
        return Ok(opened.map(|stream| Outcome::ChangeStream(Box::new(stream))));
    }
    match entities.get(object)? {
        Entity::Database { database, .. } => {
            let database = database.clone();
            database_operation(name, &database, args).await
        }
        Entity::Collection {
            client,
            database,
            collection,
        } => {
            let (client, database, collection) = (client.clone(), database.clone(), collection.clone());
            collection_operation(name, &client, &database, &collection, args).await
        }
        other => Err(Failure::unsupported(format!("{name} on a {}", other.kind()))),
    }
}

async fn database_operation(
    name: &str,
    database: &mongowire::driver::Database,
    mut args: Document,
) -> Result<Result<Outcome, Error>, Failure> {
    Ok(match name {
        "runCommand" => {
            let command = take_document(&mut args, "command")?;
            // Only for languages whose parsers lose key order; the command keeps its own.
            take_str(&mut args, "commandName")?;
            no_more(name, &args)?;
            database
                .run_command(raw(&command)?)
                .await
                .and_then(|reply| document_outcome(&reply))
        }
        "createCollection" => {
            let collection = take_str(&mut args, "collection")?;
            // Every other argument is an option of the create command, sent as it is.
            let options = (!args.is_empty()).then(|| raw(&args)).transpose()?;
            database
                .create_collection(&collection, options.as_deref())
                .await
                .map(|()| Outcome::Nothing)
        }
        "dropCollection" => {
            let collection = take_str(&mut args, "collection")?;
            no_more(name, &args)?;
            database.collection(&collection).drop().await.map(|()| Outcome::Nothing)
        }
        _ => return Err(Failure::unsupported(format!("{name} on a database"))),
    })
}

async fn collection_operation(
    name: &str,
    client: &Client,
    database: &mongowire::driver::Database,
    collection: &mongowire::driver::Collection,
    mut args: Document,
) -> Result<Result<Outcome, Error>, Failure> {
    Ok(match name {
        "insertOne" => {
            let document = take_document(&mut args, "document")?;
            no_more(name, &args)?;
            collection.insert_one(raw(&document)?).await.and_then(|result| {
                let id = Bson::try_from(result.inserted_id).map_err(|e| Error::usage(e.to_string()))?;
                Ok(Outcome::Value(Bson::Document(doc! { "insertedId": id })))
            })
        }
        "updateOne" => {
            let filter = raw(&take_document(&mut args, "filter")?)?;
            let update = match args.remove("update") {
                Some(Bson::Document(update)) => UpdateModifications::Document(raw(&update)?),
                Some(Bson::Array(stages)) => UpdateModifications::Pipeline(
                    RawArrayBuf::try_from(&stages).map_err(|e| Failure::failed(format!("update: {e}")))?,
                ),
                other => return Err(Failure::failed(format!("updateOne: update {other:?}"))),
            };
            no_more(name, &args)?;
            collection.update_one(filter, update).await.map(update_outcome)
        }
        "replaceOne" => {
            let filter = raw(&take_document(&mut args, "filter")?)?;
            let replacement = raw(&take_document(&mut args, "replacement")?)?;
            let upsert = take_bool(&mut args, "upsert")?.unwrap_or(false);
            no_more(name, &args)?;
            collection
                .replace_one(filter, replacement, upsert)
                .await
                .map(update_outcome)
        }
        "deleteOne" => {
            let filter = raw(&take_document(&mut args, "filter")?)?;
            no_more(name, &args)?;
            collection
                .delete_one(filter)
                .await
                .map(|result| Outcome::Value(Bson::Document(doc! { "deletedCount": count(result.deleted_count) })))
        }
        // mongowire has no index API; these test-harness operations run as the commands the
        // Index Management specification describes, through the collection's own client.
        "createIndex" => {
            let keys = take_document(&mut args, "keys")?;
            let mut index = doc! { "key": keys };
            let index_name = match args.remove("name") {
                Some(Bson::String(index_name)) => index_name,
                None => return Err(Failure::unsupported("createIndex without a name")),
                Some(other) => return Err(Failure::failed(format!("createIndex: name {}", show(&other)))),
            };
            index.insert("name", index_name.clone());
            // Other arguments (unique, sparse, ...) are options of the index itself.
            index.extend(args);
            let command = doc! { "createIndexes": collection.name(), "indexes": [index] };
            database
                .run_command(raw(&command)?)
                .await
                .map(|_| Outcome::Value(Bson::String(index_name)))
        }
        "dropIndex" => {
            let index_name = take_str(&mut args, "name")?;
            no_more(name, &args)?;
            let command = doc! { "dropIndexes": collection.name(), "index": index_name };
            database.run_command(raw(&command)?).await.map(|_| Outcome::Nothing)
        }
        "rename" => {
            let to = take_str(&mut args, "to")?;
            let drop_target = take_bool(&mut args, "dropTarget")?;
            no_more(name, &args)?;
            let mut command = doc! {
                "renameCollection": format!("{}.{}", database.name(), collection.name()),
                "to": format!("{}.{to}", database.name()),
            };
            if let Some(drop_target) = drop_target {
                command.insert("dropTarget", drop_target);
            }
            client
                .database("admin")
                .run_command(raw(&command)?)
                .await
                .map(|_| Outcome::Nothing)
        }
        _ => return Err(Failure::unsupported(format!("{name} on a collection"))),
    })
}

fn update_outcome(result: mongowire::protocol::crud::UpdateResult) -> Outcome {
    let mut document = doc! {
        "matchedCount": count(result.matched_count),
        "modifiedCount": count(result.modified_count),
        "upsertedCount": i64::from(result.upserted_id.is_some()),
    };
    if let Some(id) = result.upserted_id.and_then(|id| Bson::try_from(id).ok()) {
        document.insert("upsertedId", id);
    }
    Outcome::Value(Bson::Document(document))
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn document_outcome(reply: &RawDocumentBuf) -> Result<Outcome, Error> {
    Document::try_from(reply.as_ref())
        .map(|reply| Outcome::Value(Bson::Document(reply)))
        .map_err(|e| Error::usage(format!("reply: {e}")))
}

fn pipeline(args: &mut Document) -> Result<Vec<RawDocumentBuf>, Failure> {
    let Some(Bson::Array(stages)) = args.remove("pipeline") else {
        return Err(Failure::failed("createChangeStream: pipeline must be an array"));
    };
    stages
        .iter()
        .map(|stage| match stage {
            Bson::Document(stage) => raw(stage),
            other => Err(Failure::failed(format!("pipeline stage {}", show(other)))),
        })
        .collect()
}

/// The options of `watch`, by their names in the Change Streams specification.
fn change_stream_options(args: &mut Document) -> Result<ChangeStreamOptions, Failure> {
    let mut options = ChangeStreamOptions::default();
    if let Some(value) = take_string_option(args, "fullDocument")? {
        options.full_document = Some(FullDocument::from_name(&value));
    }
    if let Some(value) = take_string_option(args, "fullDocumentBeforeChange")? {
        options.full_document_before_change = Some(FullDocumentBeforeChange::from_name(&value));
    }
    if let Some(token) = take_document_option(args, "resumeAfter")? {
        options.resume_after = Some(raw(&token)?);
    }
    if let Some(token) = take_document_option(args, "startAfter")? {
        options.start_after = Some(raw(&token)?);
    }
    match args.remove("startAtOperationTime") {
        None => {}
        Some(Bson::Timestamp(time)) => options.start_at_operation_time = Some(time),
        Some(other) => return Err(Failure::failed(format!("startAtOperationTime {}", show(&other)))),
    }
    if let Some(n) = take_integer(args, "batchSize")? {
        options.batch_size = Some(u32::try_from(n).map_err(|_| Failure::failed(format!("batchSize {n}")))?);
    }
    if let Some(ms) = take_integer(args, "maxAwaitTimeMS")? {
        let ms = u64::try_from(ms).map_err(|_| Failure::failed(format!("maxAwaitTimeMS {ms}")))?;
        options.max_await_time = Some(Duration::from_millis(ms));
    }
    if let Some(collation) = take_document_option(args, "collation")? {
        options.collation = Some(raw(&collation)?);
    }
    if let Some(comment) = args.remove("comment") {
        options.comment = Some(RawBson::try_from(comment).map_err(|e| Failure::failed(format!("comment: {e}")))?);
    }
    options.show_expanded_events = take_bool(args, "showExpandedEvents")?;
    Ok(options)
}

/// Checks an error against an `expectedError`.
fn check_error(expected: &Document, error: &Error) -> Result<(), Failure> {
    let server = error.as_server_error();
    let fail = |what: String| Err(Failure::failed(format!("{what}; the error was: {error}")));
    for (key, value) in expected {
        match (key.as_str(), value) {
            ("isError", Bson::Boolean(true)) => {}
            // A client error is anything not derived from a server reply (network errors included).
            ("isClientError", Bson::Boolean(client_side)) => {
                if server.is_none() != *client_side {
                    return fail(format!("expected isClientError: {client_side}"));
                }
            }
            ("errorContains", Bson::String(text)) => {
                if !error.to_string().to_lowercase().contains(&text.to_lowercase()) {
                    return fail(format!("expected the message to contain {text:?}"));
                }
            }
            ("errorCode", code) => {
                let wanted = integer(code).ok_or_else(|| Failure::failed(format!("errorCode {}", show(code))))?;
                if server.map(|s| i64::from(s.code)) != Some(wanted) {
                    return fail(format!("expected a server error with code {wanted}"));
                }
            }
            ("errorCodeName", Bson::String(name)) => {
                if !server.is_some_and(|s| s.code_name.eq_ignore_ascii_case(name)) {
                    return fail(format!("expected a server error named {name}"));
                }
            }
            ("errorLabelsContain" | "errorLabelsOmit", Bson::Array(labels)) => {
                let must_have = key == "errorLabelsContain";
                for label in labels {
                    let label = label
                        .as_str()
                        .ok_or_else(|| Failure::failed(format!("label {}", show(label))))?;
                    if error.has_label(label) != must_have {
                        let verb = if must_have { "lacks" } else { "has" };
                        return fail(format!("the error {verb} the label {label}"));
                    }
                }
            }
            ("errorResponse", response) => {
                let reply = server
                    .map(|s| Document::try_from(s.reply.as_ref()))
                    .transpose()
                    .map_err(|e| Failure::failed(format!("error reply: {e}")))?
                    .map(Bson::Document);
                match_root(response, reply.as_ref()).map_err(|failure| prefix(failure, "errorResponse"))?;
            }
            (
                "isError" | "isClientError" | "errorContains" | "errorCodeName" | "errorLabelsContain"
                | "errorLabelsOmit",
                _,
            ) => return Err(Failure::failed(format!("expectError {key}: bad value {}", show(value)))),
            (other, _) => return Err(Failure::unsupported(format!("expectError {other}"))),
        }
    }
    Ok(())
}

/// A whole number given as int32, int64 or an integral double.
fn integer(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        #[allow(clippy::cast_possible_truncation)]
        Bson::Double(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Some(*n as i64),
        _ => None,
    }
}

pub(crate) fn raw(document: &Document) -> Result<RawDocumentBuf, Failure> {
    RawDocumentBuf::try_from(document).map_err(|e| Failure::failed(format!("not valid BSON: {e}")))
}

/// Arguments left over: the format requires an error. A failure, not a skip: the argument may
/// be an option mongowire lacks.
fn no_more(operation: &str, args: &Document) -> Result<(), Failure> {
    match args.keys().next() {
        Some(key) => Err(Failure::failed(format!("unsupported argument {key} of {operation}"))),
        None => Ok(()),
    }
}

fn take_document(args: &mut Document, key: &str) -> Result<Document, Failure> {
    take_document_option(args, key)?.ok_or_else(|| Failure::failed(format!("{key} is required")))
}

fn take_document_option(args: &mut Document, key: &str) -> Result<Option<Document>, Failure> {
    match args.remove(key) {
        None => Ok(None),
        Some(Bson::Document(document)) => Ok(Some(document)),
        Some(other) => Err(Failure::failed(format!(
            "{key} must be a document, not {}",
            show(&other)
        ))),
    }
}

fn take_string_option(args: &mut Document, key: &str) -> Result<Option<String>, Failure> {
    match args.remove(key) {
        None => Ok(None),
        Some(Bson::String(value)) => Ok(Some(value)),
        Some(other) => Err(Failure::failed(format!("{key} must be a string, not {}", show(&other)))),
    }
}

fn take_bool(args: &mut Document, key: &str) -> Result<Option<bool>, Failure> {
    match args.remove(key) {
        None => Ok(None),
        Some(Bson::Boolean(value)) => Ok(Some(value)),
        Some(other) => Err(Failure::failed(format!(
            "{key} must be a boolean, not {}",
            show(&other)
        ))),
    }
}

fn take_integer(args: &mut Document, key: &str) -> Result<Option<i64>, Failure> {
    match args.remove(key) {
        None => Ok(None),
        Some(value) => integer(&value)
            .map(Some)
            .ok_or_else(|| Failure::failed(format!("{key} must be a whole number, not {}", show(&value)))),
    }
}
