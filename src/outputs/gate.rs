//! The gate output: carries out grants on the gates' ESPHome boards.
//!
//! It takes [`ServiceEvent::Decision`]s from the bus and starts each grant's actions at once in a task of its
//! own (tracked, so shutdown can wait for it); the drivers' outcomes go back on the bus as
//! [`ServiceEvent::Outcome`] for the audit log and Home Assistant. Nothing else is awaited on the way from the
//! decision to the board: a locked database or a slow broker cannot delay an unlock.
//!
//! Stopping ([`GateOutput::stop`]): decisions already on the bus are still started, in-flight actions finish
//! or are dropped at their deadline (2 s to send, 3 s to confirm), then every board connection is closed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Bus, CameraId, DecisionId, ServiceEvent};
use crate::decide::{Decision, Verdict};
use crate::esphome::{Client, GateActuator};

/// How long closing a board connection may take before it is abandoned.
const CLOSE_LIMIT: Duration = Duration::from_secs(2);

/// The running gate output.
pub struct GateOutput {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

struct Gates {
    actuators: HashMap<String, GateActuator>,
    bus: Bus,
    inflight: TaskTracker,
}

impl GateOutput {
    /// Starts listening; `actuators` by gate name, `clients` every board connection (closed at the end).
    pub fn start(
        actuators: HashMap<String, GateActuator>,
        clients: Vec<Client>,
        bus: Bus,
        events: broadcast::Receiver<ServiceEvent>,
    ) -> GateOutput {
        let stop = CancellationToken::new();
        let gates = Gates {
            actuators,
            bus,
            inflight: TaskTracker::new(),
        };
        let task = tokio::spawn(run(gates, clients, events, stop.clone()));
        GateOutput { stop, task }
    }

    /// Starts what is already on the bus, waits for the in-flight actions, closes the boards' connections.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn run(
    gates: Gates,
    clients: Vec<Client>,
    mut events: broadcast::Receiver<ServiceEvent>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            biased;
            ev = events.recv() => match ev {
                Ok(ev) => gates.on_event(ev),
                Err(RecvError::Lagged(n)) => tracing::error!(
                    missed = n,
                    "gate output fell behind the service's events; grants among them were not actuated \
                     (they would have been past their deadline)"
                ),
                Err(RecvError::Closed) => break,
            },
            _ = stop.cancelled() => {
                loop {
                    match events.try_recv() {
                        Ok(ev) => gates.on_event(ev),
                        Err(TryRecvError::Lagged(_)) => continue,
                        Err(_) => break,
                    }
                }
                break;
            }
        }
    }
    gates.inflight.close();
    gates.inflight.wait().await;
    let n = clients.len();
    for c in clients {
        if tokio::time::timeout(CLOSE_LIMIT, c.disconnect())
            .await
            .is_err()
        {
            tracing::warn!("an ESPHome board did not take the goodbye in time; closing anyway");
        }
    }
    if n > 0 {
        tracing::info!(boards = n, "ESPHome board connections closed");
    }
}

impl Gates {
    fn on_event(&self, ev: ServiceEvent) {
        if let ServiceEvent::Decision {
            camera,
            id,
            decision,
            ..
        } = ev
        {
            self.actuate(camera, id, decision);
        }
    }

    /// Starts a grant's actions on its gate's drivers; other verdicts never actuate.
    fn actuate(&self, camera: CameraId, id: DecisionId, d: Arc<Decision>) {
        if !matches!(&d.verdict, Verdict::Granted { actions } if !actions.is_empty()) {
            return;
        }
        let Some(actuator) = self.actuators.get(&d.gate).cloned() else {
            return;
        };
        let bus = self.bus.clone();
        self.inflight.spawn(async move {
            let outcomes = actuator.act(&d).await;
            bus.send(ServiceEvent::Outcome {
                camera,
                id,
                decision: d,
                outcomes,
            });
        });
    }
}
