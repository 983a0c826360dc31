//! Which real Home Assistant a test runs, and how to launch it.
//!
//! - [`HaVersion::Legacy`]: HA 2024.3.3, the newest release that runs on this machine's Python 3.11, in the
//!   venv made by `scripts/setup-ha.sh`.
//! - [`HaVersion::Current`]: HA 2026.2.3 on Python 3.13 in the Debian trixie chroot made by
//!   `scripts/setup-ha-current.sh`. HA there sees only the chroot, so its config dir is made under the chroot's
//!   `/tmp`; it is started in a private mount namespace that mounts `/proc` and `/dev` for it alone, so those
//!   mounts end with the process (no mount is ever left under the cache, even when a test is killed).
//!
//! The HA test binaries use [`HaVersion::from_env`] (`FACEGATE_HA=2024`, the default, or `current`), so any of
//! them can be run against either HA; `tests/ha_current.rs` always runs the current one. A missing install is a
//! failure naming the setup script, never a skip.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A Home Assistant release the tests know how to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HaVersion {
    /// 2024.3.3 in a venv on the host's Python 3.11.
    Legacy,
    /// 2026.2.3 in a trixie chroot (Python 3.13).
    Current,
}

impl HaVersion {
    /// `FACEGATE_HA`: unset or `2024` -> Legacy, `current` or `2026` -> Current; anything else is a mistake
    /// worth failing on (a typo would otherwise silently test the old HA).
    pub fn from_env() -> HaVersion {
        match std::env::var("FACEGATE_HA").as_deref() {
            Err(_) | Ok("") | Ok("2024") | Ok("2024.3") | Ok("2024.3.3") | Ok("legacy") => {
                HaVersion::Legacy
            }
            Ok("current") | Ok("2026") | Ok("2026.2") | Ok("2026.2.3") => HaVersion::Current,
            Ok(other) => panic!("FACEGATE_HA={other}: use 2024 (default) or current"),
        }
    }

    /// The exact release, as HA reports it in `GET /api/config`.
    pub fn release(self) -> &'static str {
        match self {
            HaVersion::Legacy => "2024.3.3",
            HaVersion::Current => "2026.2.3",
        }
    }

    /// Fails with the setup script to run when this HA is not installed.
    pub fn check_installed(self) {
        let (hass, script) = match self {
            HaVersion::Legacy => (ha_venv().join("bin/hass"), "scripts/setup-ha.sh"),
            HaVersion::Current => (
                current_root().join("opt/ha/bin/hass"),
                "scripts/setup-ha-current.sh",
            ),
        };
        assert!(
            hass.exists(),
            "{} missing: run {script} (Home Assistant {} tests never skip)",
            hass.display(),
            self.release()
        );
    }

    /// A fresh config dir HA can see (inside the chroot for the current HA).
    pub fn config_dir(self) -> tempfile::TempDir {
        let b = tempfile::Builder::new()
            .prefix("ha-")
            .tempdir_in(match self {
                HaVersion::Legacy => std::env::temp_dir(),
                HaVersion::Current => current_root().join("tmp"),
            });
        b.expect("HA config dir")
    }

    /// The command that runs HA on `config_dir` (a path made by [`HaVersion::config_dir`]), with `--skip-pip`
    /// (everything it loads is installed by the setup scripts; at start it would try the network).
    pub fn hass(self, config_dir: &Path) -> Command {
        match self {
            HaVersion::Legacy => {
                let mut cmd = Command::new(ha_venv().join("bin/hass"));
                cmd.arg("-c").arg(config_dir).arg("--skip-pip");
                cmd
            }
            HaVersion::Current => {
                let root = current_root();
                let inner = Path::new("/").join(
                    config_dir
                        .strip_prefix(&root)
                        .expect("config dir inside the chroot"),
                );
                // unshare, sh, chroot and env all exec: the pid the test holds (and signals) is hass itself.
                let mut cmd = Command::new("unshare");
                cmd.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
                    .arg(
                        "set -e; mount -t proc proc \"$1/proc\"; mount --rbind /dev \"$1/dev\"; \
                         exec chroot \"$1\" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
                         /opt/ha/bin/hass -c \"$2\" --skip-pip",
                    )
                    .arg("sh")
                    .arg(&root)
                    .arg(inner);
                cmd
            }
        }
    }
}

/// The Home Assistant 2024.3.3 venv made by `scripts/setup-ha.sh`.
pub fn ha_venv() -> PathBuf {
    std::env::var_os("FACEGATE_HA_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/facegate/ha-venv"))
}

/// The trixie chroot made by `scripts/setup-ha-current.sh`.
pub fn current_root() -> PathBuf {
    if let Some(p) = std::env::var_os("FACEGATE_HA_CURRENT_ROOT") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("FACEGATE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/facegate"));
    cache.join("ha-current")
}
