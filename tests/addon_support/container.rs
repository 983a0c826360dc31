//! Runs the built add-on image the way the Supervisor's Docker runs it, without an OCI runtime (podman run
//! cannot set rlimits in this sandbox): the image's own root file system (a podman container's writable
//! mount), its CMD under Docker's init (tini, which Docker mounts as /sbin/docker-init for `init: true`), the
//! image's environment plus the Supervisor's (SUPERVISOR_TOKEN, TZ), /data holding the Supervisor's
//! options.json, /share read-only, /etc/hosts naming `supervisor`, in private mount and PID namespaces on the
//! host network. The HEALTHCHECK command runs inside the same namespaces and root, like `docker exec`.
//! (supervisor/docker/app.py of home-assistant/supervisor 2026.08.0 for what an add-on container gets.)

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The image under test, built once per test binary by scripts/image-build.sh from the binary cargo built
/// for these tests and the models of ../shared/models (offline); the build's last line (time, size).
/// `FACEGATE_TEST_IMAGE=NAME` tests an image already built instead.
pub fn image() -> &'static (String, String) {
    static IMAGE: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    IMAGE.get_or_init(|| {
        remove_stale_containers();
        // An image built otherwise (e.g. the Dockerfile's own `compiled` stage: scripts/image-build.sh
        // --tag NAME without --binary) can be put under the same tests instead.
        if let Ok(tag) = std::env::var("FACEGATE_TEST_IMAGE") {
            return (tag.clone(), format!("using the prebuilt image {tag}"));
        }
        let tag = "localhost/facegate-addon:test".to_string();
        let out = Command::new("bash")
            .arg(super::repo().join("scripts/image-build.sh"))
            .args(["--binary", env!("CARGO_BIN_EXE_facegate"), "--models-from"])
            .arg(shared().join("models"))
            .args(["--tag", &tag])
            .output()
            .expect("run scripts/image-build.sh");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "image build failed:\n{}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("{}", stdout.trim());
        (tag, stdout.trim().to_string())
    })
}

/// Containers of earlier test runs whose process is gone (killed before their Drop ran): unmounted and removed.
fn remove_stale_containers() {
    let out = podman(&["ps", "-a", "--format", "{{.Names}}"]);
    for name in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(pid) = name
            .strip_prefix("facegate-test-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = podman(&["umount", name]);
            let _ = podman(&["rm", "-f", name]);
        }
    }
}

/// `../shared` (or `$FACEGATE_SHARED`): the models and photos.
pub fn shared() -> PathBuf {
    std::env::var_os("FACEGATE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::repo().join("../shared"))
}

pub fn podman(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(super::repo().join("scripts/podman.sh"))
        .args(args)
        .output()
        .expect("run scripts/podman.sh")
}

fn podman_ok(args: &[&str]) -> String {
    let out = podman(args);
    assert!(
        out.status.success(),
        "podman {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The image's configuration as `podman image inspect` reports it (Config.Cmd, Env, Healthcheck, Labels).
pub fn inspect(tag: &str) -> Value {
    let v: Value = serde_json::from_str(&podman_ok(&["image", "inspect", tag])).unwrap();
    v[0].clone()
}

/// How a container is started: the Supervisor's environment and what it mounts.
pub struct Launch<'a> {
    pub options: &'a Value,
    pub token: Option<&'a str>,
    pub tz: Option<&'a str>,
    /// Address `supervisor` resolves to (the stand-in's, see `Supervisor::start_as_host`).
    pub supervisor_ip: Option<std::net::Ipv4Addr>,
    /// Mounted read-only at /share.
    pub share: Option<&'a Path>,
}

/// A writable root file system of the image (a podman container's mount), removed on drop.
pub struct Rootfs {
    pub id: String,
    pub path: PathBuf,
}

impl Rootfs {
    pub fn new(tag: &str) -> Rootfs {
        let name = format!(
            "facegate-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let id = podman_ok(&["create", "--name", &name, tag]);
        let path = PathBuf::from(podman_ok(&["mount", &id]));
        Rootfs { id, path }
    }

    /// Runs a command chrooted into the file system with only `env` as its environment.
    pub fn chroot(&self, env: &[&str], args: &[&str]) -> Output {
        Command::new("chroot")
            .arg(&self.path)
            .args(["/usr/bin/env", "-i"])
            .args(env)
            .args(args)
            .output()
            .expect("chroot")
    }
}

impl Drop for Rootfs {
    fn drop(&mut self) {
        let _ = podman(&["umount", &self.id]);
        let _ = podman(&["rm", "-f", &self.id]);
    }
}

pub struct Container {
    fs: Rootfs,
    pub root: PathBuf,
    pub data: tempfile::TempDir,
    child: Child,
    /// Host pid of the container's PID 1 (tini).
    pub init_pid: i32,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
    env: Vec<String>,
}

fn children(pid: u32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(c) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(c.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
            }
        }
    }
    out
}

impl Container {
    pub fn start(tag: &str, launch: &Launch) -> Container {
        let config = inspect(tag);
        let fs = Rootfs::new(tag);
        let root = fs.path.clone();
        let id = fs.id.clone();
        // What Docker and the Supervisor put in: /data with options.json (written by the Supervisor, 0600),
        // /share, /etc/hosts, and the init binary as /sbin/docker-init.
        let data = tempfile::tempdir().unwrap();
        let options = data.path().join("options.json");
        std::fs::write(&options, launch.options.to_string()).unwrap();
        for dir in ["data", "share"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        std::fs::write(root.join("sbin/docker-init"), b"").unwrap();
        let hosts = data.path().join("hosts");
        let mut h = "127.0.0.1\tlocalhost\n".to_string();
        if let Some(ip) = launch.supervisor_ip {
            h.push_str(&format!("{ip}\tsupervisor\n"));
        }
        std::fs::write(&hosts, h).unwrap();
        let tini = ["/usr/bin/tini-static", "/usr/bin/tini"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("tini is installed (scripts/setup-image.sh)");

        // The container's environment: the image's ENV, then the Supervisor's.
        let mut env: Vec<String> = config["Config"]["Env"]
            .as_array()
            .map(|a| a.iter().map(|e| e.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        env.push(format!("HOSTNAME={}", &id[..12]));
        if let Some(t) = launch.token {
            env.push(format!("SUPERVISOR_TOKEN={t}"));
            env.push(format!("HASSIO_TOKEN={t}"));
        }
        if let Some(tz) = launch.tz {
            env.push(format!("TZ={tz}"));
        }
        let cmd: Vec<String> = config["Config"]["Cmd"]
            .as_array()
            .expect("the image has a CMD")
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();

        let script = r#"
            set -e
            r="$1"; data="$2"; hosts="$3"; tini="$4"; share="$5"; shift 5
            mount --bind "$data" "$r/data"
            [ -z "$share" ] || mount --bind -o ro "$share" "$r/share"
            mount --bind "$hosts" "$r/etc/hosts"
            mount --bind "$tini" "$r/sbin/docker-init"
            mount -t proc proc "$r/proc"
            mount --rbind /dev "$r/dev"
            exec chroot "$r" /usr/bin/env -i "$@"
        "#;
        let mut c = Command::new("unshare");
        c.args([
            "--mount",
            "--pid",
            "--fork",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
        ])
        .arg(script)
        .arg("sh")
        .arg(&root)
        .arg(data.path())
        .arg(&hosts)
        .arg(tini)
        .arg(launch.share.map(|p| p.to_path_buf()).unwrap_or_default())
        .args(&env)
        .arg("/sbin/docker-init")
        .arg("--")
        .args(&cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().expect("unshare");
        // stdout and stderr together, as the Supervisor's log shows them.
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let end = Instant::now() + Duration::from_secs(10);
        let init_pid = loop {
            if let Some(&p) = children(child.id()).first() {
                break p;
            }
            assert!(Instant::now() < end, "the container's init did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        Container {
            fs,
            root,
            data,
            child,
            init_pid,
            lines,
            seen: Vec::new(),
            env,
        }
    }

    /// Waits for a log line containing `needle`; returns it. Panics with the log so far.
    pub fn wait_line(&mut self, needle: &str, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "no log line with {needle:?} within {timeout:?}; log:\n{}",
            self.seen.join("\n")
        );
    }

    /// Waits for the container to end by itself; its exit code and the whole log.
    pub fn wait_exit(&mut self, timeout: Duration) -> (Option<i32>, Vec<String>) {
        let end = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < end,
                "the container did not stop within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(300)) {
            self.seen.push(l);
        }
        (status.code(), self.seen.clone())
    }

    /// The image's HEALTHCHECK command, run inside the container (as `docker exec` would): exit code, output.
    pub fn healthcheck(&self, test: &[String]) -> (i32, String) {
        assert_eq!(test[0], "CMD", "exec form: {test:?}");
        let out = Command::new("nsenter")
            .args([
                "-t",
                &self.init_pid.to_string(),
                "-m",
                "-p",
                "-r",
                "-w",
                "--",
            ])
            .args(["/usr/bin/env", "-i"])
            .args(&self.env)
            .args(&test[1..])
            .output()
            .expect("nsenter");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).trim().to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    /// Runs a command inside the container (its root and namespaces).
    pub fn exec(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .args([
                "-t",
                &self.init_pid.to_string(),
                "-m",
                "-p",
                "-r",
                "-w",
                "--",
            ])
            .args(["/usr/bin/env", "-i"])
            .args(&self.env)
            .args(args)
            .output()
            .expect("nsenter")
    }

    /// `docker stop`: SIGTERM to the container's PID 1, then wait up to `timeout` (the manifest's).
    pub fn stop(&mut self, timeout: Duration) -> (Option<i32>, Duration) {
        let t = Instant::now();
        // SAFETY: kill(2) on the init process this container started.
        unsafe { libc::kill(self.init_pid, libc::SIGTERM) };
        let (code, _) = self.wait_exit(timeout);
        (code, t.elapsed())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // SAFETY: kill(2) on our own processes.
            unsafe { libc::kill(self.init_pid, libc::SIGKILL) };
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Then self.fs is dropped: unmounted and removed.
        let _ = &self.fs;
    }
}
