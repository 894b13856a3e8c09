//! Starting an `edge-host` process from tests (feature `test-support`).

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `edge-host` process; killed on drop.
pub struct HostProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl HostProcess {
    /// Starts `binary` on port 0 and waits for its "listening" log line.
    /// `Err` carries the exit status and stderr when it refuses to start.
    pub fn start(
        binary: &Path,
        manifest: &Path,
        wit: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self, String> {
        let mut child = Command::new(binary)
            .arg("--manifest")
            .arg(manifest)
            .arg("--wit")
            .arg(wit)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        // Drain both pipes for the host's whole life so its logging never blocks.
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let (found, listening) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if let Ok(log) = serde_json::from_str::<serde_json::Value>(&line)
                    && log["message"] == "edge host listening"
                    && let Some(addr) = log["addr"].as_str().and_then(|a| a.parse::<SocketAddr>().ok())
                {
                    let _ = found.send(addr);
                }
            }
        });
        let stderr = BufReader::new(child.stderr.take().expect("piped"));
        let errors =
            std::thread::spawn(move || stderr.lines().map_while(Result::ok).collect::<Vec<_>>().join("\n"));
        match listening.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => Ok(Self { child, addr }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().map_err(|e| e.to_string())?;
                Err(format!("{status}\n{}", errors.join().unwrap_or_default()))
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
