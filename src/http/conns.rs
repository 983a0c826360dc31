//! Keeping the server answerable: which connections are open, which of them are idle (no request in
//! flight), and closing idle ones so sockets that send nothing can never crowd out `/health` or ingress.
//!
//! - A connection is *busy* from the moment its request headers are complete until its response body has
//!   been sent (a live stream stays busy while it streams); otherwise it is *idle* (a fresh socket, one
//!   trickling its headers, a keep-alive connection between requests).
//! - A connection idle for [`IDLE_TIMEOUT`] is closed.
//! - At [`MAX_CONNECTIONS`] open connections, a new one evicts the connection idle the longest; only when
//!   every open connection is busy does the accept loop wait.
//! - Live streams are limited separately ([`MAX_STREAMS`], enforced by the router), so busy connections
//!   can never fill the table either.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Open connections at once (live streams included). At the limit an idle connection is closed to make
/// room; only when all are busy does a new connection wait in the accept queue.
pub const MAX_CONNECTIONS: usize = 256;
/// Live MJPEG streams at once; the next one gets 503 until one closes.
pub const MAX_STREAMS: usize = 16;
/// An idle connection (nothing sent, headers trickling in, or keep-alive between requests) is closed after
/// this long.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

struct Entry {
    /// Requests in flight (headers read, response body not finished).
    busy: usize,
    /// When the connection last became idle (or was accepted).
    idle_since: Instant,
    close: Arc<Notify>,
}

/// The open connections.
#[derive(Default)]
pub(crate) struct Tracker {
    inner: Mutex<Table>,
    /// Signalled whenever a connection closes or becomes idle (the accept loop may go on).
    changed: Notify,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    entries: HashMap<u64, Entry>,
}

impl Tracker {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Open connections.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.table().entries.len()
    }

    /// Makes room for one more connection: below the limit at once; at the limit by closing the connection
    /// idle the longest; when every connection is busy, waits until one closes or turns idle.
    pub async fn make_room(&self) {
        loop {
            let notified = self.changed.notified();
            {
                let t = self.table();
                if t.entries.len() < MAX_CONNECTIONS {
                    return;
                }
                let oldest_idle = t
                    .entries
                    .values()
                    .filter(|e| e.busy == 0)
                    .min_by_key(|e| e.idle_since);
                if let Some(e) = oldest_idle {
                    tracing::debug!(
                        open = t.entries.len(),
                        "http: closing the longest-idle connection to make room"
                    );
                    e.close.notify_one();
                }
            }
            // The closed connection deregisters itself (or a busy one finishes): look again.
            notified.await;
        }
    }

    /// Registers a new connection; dropping the guard deregisters it.
    pub fn register(self: &Arc<Self>) -> Conn {
        let close = Arc::new(Notify::new());
        let mut t = self.table();
        let id = t.next_id;
        t.next_id += 1;
        t.entries.insert(
            id,
            Entry {
                busy: 0,
                idle_since: Instant::now(),
                close: close.clone(),
            },
        );
        Conn {
            tracker: self.clone(),
            id,
            close,
        }
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut Entry)) {
        if let Some(e) = self.table().entries.get_mut(&id) {
            f(e);
        }
    }
}

/// One registered connection.
pub(crate) struct Conn {
    tracker: Arc<Tracker>,
    id: u64,
    close: Arc<Notify>,
}

impl Conn {
    /// Marks a request in flight until the returned guard is dropped (put it in the response body).
    pub fn busy(&self) -> BusyGuard {
        self.tracker.update(self.id, |e| e.busy += 1);
        BusyGuard {
            tracker: self.tracker.clone(),
            id: self.id,
        }
    }

    /// Resolves when the connection should close: idle for [`IDLE_TIMEOUT`], or evicted to make room.
    pub async fn should_close(&self) {
        loop {
            let evicted = self.close.notified();
            let deadline = {
                let t = self.tracker.table();
                match t.entries.get(&self.id) {
                    Some(e) if e.busy == 0 => Some(e.idle_since + IDLE_TIMEOUT),
                    Some(_) => None,
                    None => return,
                }
            };
            let idle_over = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    // Busy: look again in a while (busy ends are not signalled per connection).
                    None => tokio::time::sleep(IDLE_TIMEOUT / 4).await,
                }
            };
            tokio::select! {
                _ = evicted => return,
                _ = idle_over => {
                    let t = self.tracker.table();
                    if let Some(e) = t.entries.get(&self.id) {
                        if e.busy == 0 && e.idle_since.elapsed() >= IDLE_TIMEOUT {
                            return;
                        }
                    }
                }
            }
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.tracker.table().entries.remove(&self.id);
        self.tracker.changed.notify_waiters();
    }
}

/// A request in flight on a connection; dropping it makes the connection idle again.
pub(crate) struct BusyGuard {
    tracker: Arc<Tracker>,
    id: u64,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.tracker.update(self.id, |e| {
            e.busy = e.busy.saturating_sub(1);
            if e.busy == 0 {
                e.idle_since = Instant::now();
            }
        });
        self.tracker.changed.notify_waiters();
    }
}

/// A response body that keeps its connection busy until it is finished (or dropped).
pub(crate) struct Tracked<B> {
    inner: B,
    guard: Option<BusyGuard>,
}

impl<B> Tracked<B> {
    pub fn new(inner: B, guard: BusyGuard) -> Self {
        Self {
            inner,
            guard: Some(guard),
        }
    }
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(None) = r {
            this.guard = None;
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_longest_idle_connection_is_evicted_at_the_limit() {
        let t = Arc::new(Tracker::default());
        let mut conns: Vec<Conn> = (0..MAX_CONNECTIONS).map(|_| t.register()).collect();
        // Everything busy except the second connection.
        let guards: Vec<BusyGuard> = conns
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 1)
            .map(|(_, c)| c.busy())
            .collect();
        let victim = conns.remove(1);
        let evicted = tokio::spawn(async move {
            victim.should_close().await;
            drop(victim);
        });
        tokio::time::timeout(Duration::from_secs(1), t.make_room())
            .await
            .expect("room made by evicting the idle connection");
        evicted.await.unwrap();
        assert_eq!(t.len(), MAX_CONNECTIONS - 1);
        drop(guards);
    }
}
