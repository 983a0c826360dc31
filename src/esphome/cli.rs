//! `facegate esphome ...`: debug commands to look at a board and drive it by hand, through the same client
//! and drivers facegate uses (so a working debug command means a working gate).

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};

use super::client::{BoardConfig, Client};
use super::driver::{LiftDriver, LockDriver, OutcomeKind};
use super::noise::Key;
use super::sim::{SimBoard, SimConfig};

/// Where the board is.
#[derive(Debug, Clone, Args)]
pub struct BoardArgs {
    /// Board host name or address.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Native API port.
    #[arg(long, default_value_t = 6053)]
    pub port: u16,
    /// API encryption key (base64, as in the board's `api: encryption: key:`); omit for plaintext boards.
    #[arg(long, env = "FACEGATE_ESPHOME_KEY")]
    pub key: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum EsphomeCommand {
    /// List the board's entities (object id, key, kind) and their current states.
    Entities(BoardArgs),
    /// Unlock a lock entity and wait for the board to confirm.
    Unlock {
        #[command(flatten)]
        board: BoardArgs,
        /// The lock's object id.
        #[arg(long, default_value = "door_lock")]
        entity: String,
    },
    /// Lock a lock entity and wait for the board to confirm.
    Lock {
        #[command(flatten)]
        board: BoardArgs,
        #[arg(long, default_value = "door_lock")]
        entity: String,
    },
    /// Call the lift to FLOOR, wait for the board to accept it and (with --wait) for the cabin to arrive.
    Lift {
        floor: i32,
        #[command(flatten)]
        board: BoardArgs,
        /// Also wait up to this many seconds for the cabin to arrive.
        #[arg(long)]
        wait: Option<u64>,
    },
    /// Run the simulated lock + lift board (for trying facegate, or HA, without hardware).
    Sim {
        #[arg(long, default_value_t = 6053)]
        port: u16,
        /// Serve Noise with this key (base64) instead of plaintext.
        #[arg(long)]
        key: Option<String>,
    },
}

/// Arguments of `facegate esphome`.
#[derive(Debug, Clone, Args)]
pub struct EsphomeArgs {
    #[command(subcommand)]
    pub command: EsphomeCommand,
}

/// Runs one `facegate esphome` command (creates its own runtime: the CLI is synchronous).
pub fn run(args: EsphomeArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run_async(args.command))
}

async fn connect(b: &BoardArgs) -> anyhow::Result<Client> {
    let key = b.key.as_deref().map(Key::from_base64).transpose()?;
    let cfg = BoardConfig::new(b.host.clone(), b.port, key);
    let client = Client::connect(cfg)
        .await
        .with_context(|| format!("connecting to {}:{}", b.host, b.port))?;
    // Let the state dump that follows the subscription arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(client)
}

fn report(json: bool, o: &super::driver::ActionOutcome) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(o)?);
    } else {
        println!(
            "{:?}: {:?} (sent after {:?} ms, confirmed after {:?} ms)",
            o.action, o.outcome, o.sent_ms, o.confirmed_ms
        );
    }
    match o.outcome {
        OutcomeKind::Confirmed => Ok(()),
        _ => anyhow::bail!("not confirmed by the board"),
    }
}

async fn run_async(cmd: EsphomeCommand) -> anyhow::Result<()> {
    match cmd {
        EsphomeCommand::Entities(b) => {
            let c = connect(&b).await?;
            let dev = c.device();
            let rows: Vec<_> = c
                .entities()
                .into_iter()
                .map(|e| (c.state(e.key), e))
                .collect();
            if b.json {
                for (s, e) in &rows {
                    println!(
                        "{}",
                        serde_json::json!({"device": dev.name, "entity": e, "state": s})
                    );
                }
            } else {
                println!(
                    "{} ({}), ESPHome {}, API {}.{}",
                    dev.name,
                    dev.friendly_name,
                    dev.esphome_version,
                    dev.api_version.0,
                    dev.api_version.1
                );
                for (s, e) in &rows {
                    println!(
                        "  {:<14} {:<16} key={:<10} {:?}",
                        format!("{:?}", e.kind),
                        e.object_id,
                        e.key,
                        s
                    );
                }
            }
            c.disconnect().await;
            Ok(())
        }
        EsphomeCommand::Unlock { board, entity } => lock_cmd(&board, &entity, false).await,
        EsphomeCommand::Lock { board, entity } => lock_cmd(&board, &entity, true).await,
        EsphomeCommand::Lift { floor, board, wait } => {
            let c = connect(&board).await?;
            let d = LiftDriver::new(c.clone(), "cli");
            let o = d.call(floor, Instant::now()).await;
            let r = report(board.json, &o);
            if let (Some(w), true) = (wait, r.is_ok()) {
                let arrived = d.wait_arrival(floor, Duration::from_secs(w)).await;
                if board.json {
                    println!(
                        "{}",
                        serde_json::json!({"floor": floor, "arrived": arrived})
                    );
                } else {
                    println!("arrived at floor {floor}: {arrived}");
                }
                if !arrived {
                    c.disconnect().await;
                    anyhow::bail!("the lift did not reach floor {floor} within {w} s");
                }
            }
            c.disconnect().await;
            r
        }
        EsphomeCommand::Sim { port, key } => {
            let key = key.as_deref().map(Key::from_base64).transpose()?;
            let sim = SimBoard::start(
                SimConfig {
                    key,
                    ..SimConfig::default()
                },
                port,
            )
            .await?;
            println!(
                "simulated lock + lift board on {} (Ctrl-C to stop)",
                sim.addr()
            );
            tokio::signal::ctrl_c().await?;
            Ok(())
        }
    }
}

async fn lock_cmd(b: &BoardArgs, entity: &str, lock: bool) -> anyhow::Result<()> {
    let c = connect(b).await?;
    let d = LockDriver::new(c.clone(), "cli", entity);
    let o = if lock {
        d.lock(Instant::now()).await
    } else {
        d.unlock(Instant::now()).await
    };
    c.disconnect().await;
    report(b.json, &o)
}
