//! A raw HTTP/1.1 client: it sees exactly the bytes the origin put on the wire, so cut bodies, lying
//! lengths and connection closes are observed as they are, not as a client library interprets them.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One response as read off the wire.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    /// Header lines, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body bytes: exactly Content-Length of them when the connection stays open, or everything until
    /// the connection closed.
    pub body: Vec<u8>,
    /// Whether the origin closed the connection after this response.
    pub closed: bool,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn content_length(&self) -> Option<usize> {
        self.header("content-length").and_then(|v| v.parse().ok())
    }
}

/// A keep-alive HTTP/1.1 connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Self { reader: BufReader::new(stream) }
    }

    /// Sends `method path` with extra header lines (each ending in \r\n) and reads the response. With
    /// `to_close`, the body is read until the connection closes, whatever Content-Length says.
    pub fn send(&mut self, method: &str, path: &str, extra: &str, to_close: bool) -> Raw {
        let request = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n");
        self.reader.get_mut().write_all(request.as_bytes()).unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("status line {line:?}"));
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (n, v) = l.split_once(':').unwrap();
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
        let mut raw = Raw { status, headers, body: Vec::new(), closed: false };
        if to_close {
            self.reader.read_to_end(&mut raw.body).unwrap();
            raw.closed = true;
        } else if method != "HEAD" {
            let len = raw.content_length().unwrap_or(0);
            raw.body.resize(len, 0);
            self.reader.read_exact(&mut raw.body).unwrap();
        }
        raw
    }

    pub fn get(&mut self, path: &str, extra: &str) -> Raw {
        self.send("GET", path, extra, false)
    }

    /// Whether the origin has closed this connection (a read returns end of file).
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0))
    }
}

/// One request on a fresh connection, read until the origin closes it or the response ends.
pub fn get(addr: SocketAddr, path: &str, extra: &str) -> Raw {
    Conn::open(addr).get(path, extra)
}

/// One request on a fresh connection, reading everything until the connection closes.
pub fn get_to_close(addr: SocketAddr, path: &str, extra: &str) -> Raw {
    Conn::open(addr).send("GET", path, extra, true)
}

/// Deterministic test bytes.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}
