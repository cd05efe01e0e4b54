//! AES-128-CBC segment decryption: pure functions on byte slices, no IO.
