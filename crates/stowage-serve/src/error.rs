//! The crate's one error type.

use std::net::SocketAddr;
use std::path::PathBuf;

/// What can go wrong when starting a server. Once it runs, a failing request gets an HTTP error response
/// and a failing connection is closed; neither stops the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The address is not a loopback address and remote clients were not allowed.
    #[error(
        "{addr} is not a loopback address: serving the store to other machines must be allowed explicitly \
         (ServeConfig::allow_remote, `stowage serve --allow-remote`)"
    )]
    NotLoopback {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A certificate or key file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The certificate chain or the private key is not usable.
    #[error("TLS: {reason}")]
    Tls {
        /// What is wrong, naming the file or the PEM section.
        reason: String,
    },
    /// A setting is out of its range.
    #[error("invalid setting {name}: {reason}")]
    Config {
        /// The setting.
        name: &'static str,
        /// Why it is refused.
        reason: String,
    },
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
