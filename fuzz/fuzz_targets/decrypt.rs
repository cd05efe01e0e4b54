#![no_main]
//! The streaming decryptor, under any chunking, gives exactly what one-shot decryption gives: the same
//! plaintext, or the same error.
//!
//! Input: a count n, then n chunk lengths (one byte each), a 16-byte key, a 16-byte IV, and the
//! ciphertext. Random ciphertext ends in valid padding often enough (a last byte of 0x01 is valid) for
//! both outcomes to be reached.

use libfuzzer_sys::fuzz_target;
use stowage_fetch::decrypt::{Decryptor, decrypt, decrypt_in_place};

fuzz_target!(|data: &[u8]| {
    let Some((&count, rest)) = data.split_first() else { return };
    let count = usize::from(count % 32);
    if rest.len() < count + 32 {
        return;
    }
    let (lengths, rest) = rest.split_at(count);
    let (key, rest) = rest.split_at(16);
    let (iv, ciphertext) = rest.split_at(16);
    let iv: [u8; 16] = iv.try_into().unwrap();

    let one_shot = decrypt(key, &iv, ciphertext);

    let mut decryptor = Decryptor::aes128(key, &iv).unwrap();
    let mut streamed = Vec::new();
    let mut remaining = ciphertext;
    for &len in lengths {
        let (chunk, tail) = remaining.split_at(usize::from(len).min(remaining.len()));
        let before = streamed.len();
        decryptor.update(chunk, &mut streamed);
        // Released plaintext is always whole blocks, and never the last block before finish.
        assert_eq!((streamed.len() - before) % 16, 0);
        remaining = tail;
    }
    decryptor.update(remaining, &mut streamed);
    assert!(streamed.len() < ciphertext.len() || ciphertext.is_empty());
    let streamed = decryptor.finish(&mut streamed).map(|()| streamed);
    assert_eq!(one_shot, streamed);

    let mut buf = ciphertext.to_vec();
    let in_place = decrypt_in_place(key, &iv, &mut buf).map(|len| buf[..len].to_vec());
    assert_eq!(one_shot, in_place);
});
