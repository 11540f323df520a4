//! A query cursor: the first batch, then getMore on the same server until the cursor is
//! exhausted; killCursors when it is closed or dropped early.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_util::StreamExt;

use crate::driver::client::ClientInner;
use crate::driver::operation::{Retry, SessionSlot, Target};
use crate::error::Error;
use crate::protocol::crud::Command;
use crate::protocol::cursor::{
    Batch, CursorReply, GetMoreOptions, Namespace, get_more_command, kill_cursors_command, parse_cursor_reply,
};
use crate::protocol::sdam::SelectionCriteria;
use crate::protocol::session::ServerSession;
use crate::wire::SharedDocument;

type GetMore = Pin<Box<dyn Future<Output = (Result<CursorReply, Error>, Option<ServerSession>)> + Send>>;

/// A cursor over query results. Documents share the buffers they arrived in. Iterate with
/// [`Cursor::try_next`] or as a [`Stream`].
pub struct Cursor {
    client: Arc<ClientInner>,
    target: Target,
    ns: Namespace,
    id: i64,
    batch: Batch,
    options: GetMoreOptions,
    session: Option<ServerSession>,
    pending: Option<GetMore>,
}

impl std::fmt::Debug for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursor")
            .field("ns", &self.ns)
            .field("id", &self.id)
            .field("buffered", &self.batch.len())
            .finish()
    }
}

impl Cursor {
    pub(crate) async fn open(
        client: Arc<ClientInner>,
        command: Command,
        criteria: SelectionCriteria,
        batch_size: Option<u32>,
    ) -> Result<Cursor, Error> {
        let mut slot = SessionSlot::None;
        let result = client
            .executor
            .execute_in(command, &criteria, Retry::Read, &mut slot)
            .await;
        let session = match slot {
            SessionSlot::Implicit(session) => Some(session),
            _ => None,
        };
        let (reply, target) = match result {
            Ok(ok) => ok,
            Err(error) => {
                if let Some(session) = session {
                    client.executor.release_session(session);
                }
                return Err(error);
            }
        };
        let parsed = parse_cursor_reply(&reply.body_shared())?;
        let options = GetMoreOptions {
            batch_size,
            ..GetMoreOptions::default()
        };
        let mut cursor = Cursor {
            client,
            target,
            ns: parsed.ns,
            id: parsed.id,
            batch: parsed.batch,
            options,
            session,
            pending: None,
        };
        cursor.release_if_done();
        Ok(cursor)
    }

    /// The next document, `None` when the cursor is exhausted.
    pub async fn try_next(&mut self) -> Result<Option<SharedDocument>, Error> {
        self.next().await.transpose()
    }

    /// The server-side cursor id; 0 once the server closed it.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Closes the cursor now: kills it on the server (errors ignored) and frees its session.
    pub async fn close(mut self) {
        self.pending = None;
        if self.id != 0 {
            let id = std::mem::take(&mut self.id);
            kill(
                self.client.clone(),
                self.target.clone(),
                self.ns.clone(),
                id,
                self.session.take(),
            )
            .await;
        }
    }

    fn release_if_done(&mut self) {
        if self.id == 0
            && let Some(session) = self.session.take()
        {
            self.client.executor.release_session(session);
        }
    }

    fn get_more(&mut self) -> GetMore {
        let client = self.client.clone();
        let target = self.target.clone();
        let command = get_more_command(self.id, &self.ns, &self.options);
        let session = self.session.take();
        Box::pin(async move {
            let mut slot = match session {
                Some(session) => SessionSlot::Implicit(session),
                None => SessionSlot::None,
            };
            let result = client.executor.execute_on(&target, command, &mut slot, None).await;
            let session = match slot {
                SessionSlot::Implicit(session) => Some(session),
                _ => None,
            };
            (
                result.and_then(|reply| parse_cursor_reply(&reply.body_shared())),
                session,
            )
        })
    }
}

async fn kill(client: Arc<ClientInner>, target: Target, ns: Namespace, id: i64, session: Option<ServerSession>) {
    let mut slot = match session {
        Some(session) => SessionSlot::Implicit(session),
        None => SessionSlot::None,
    };
    let _ = client
        .executor
        .execute_on(&target, kill_cursors_command(id, &ns), &mut slot, None)
        .await;
    if let SessionSlot::Implicit(session) = slot {
        client.executor.release_session(session);
    }
}

impl Stream for Cursor {
    type Item = Result<SharedDocument, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(document) = this.batch.next() {
                return Poll::Ready(Some(Ok(document)));
            }
            if this.id == 0 {
                this.release_if_done();
                return Poll::Ready(None);
            }
            if this.pending.is_none() {
                this.pending = Some(this.get_more());
            }
            let Some(pending) = this.pending.as_mut() else { continue };
            let (result, session) = match pending.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(ready) => ready,
            };
            this.pending = None;
            this.session = session;
            match result {
                Ok(reply) => {
                    this.id = reply.id;
                    this.batch = reply.batch;
                }
                Err(error) => {
                    // A failed getMore leaves the server cursor in an unknown state; it is not
                    // continued (the server times it out, or killed it already).
                    this.id = 0;
                    this.release_if_done();
                    return Poll::Ready(Some(Err(error)));
                }
            }
        }
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        if self.id == 0 {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (client, target, ns, id, session) = (
            self.client.clone(),
            self.target.clone(),
            self.ns.clone(),
            self.id,
            self.session.take(),
        );
        runtime.spawn(kill(client, target, ns, id, session));
    }
}
