//! A tiny HTTP/1.0 server on 127.0.0.1 for fetch tests. It can answer with
//! a good body, an error status, a body shorter than its Content-Length, or
//! a body without Content-Length, and it counts requests per path.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use qmail_fetch::Tarball;
use sha2::{Digest, Sha256, Sha512};

/// How the server answers one path.
#[derive(Clone)]
pub enum Reply {
    /// 200 with this body and a correct Content-Length.
    Body(Vec<u8>),
    /// 200 with this body, no Content-Length, connection closed at the end.
    BodyNoLength(Vec<u8>),
    /// 200 announcing `announced` bytes but sending only `body`, then closing.
    Truncated { body: Vec<u8>, announced: usize },
    /// An error status (404, 500, ...) with a short body.
    Status(u16),
    /// 302 to this Location (absolute or relative).
    Redirect(String),
    /// 200 with a correct Content-Length, then the body one byte per
    /// `pause` (a hostile or very slow server); stops when the client
    /// goes away.
    Trickle {
        body: Vec<u8>,
        pause: std::time::Duration,
    },
    /// 200 with a correct Content-Length, the body sent in two halves
    /// `pause` apart.
    Slow {
        body: Vec<u8>,
        pause: std::time::Duration,
    },
}

pub struct Server {
    pub port: u16,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl Server {
    pub fn start(routes: Vec<(&str, Reply)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let routes: HashMap<String, Reply> = routes
            .into_iter()
            .map(|(p, r)| (p.to_string(), r))
            .collect();
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let hits2 = Arc::clone(&hits);
        std::thread::spawn(move || {
            let routes = Arc::new(routes);
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (routes, hits) = (Arc::clone(&routes), Arc::clone(&hits2));
                std::thread::spawn(move || {
                    let _ = handle(stream, &routes, &hits);
                });
            }
        });
        Server { port, hits }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Number of requests received for `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    pub fn total_hits(&self) -> usize {
        self.hits.lock().unwrap().values().sum()
    }
}

fn handle(
    stream: TcpStream,
    routes: &HashMap<String, Reply>,
    hits: &Mutex<HashMap<String, usize>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    *hits.lock().unwrap().entry(path.clone()).or_insert(0) += 1;
    let mut out = stream;
    match routes.get(&path).cloned().unwrap_or(Reply::Status(404)) {
        Reply::Body(body) => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            out.write_all(&body)?;
        }
        Reply::BodyNoLength(body) => {
            write!(out, "HTTP/1.0 200 OK\r\nConnection: close\r\n\r\n")?;
            out.write_all(&body)?;
        }
        Reply::Truncated { body, announced } => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {announced}\r\nConnection: close\r\n\r\n"
            )?;
            out.write_all(&body)?;
        }
        Reply::Redirect(location) => {
            write!(
                out,
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
        }
        Reply::Trickle { body, pause } => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            for b in body {
                out.write_all(&[b])?;
                out.flush()?;
                std::thread::sleep(pause);
            }
        }
        Reply::Slow { body, pause } => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            let half = body.len() / 2;
            out.write_all(&body[..half])?;
            out.flush()?;
            std::thread::sleep(pause);
            out.write_all(&body[half..])?;
        }
        Reply::Status(code) => {
            let text = match code {
                404 => "Not Found",
                500 => "Internal Server Error",
                _ => "Error",
            };
            let body = format!("{code} {text}\n");
            write!(
                out,
                "HTTP/1.1 {code} {text}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )?;
        }
    }
    out.flush()?;
    out.shutdown(std::net::Shutdown::Both)
}

/// A URL on 127.0.0.1 where nothing listens (connection refused).
pub fn dead_url(path: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}{path}")
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Deterministic pseudo-random bytes (so archives are not trivially
/// compressible and truncation changes the digest).
pub fn payload(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 8) as u8
        })
        .collect()
}

/// A release named `name` whose expected size and digests are those of
/// `content` (computed here), with the given mirrors.
pub fn release_for(name: &str, content: &[u8], mirrors: Vec<String>) -> Tarball {
    let mirrors: Vec<&'static str> = mirrors.into_iter().map(leak).collect();
    Tarball {
        name: leak(name.to_string()),
        file_name: leak(format!("{name}-1.0.tar.gz")),
        full_name: leak(format!("{name}-1.0")),
        size: content.len() as u64,
        sha256: leak(hex::encode(Sha256::digest(content))),
        sha512: leak(hex::encode(Sha512::digest(content))),
        mirrors: Box::leak(mirrors.into_boxed_slice()),
    }
}

/// Names of the entries in `dir` (empty if `dir` does not exist).
pub fn list_dir(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            let mut v: Vec<String> = rd
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        }
        Err(_) => Vec::new(),
    }
}
