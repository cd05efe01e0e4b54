//! HTTP(S) fetch layer for HLS downloads, with AES-128 segment decryption.

pub mod decrypt;
