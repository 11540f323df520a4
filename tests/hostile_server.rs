//! A broken or hostile server, played by a proxy in front of the real one that sabotages one
//! getMore reply: a wrong responseTo, a length over the maximum message size, a batch that is not
//! an array, or a length that promises bytes that never come. Each must give an error (protocol,
//! or a timeout for the silent one) within the client's timeouts, close the connection it came
//! on, and leave the client usable; a change stream resumes past it and loses nothing.
#![allow(clippy::indexing_slicing)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bson::{RawBsonRef, RawDocumentBuf, rawdoc};
use bytes::{Bytes, BytesMut};
use mongowire::Error;
use mongowire::driver::Client;
use mongowire::protocol::change_stream::ChangeStreamOptions;
use mongowire::protocol::crud::FindOptions;
use mongowire::wire::{Body, DEFAULT_MAX_MESSAGE_SIZE, Message, OpMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sabotage {
    WrongResponseTo,
    LengthOverTheLimit,
    BatchNotAnArray,
    /// The header declares 100 bytes more than follow, and nothing more comes.
    LengthBeyondWhatIsSent,
}

const ALL: [Sabotage; 4] = [
    Sabotage::WrongResponseTo,
    Sabotage::LengthOverTheLimit,
    Sabotage::BatchNotAnArray,
    Sabotage::LengthBeyondWhatIsSent,
];

impl Sabotage {
    fn apply(self, reply: Bytes) -> Vec<u8> {
        let mut bytes = reply.to_vec();
        match self {
            Sabotage::WrongResponseTo => {
                let response_to = i32::from_le_bytes(bytes[8..12].try_into().unwrap());
                bytes[8..12].copy_from_slice(&(response_to + 1).to_le_bytes());
            }
            Sabotage::LengthOverTheLimit => {
                let over = i32::try_from(DEFAULT_MAX_MESSAGE_SIZE + 1).unwrap();
                bytes[0..4].copy_from_slice(&over.to_le_bytes());
            }
            Sabotage::LengthBeyondWhatIsSent => {
                let longer = i32::try_from(bytes.len() + 100).unwrap();
                bytes[0..4].copy_from_slice(&longer.to_le_bytes());
            }
            Sabotage::BatchNotAnArray => {
                let message = Message::decode(reply, DEFAULT_MAX_MESSAGE_SIZE).unwrap();
                let Body::Msg(msg) = message.body() else {
                    panic!("an OP_MSG reply")
                };
                let mut body = RawDocumentBuf::new();
                for (key, value) in msg.body().iter().map(Result::unwrap) {
                    match value {
                        RawBsonRef::Document(cursor) if key.as_str() == "cursor" => {
                            let mut broken = RawDocumentBuf::new();
                            for (key, value) in cursor.iter().map(Result::unwrap) {
                                if key.as_str() == "nextBatch" {
                                    broken.append(key, "not an array");
                                } else {
                                    broken.append(key, bson::RawBson::from(value));
                                }
                            }
                            body.append(key, broken);
                        }
                        other => body.append(key, bson::RawBson::from(other)),
                    }
                }
                let rewritten = Message::new(message.request_id(), message.response_to(), Body::Msg(OpMsg::new(body)));
                let mut out = BytesMut::new();
                rewritten.encode(&mut out).unwrap();
                bytes = out.to_vec();
            }
        }
        bytes
    }
}

/// The sabotaging proxy's shared state.
#[derive(Default)]
struct Saboteur {
    /// Set to sabotage the next getMore reply.
    armed: AtomicBool,
    sabotage: std::sync::Mutex<Option<Sabotage>>,
    /// The connection whose reply was sabotaged (connection numbers start at 1).
    sabotaged: AtomicU64,
    /// Whether the client closed that connection afterwards.
    closed_by_client: AtomicBool,
    connections: AtomicU64,
}

impl Saboteur {
    fn arm(&self, sabotage: Sabotage) {
        *self.sabotage.lock().unwrap() = Some(sabotage);
        self.closed_by_client.store(false, Ordering::SeqCst);
        self.sabotaged.store(0, Ordering::SeqCst);
        self.armed.store(true, Ordering::SeqCst);
    }
}

async fn start_saboteur(upstream: String) -> (String, Arc<Saboteur>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let saboteur = Arc::new(Saboteur::default());
    let state = saboteur.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let id = state.connections.fetch_add(1, Ordering::SeqCst) + 1;
            let server = TcpStream::connect(&upstream).await.unwrap();
            tokio::spawn(proxy_connection(id, client, server, state.clone()));
        }
    });
    (address, saboteur)
}

/// Reads whole messages from `from`; `None` at the end of the stream.
async fn read_message(from: &mut (impl AsyncReadExt + Unpin)) -> Option<Bytes> {
    let mut header = [0_u8; 4];
    from.read_exact(&mut header).await.ok()?;
    let len = usize::try_from(i32::from_le_bytes(header)).ok()?;
    let mut message = vec![0_u8; len];
    message[..4].copy_from_slice(&header);
    from.read_exact(&mut message[4..]).await.ok()?;
    Some(Bytes::from(message))
}

async fn proxy_connection(id: u64, client: TcpStream, server: TcpStream, state: Arc<Saboteur>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let get_mores = Arc::new(std::sync::Mutex::new(Vec::<i32>::new()));
    let requests = {
        let (get_mores, state) = (get_mores.clone(), state.clone());
        async move {
            while let Some(request) = read_message(&mut client_read).await {
                let message = Message::decode(request.clone(), DEFAULT_MAX_MESSAGE_SIZE).unwrap();
                if let Body::Msg(msg) = message.body()
                    && msg.command_name() == Some("getMore")
                {
                    get_mores.lock().unwrap().push(message.request_id());
                }
                if server_write.write_all(&request).await.is_err() {
                    break;
                }
            }
            if state.sabotaged.load(Ordering::SeqCst) == id {
                state.closed_by_client.store(true, Ordering::SeqCst);
            }
        }
    };
    let replies = async move {
        while let Some(reply) = read_message(&mut server_read).await {
            let response_to = i32::from_le_bytes(reply[8..12].try_into().unwrap());
            let to_get_more = get_mores.lock().unwrap().contains(&response_to);
            let bytes = if to_get_more && state.armed.swap(false, Ordering::SeqCst) {
                state.sabotaged.store(id, Ordering::SeqCst);
                let sabotage = state.sabotage.lock().unwrap().unwrap();
                sabotage.apply(reply)
            } else {
                reply.to_vec()
            };
            if client_write.write_all(&bytes).await.is_err() {
                break;
            }
        }
    };
    // The proxy never closes first: whatever closes the sabotaged connection is the client.
    tokio::join!(requests, replies);
}

fn proxied_uri(address: &str) -> String {
    format!("mongodb://{address}/?directConnection=true&socketTimeoutMS=1000")
}

fn expected_error(sabotage: Sabotage, error: &Error) -> bool {
    match sabotage {
        Sabotage::LengthBeyondWhatIsSent => matches!(error, Error::Transport(t) if t.is_timeout()),
        _ => matches!(error, Error::Protocol(_)),
    }
}

#[tokio::test]
async fn a_sabotaged_get_more_reply_fails_the_cursor_and_closes_its_connection() {
    let Some(uri) = common::single() else { return };
    let writer = Client::connect(&uri).await.unwrap();
    let db_name = common::unique_db("hostile_cursor");
    let coll = writer.database(&db_name).collection("c");
    coll.insert_many((0..10).map(|n| rawdoc! { "_id": n })).await.unwrap();
    let upstream = mongowire::protocol::uri::ConnectionString::parse(&uri).unwrap().hosts[0].to_string();
    let (address, saboteur) = start_saboteur(upstream).await;
    let client = Client::connect(&proxied_uri(&address)).await.unwrap();
    let proxied = client.database(&db_name).collection("c");
    for sabotage in ALL {
        let options = FindOptions {
            batch_size: Some(2),
            ..FindOptions::default()
        };
        let mut cursor = proxied.find(rawdoc! {}, options).await.unwrap();
        for _ in 0..2 {
            cursor.try_next().await.unwrap().expect("the first batch");
        }
        saboteur.arm(sabotage);
        let started = Instant::now();
        let error = tokio::time::timeout(Duration::from_secs(10), cursor.try_next())
            .await
            .unwrap_or_else(|_| panic!("{sabotage:?}: no answer within 10 s"))
            .expect_err("the sabotaged getMore fails");
        assert!(expected_error(sabotage, &error), "{sabotage:?}: {error:?}");
        let closed = common::eventually(Duration::from_secs(5), || async {
            saboteur.closed_by_client.load(Ordering::SeqCst)
        })
        .await;
        assert!(closed, "{sabotage:?}: the client closed the connection");
        eprintln!("{sabotage:?}: {error} after {:?}", started.elapsed());
        // The client goes on, on a new connection.
        assert!(proxied.find_one(rawdoc! { "_id": 3 }).await.unwrap().is_some());
    }
    writer.database(&db_name).drop().await.unwrap();
    client.shutdown().await;
    writer.shutdown().await;
}

#[tokio::test]
async fn a_change_stream_resumes_past_each_sabotaged_reply_and_loses_nothing() {
    let Some(uri) = common::single() else { return };
    let writer = Client::connect(&uri).await.unwrap();
    let db_name = common::unique_db("hostile_stream");
    let coll = writer.database(&db_name).collection("c");
    let upstream = mongowire::protocol::uri::ConnectionString::parse(&uri).unwrap().hosts[0].to_string();
    let (address, saboteur) = start_saboteur(upstream).await;
    let client = Client::connect(&proxied_uri(&address)).await.unwrap();
    let options = ChangeStreamOptions {
        max_await_time: Some(Duration::from_millis(200)),
        ..ChangeStreamOptions::default()
    };
    let mut stream = client
        .database(&db_name)
        .collection("c")
        .watch([], options)
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut next = 0;
    for sabotage in ALL {
        saboteur.arm(sabotage);
        coll.insert_many((next..next + 5).map(|n| rawdoc! { "_id": n }))
            .await
            .unwrap();
        next += 5;
        while seen.len() < usize::try_from(next).unwrap() {
            let event = tokio::time::timeout(Duration::from_secs(20), stream.next())
                .await
                .unwrap_or_else(|_| panic!("{sabotage:?}: events keep coming"))
                .expect("the stream stays open")
                .unwrap_or_else(|e| panic!("{sabotage:?}: the stream failed instead of resuming: {e}"));
            seen.push(event.document_key().unwrap().get_i32("_id").unwrap());
        }
        assert_ne!(saboteur.sabotaged.load(Ordering::SeqCst), 0, "{sabotage:?} happened");
        let closed = common::eventually(Duration::from_secs(5), || async {
            saboteur.closed_by_client.load(Ordering::SeqCst)
        })
        .await;
        assert!(closed, "{sabotage:?}: the client closed the connection");
    }
    assert_eq!(seen, (0..next).collect::<Vec<_>>());
    stream.close().await;
    writer.database(&db_name).drop().await.unwrap();
    client.shutdown().await;
    writer.shutdown().await;
}
