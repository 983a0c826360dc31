//! A stand-in for the Supervisor's services API on a local port: answers `GET /services/mqtt` with a fixed
//! status and body, and records each request's path and Authorization header. [`Supervisor::start_as_host`]
//! serves on port 80 of a loopback address of its own, so an image can reach it as `http://supervisor` (its
//! /etc/hosts names that address), exactly the URL an add-on uses.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// One request the fake Supervisor received: path and bearer token.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub path: String,
    pub authorization: String,
}

pub struct Supervisor {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Request>>>,
}

impl Supervisor {
    /// Serves `status` with the JSON `body` to every request, until the test process ends.
    pub fn start(status: u16, body: serde_json::Value) -> Supervisor {
        Self::serve(TcpListener::bind("127.0.0.1:0").unwrap(), status, body)
    }

    /// As [`Supervisor::start`], on port 80 of a free address 127.x.y.z (needs root); returns the address too.
    pub fn start_as_host(status: u16, body: serde_json::Value) -> (Supervisor, std::net::Ipv4Addr) {
        let seed = std::process::id() as u64
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
        for i in 0..50u64 {
            let n = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(i * 1442695040888963407);
            let ip = std::net::Ipv4Addr::new(
                127,
                100 + (n >> 40) as u8 % 100,
                (n >> 24) as u8,
                2 + (n >> 8) as u8 % 250,
            );
            if let Ok(l) = TcpListener::bind((ip, 80)) {
                return (Self::serve(l, status, body), ip);
            }
        }
        panic!("no free 127.x.y.z:80 for the stand-in Supervisor (is this test running as root?)");
    }

    fn serve(listener: TcpListener, status: u16, body: serde_json::Value) -> Supervisor {
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut authorization = String::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        if k.eq_ignore_ascii_case("authorization") {
                            authorization = v.trim().to_string();
                        }
                    }
                }
                seen.lock().unwrap().push(Request {
                    path: path.clone(),
                    authorization,
                });
                let (status, body) = if path == "/services/mqtt" {
                    (status, body.to_string())
                } else {
                    (
                        404,
                        r#"{"result":"error","message":"not found"}"#.to_string(),
                    )
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Supervisor { url, requests }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}
