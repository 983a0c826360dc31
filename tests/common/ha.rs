//! A real mosquitto and a real Home Assistant (2024.3.3 or 2026.2.3, see [`HaVersion`]) for integration tests,
//! set up headlessly through HA's public APIs (../shared/TESTBED.md): a private broker on a free port, a minimal `configuration.yaml` (no
//! `default_config`), `hass --skip-pip`, onboarding user -> `/auth/token` -> websocket long-lived token -> MQTT
//! config entry, then HA's birth message `homeassistant/status` = `online`. Helpers read states
//! (`GET /api/states`), call services, fetch image entities and subscribe to events over the websocket.
//!
//! Missing mosquitto or HA is a failure, never a skip (`scripts/setup-ha.sh` installs both, and
//! `scripts/setup-ha-current.sh` the current HA). Child processes
//! are spawned from one thread that lives as long as the test process with `PR_SET_PDEATHSIG`, so a shared
//! instance (a `static`, never dropped) dies with the test binary instead of outliving it.
#![allow(dead_code)]

use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub use super::ha_version::HaVersion;

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `cmd` so that it is killed when the test process ends (PR_SET_PDEATHSIG fires when the spawning
/// *thread* exits, so all children come from one thread that never does).
pub fn spawn_guarded(mut cmd: Command) -> Child {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::spawn(move || {
            for (mut cmd, reply) in rx {
                use std::os::unix::process::CommandExt;
                // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
                unsafe {
                    cmd.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        Ok(())
                    });
                }
                let _ = reply.send(cmd.spawn());
            }
            // The sender lives in a static: this loop never ends, so the thread outlives every child.
        });
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    cmd.stdin(Stdio::null());
    tx.lock().unwrap().send((cmd, reply_tx)).unwrap();
    reply_rx.recv().unwrap().expect("spawn")
}

/// Waits until something accepts TCP connections on `port`.
pub fn wait_port(port: u16, timeout: Duration) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("nothing listens on port {port} after {timeout:?}");
}

/// Sends SIGTERM and waits (up to `grace`) for the child to exit, then kills it.
pub fn stop_child(child: &mut Child, grace: Duration) {
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let end = Instant::now() + grace;
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A private mosquitto: password auth (user `facegate`, password [`Broker::PASSWORD`]), no persistence, so a
/// restart loses every retained message, as a real broker restart without a persistence file does.
pub struct Broker {
    pub port: u16,
    pub tls: bool,
    pub dir: tempfile::TempDir,
    child: Mutex<Option<Child>>,
}

impl Broker {
    pub const USER: &'static str = "facegate";
    pub const PASSWORD: &'static str = "s3cret";

    pub fn start() -> Broker {
        Self::start_with(false)
    }

    /// A broker whose only listener is TLS, with a certificate for 127.0.0.1 signed by `ca.crt` in its dir
    /// (`other-ca.crt` there is an unrelated CA, for wrong-CA tests).
    pub fn start_tls() -> Broker {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let pw = dir.path().join("passwd");
        let ok = Command::new("mosquitto_passwd")
            .args(["-c", "-b"])
            .arg(&pw)
            .args([Self::USER, Self::PASSWORD])
            .status()
            .expect("mosquitto_passwd missing: run scripts/setup-ha.sh");
        assert!(ok.success());
        let conf = dir.path().join("mosquitto.conf");
        let text = format!(
            "user root\npersistence false\nlistener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
            pw.display()
        );
        let text = if tls {
            make_certs(dir.path());
            let d = dir.path().display();
            format!("{text}cafile {d}/ca.crt\ncertfile {d}/server.crt\nkeyfile {d}/server.key\n")
        } else {
            text
        };
        std::fs::write(&conf, text).unwrap();
        let broker = Broker {
            port,
            tls,
            dir,
            child: Mutex::new(None),
        };
        broker.start_process();
        broker
    }

    fn start_process(&self) {
        let log = std::fs::File::create(self.dir.path().join("mosquitto.log")).unwrap();
        let mut cmd = Command::new("mosquitto");
        cmd.arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = spawn_guarded(cmd);
        wait_port(self.port, Duration::from_secs(5));
        *self.child.lock().unwrap() = Some(child);
    }

    /// Stops the broker (clients see the connection drop; retained messages are lost).
    pub fn stop(&self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Makes mosquitto re-read its password file (SIGHUP).
    pub fn reload(&self) {
        if let Some(c) = self.child.lock().unwrap().as_ref() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGHUP);
            }
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&self) {
        self.stop();
        self.start_process();
    }

    /// A sync MQTT client logged in as the test user.
    pub fn client(&self, id: &str) -> (rumqttc::Client, rumqttc::Connection) {
        let mut o = rumqttc::MqttOptions::new(id, "127.0.0.1", self.port);
        o.set_credentials(Self::USER, Self::PASSWORD);
        o.set_max_packet_size(1 << 22, 1 << 22);
        if self.tls {
            let cfg = facegate::ha::link::tls_config(&self.dir.path().join("ca.crt")).unwrap();
            o.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(std::sync::Arc::new(cfg)),
            ));
        }
        rumqttc::Client::new(o, 64)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A test CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA (openssl, EC P-256).
fn make_certs(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for (key, crt, cn) in [
        ("ca.key", "ca.crt", "/CN=facegate test CA"),
        ("other.key", "other-ca.crt", "/CN=other CA"),
    ] {
        let mut a = vec![
            "req", "-x509", "-days", "2", "-subj", cn, "-keyout", key, "-out", crt,
        ];
        a.extend(ec);
        run(&a);
    }
    let mut a = vec![
        "req",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ];
    a.extend(ec);
    run(&a);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

/// A running Home Assistant connected to a [`Broker`] through its MQTT integration.
pub struct HomeAssistant {
    pub port: u16,
    /// Which release runs.
    pub version: HaVersion,
    /// The config dir, as seen from the test (for the current HA: inside its chroot).
    pub dir: tempfile::TempDir,
    /// Long-lived access token.
    pub token: String,
    child: Mutex<Option<Child>>,
    broker_port: u16,
}

const HA_USER: &str = "tester";
const HA_PASSWORD: &str = "tester-password-1";

impl HomeAssistant {
    /// Starts the HA `FACEGATE_HA` names (default 2024.3.3), see [`HomeAssistant::start_version`].
    pub fn start(broker: &Broker) -> HomeAssistant {
        Self::start_version(broker, HaVersion::from_env())
    }

    /// Starts HA `version` on a free port with a fresh config dir, onboards it and sets up MQTT with `broker`.
    /// Returns once HA has announced itself `online` on `homeassistant/status`.
    pub fn start_version(broker: &Broker, version: HaVersion) -> HomeAssistant {
        version.check_installed();
        let dir = version.config_dir();
        let port = free_port();
        std::fs::write(dir.path().join("configuration.yaml"), config_yaml(port)).unwrap();
        let mut ha = HomeAssistant {
            port,
            version,
            dir,
            token: String::new(),
            child: Mutex::new(None),
            broker_port: broker.port,
        };
        let birth = BirthWatch::new(broker);
        ha.start_process();
        ha.token = ha.onboard();
        ha.add_mqtt(broker);
        birth.wait(Duration::from_secs(60));
        ha
    }

    fn start_process(&self) {
        let log = std::fs::File::create(self.dir.path().join("hass.out")).unwrap();
        let mut cmd = self.version.hass(self.dir.path());
        cmd.stdout(log.try_clone().unwrap()).stderr(log);
        *self.child.lock().unwrap() = Some(spawn_guarded(cmd));
        let end = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(r) = ureq::get(&self.url("/manifest.json")).call() {
                if r.status() == 200 {
                    break;
                }
            }
            if let Ok(r) = ureq::get(&self.url("/api/onboarding")).call() {
                if r.status() == 200 {
                    break;
                }
            }
            assert!(
                Instant::now() < end,
                "Home Assistant did not answer HTTP within 90 s; log: {}",
                self.log_tail()
            );
            if let Some(Ok(Some(status))) =
                self.child.lock().unwrap().as_mut().map(|c| c.try_wait())
            {
                panic!("hass exited with {status}; log: {}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The last lines of HA's output, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("hass.out")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// HA's own log file (`home-assistant.log` in the config dir).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("home-assistant.log")).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn onboard(&self) -> String {
        let client_id = self.url("/");
        let r: Value = ureq::post(&self.url("/api/onboarding/users"))
            .send_json(
                json!({"client_id": client_id, "name": "Tester", "username": HA_USER,
                              "password": HA_PASSWORD, "language": "en"}),
            )
            .expect("onboarding user")
            .into_json()
            .unwrap();
        let code = r["auth_code"].as_str().expect("auth_code").to_string();
        let t: Value = ureq::post(&self.url("/auth/token"))
            .send_form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", &client_id),
            ])
            .expect("auth token")
            .into_json()
            .unwrap();
        let access = t["access_token"]
            .as_str()
            .expect("access_token")
            .to_string();
        let mut ws = Ws::connect(self.port, &access);
        let r = ws.call(json!({"type": "auth/long_lived_access_token",
                               "client_name": "facegate-tests", "lifespan": 365}));
        r.as_str().expect("long-lived token").to_string()
    }

    fn add_mqtt(&self, broker: &Broker) {
        let flow = self.post(
            "/api/config/config_entries/flow",
            json!({"handler": "mqtt"}),
        );
        let id = flow["flow_id"].as_str().expect("flow_id").to_string();
        let done = self.post(
            &format!("/api/config/config_entries/flow/{id}"),
            json!({"broker": "127.0.0.1", "port": broker.port,
                   "username": Broker::USER, "password": Broker::PASSWORD}),
        );
        assert_eq!(done["type"], "create_entry", "MQTT config flow: {done}");
    }

    /// Stops HA gracefully (its storage is written) and starts it again on the same config dir; returns once it
    /// is `online` again on the broker.
    pub fn restart(&self, broker: &Broker) {
        self.stop();
        let birth = BirthWatch::new(broker);
        self.start_process();
        birth.wait(Duration::from_secs(60));
    }

    pub fn stop(&self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            stop_child(&mut c, Duration::from_secs(30));
        }
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    pub fn get(&self, path: &str) -> Value {
        ureq::get(&self.url(path))
            .set("Authorization", &self.auth())
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .into_json()
            .unwrap()
    }

    pub fn post(&self, path: &str, body: Value) -> Value {
        ureq::post(&self.url(path))
            .set("Authorization", &self.auth())
            .send_json(body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
            .into_json()
            .unwrap()
    }

    /// Every entity state.
    pub fn states(&self) -> Vec<Value> {
        self.get("/api/states").as_array().unwrap().clone()
    }

    /// One entity's state object, or None when HA does not know the entity.
    pub fn state(&self, entity_id: &str) -> Option<Value> {
        match ureq::get(&self.url(&format!("/api/states/{entity_id}")))
            .set("Authorization", &self.auth())
            .call()
        {
            Ok(r) => Some(r.into_json().unwrap()),
            Err(ureq::Error::Status(404, _)) => None,
            Err(e) => panic!("GET state {entity_id}: {e}"),
        }
    }

    /// Polls `entity_id` until `pred` holds for its state object; returns it, or panics after `timeout` with
    /// the last state seen.
    pub fn wait_state(
        &self,
        entity_id: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let end = Instant::now() + timeout;
        loop {
            let s = self.state(entity_id);
            if let Some(s) = &s {
                if pred(s) {
                    return s.clone();
                }
            }
            assert!(
                Instant::now() < end,
                "{entity_id} not as expected after {timeout:?}; last: {s:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Calls a service (`POST /api/services/<domain>/<service>`).
    pub fn call_service(&self, domain: &str, service: &str, data: Value) -> Value {
        self.post(&format!("/api/services/{domain}/{service}"), data)
    }

    /// The bytes an image entity serves (`/api/image_proxy/<entity_id>`) and their content type.
    pub fn image(&self, entity_id: &str) -> (String, Vec<u8>) {
        let r = ureq::get(&self.url(&format!("/api/image_proxy/{entity_id}")))
            .set("Authorization", &self.auth())
            .call()
            .unwrap_or_else(|e| panic!("image {entity_id}: {e}"));
        let ct = r.content_type().to_string();
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut r.into_reader(), &mut bytes).unwrap();
        (ct, bytes)
    }

    /// An authenticated websocket.
    pub fn ws(&self) -> Ws {
        Ws::connect(self.port, &self.token)
    }

    /// The entity registry entries whose unique id starts with `prefix`, as (unique_id, entry).
    pub fn registry(&self, prefix: &str) -> Vec<(String, Value)> {
        let list = self
            .ws()
            .call(json!({"type": "config/entity_registry/list"}));
        list.as_array()
            .unwrap()
            .iter()
            .filter_map(|e| {
                let uid = e["unique_id"].as_str()?;
                uid.starts_with(prefix)
                    .then(|| (uid.to_string(), e.clone()))
            })
            .collect()
    }

    /// The entity id HA gave the entity with `unique_id` (waits up to `timeout` for it to appear).
    pub fn entity_id(&self, unique_id: &str, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        loop {
            if let Some((_, e)) = self
                .registry(unique_id)
                .into_iter()
                .find(|(u, _)| u == unique_id)
            {
                return e["entity_id"].as_str().unwrap().to_string();
            }
            assert!(Instant::now() < end, "no entity with unique id {unique_id}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The release HA reports (`GET /api/config`), e.g. `2026.2.3`.
    pub fn release(&self) -> String {
        self.get("/api/config")["version"]
            .as_str()
            .expect("version")
            .to_string()
    }

    /// HA's device registry.
    pub fn devices(&self) -> Vec<Value> {
        self.ws()
            .call(json!({"type": "config/device_registry/list"}))
            .as_array()
            .unwrap()
            .clone()
    }
}

impl Drop for HomeAssistant {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn config_yaml(port: u16) -> String {
    format!(
        "homeassistant:\n  name: facegate test\n  latitude: 52.37\n  longitude: 4.89\n  elevation: 0\n  \
         unit_system: metric\n  time_zone: UTC\n  currency: EUR\n  country: NL\n\
         http:\n  server_host: 127.0.0.1\n  server_port: {port}\n\
         api:\nconfig:\nonboarding:\nwebsocket_api:\nlogger:\n  default: warning\n  logs:\n    \
         homeassistant.components.mqtt: info\n"
    )
}

/// Subscribes to `homeassistant/status` before HA starts, so its birth message is not missed.
struct BirthWatch {
    rx: mpsc::Receiver<()>,
}

impl BirthWatch {
    fn new(broker: &Broker) -> BirthWatch {
        let (client, mut conn) = broker.client(&format!("birth-watch-{}", free_port()));
        client
            .subscribe("homeassistant/status", rumqttc::QoS::AtLeastOnce)
            .unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for ev in conn.iter() {
                match ev {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)))
                        if p.payload.as_ref() == b"online" =>
                    {
                        let _ = tx.send(());
                        let _ = client.disconnect();
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        BirthWatch { rx }
    }

    fn wait(self, timeout: Duration) {
        self.rx
            .recv_timeout(timeout)
            .expect("Home Assistant did not publish homeassistant/status = online");
    }
}

/// HA's websocket API, authenticated.
pub struct Ws {
    socket: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
    next_id: u64,
}

impl Ws {
    pub fn connect(port: u16, token: &str) -> Ws {
        let (socket, _) = tungstenite::connect(format!("ws://127.0.0.1:{port}/api/websocket"))
            .expect("websocket");
        let mut ws = Ws { socket, next_id: 1 };
        assert_eq!(ws.recv()["type"], "auth_required");
        ws.send(json!({"type": "auth", "access_token": token}));
        let ok = ws.recv();
        assert_eq!(ok["type"], "auth_ok", "{ok}");
        ws
    }

    pub fn send(&mut self, msg: Value) {
        self.socket
            .send(tungstenite::Message::text(msg.to_string()))
            .expect("websocket send");
    }

    /// The next JSON message (blocking).
    pub fn recv(&mut self) -> Value {
        loop {
            match self.socket.read().expect("websocket read") {
                tungstenite::Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
                tungstenite::Message::Close(_) => panic!("websocket closed"),
                _ => {}
            }
        }
    }

    /// Sends a command with a fresh id and returns its `result` (panics on `success: false`).
    pub fn call(&mut self, mut msg: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        msg["id"] = json!(id);
        self.send(msg);
        loop {
            let r = self.recv();
            if r["id"] == json!(id) && r["type"] == "result" {
                assert_eq!(r["success"], true, "websocket call failed: {r}");
                return r["result"].clone();
            }
        }
    }

    /// Subscribes to HA events (`state_changed`, ...); they arrive on the returned channel, each the event
    /// object (`event_type`, `data`, `time_fired`), read by a thread that owns this socket.
    pub fn subscribe_events(mut self, event_type: &str) -> mpsc::Receiver<Value> {
        self.call(json!({"type": "subscribe_events", "event_type": event_type}));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || loop {
            let m = match self.socket.read() {
                Ok(tungstenite::Message::Text(t)) => {
                    serde_json::from_str::<Value>(t.as_str()).unwrap()
                }
                Ok(_) => continue,
                Err(_) => return,
            };
            if m["type"] == "event" && tx.send(m["event"].clone()).is_err() {
                return;
            }
        });
        rx
    }
}

/// One broker and one HA (the one `FACEGATE_HA` names) for a whole test binary (HA takes ~8 s to start):
/// tests use unique device names.
pub fn shared() -> &'static (Broker, HomeAssistant) {
    shared_version(HaVersion::from_env())
}

/// One broker and one HA `version` for a whole test binary.
pub fn shared_version(version: HaVersion) -> &'static (Broker, HomeAssistant) {
    static LEGACY: OnceLock<(Broker, HomeAssistant)> = OnceLock::new();
    static CURRENT: OnceLock<(Broker, HomeAssistant)> = OnceLock::new();
    let rig = match version {
        HaVersion::Legacy => &LEGACY,
        HaVersion::Current => &CURRENT,
    };
    rig.get_or_init(|| {
        let broker = Broker::start();
        let ha = HomeAssistant::start_version(&broker, version);
        (broker, ha)
    })
}

/// A name unique to this test process and call (HA keeps entities of earlier runs in its registry only per
/// config dir, but the broker is shared by the tests of one binary).
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix} {}{}",
        std::process::id() % 10000,
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Where a file in the test's temp dir lives.
pub fn path_in(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// Log lines of the code under test (a global tracing subscriber writing here and to stderr), so tests can
/// assert the clear log line a bad input must give.
pub struct Logs(Mutex<Vec<u8>>);

impl Logs {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Waits until a log line contains all of `parts`; returns it.
    pub fn wait_for(&self, parts: &[&str], timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        loop {
            if let Some(l) = self
                .text()
                .lines()
                .find(|l| parts.iter().all(|p| l.contains(p)))
            {
                return l.to_string();
            }
            assert!(
                Instant::now() < end,
                "no log line with {parts:?} after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

struct LogWriter(&'static Logs);

impl io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 .0.lock().unwrap().extend_from_slice(buf);
        io::stderr().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Installs (once) the capturing subscriber and returns the log.
pub fn logs() -> &'static Logs {
    static LOGS: OnceLock<&'static Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static Logs = Box::leak(Box::new(Logs(Mutex::new(Vec::new()))));
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_ansi(false)
            .with_writer(move || LogWriter(logs))
            .try_init();
        logs
    })
}

/// The enrolled people for bridge tests without a database: a list the test changes, and the access level
/// changes HA asked for.
#[derive(Default)]
pub struct FakePeople {
    pub list: Mutex<Vec<facegate::gallery::PersonInfo>>,
}

impl FakePeople {
    pub fn with(names: &[(&str, &str)]) -> std::sync::Arc<FakePeople> {
        let list = names
            .iter()
            .map(|(n, l)| facegate::gallery::PersonInfo {
                name: n.to_string(),
                access_level: l.to_string(),
                embeddings: 1,
                created: 0,
            })
            .collect();
        std::sync::Arc::new(FakePeople {
            list: Mutex::new(list),
        })
    }

    pub fn level(&self, name: &str) -> Option<String> {
        self.list
            .lock()
            .unwrap()
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.access_level.clone())
    }
}

impl facegate::ha::bridge::People for FakePeople {
    fn people(&self) -> Result<Vec<facegate::gallery::PersonInfo>, String> {
        Ok(self.list.lock().unwrap().clone())
    }
    fn set_access_level(&self, name: &str, level: &str) -> Result<(), String> {
        let mut l = self.list.lock().unwrap();
        let p = l
            .iter_mut()
            .find(|p| p.name == name)
            .ok_or("no such person")?;
        p.access_level = level.to_string();
        Ok(())
    }
}

/// Live settings saved by the bridge, by device.
#[derive(Default)]
pub struct FakeSink(pub Mutex<Vec<(String, facegate::settings::LiveSettings)>>);

impl facegate::ha::bridge::SettingsSink for FakeSink {
    fn save(&self, device: &str, s: &facegate::settings::LiveSettings) -> Result<(), String> {
        self.0.lock().unwrap().push((device.to_string(), s.clone()));
        Ok(())
    }
}

/// MQTT options for `broker` with a base topic unique to the test, so tests sharing a broker do not mix.
pub fn mqtt_for(broker: &Broker, base: &str) -> facegate::config::MqttConfig {
    facegate::config::MqttConfig {
        host: "127.0.0.1".into(),
        port: broker.port,
        username: Broker::USER.into(),
        password: facegate::config::Secret::new(Broker::PASSWORD),
        base_topic: base.into(),
        ..facegate::config::MqttConfig::default()
    }
}

/// Collects messages on `filters` from `broker` for `wait` (a separate client): topic -> (payload, retain),
/// the last one per topic.
pub fn collect(
    broker: &Broker,
    filters: &[&str],
    wait: Duration,
) -> std::collections::BTreeMap<String, (Vec<u8>, bool)> {
    let (client, mut conn) = broker.client(&format!("collect-{}", free_port()));
    for f in filters {
        client.subscribe(*f, rumqttc::QoS::AtLeastOnce).unwrap();
    }
    let mut got = std::collections::BTreeMap::new();
    let end = Instant::now() + wait;
    while Instant::now() < end {
        match conn.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)))) => {
                got.insert(p.topic.clone(), (p.payload.to_vec(), p.retain));
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("collector: {e}"),
            Err(_) => break,
        }
    }
    let _ = client.disconnect();
    got
}
