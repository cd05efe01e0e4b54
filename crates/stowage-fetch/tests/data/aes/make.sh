#!/usr/bin/env bash
# Regenerates the AES-128-CBC fixtures with openssl: for each line of cases.txt ("name key iv length"),
# NAME.clear holds LENGTH deterministic bytes and NAME.enc is `openssl enc -aes-128-cbc` of it (PKCS#7).
# Also writes bad-padding.enc: one block encrypted without padding whose plaintext ends in 0x00, which no
# PKCS#7 decryption may accept. Run from anywhere; needs only openssl and coreutils.
set -euo pipefail
cd "$(dirname "$0")"

# Deterministic filler: AES-128-CTR keystream of zeros under a fixed key, cut to length.
filler() {
  head -c "$1" /dev/zero |
    openssl enc -aes-128-ctr -K 000102030405060708090a0b0c0d0e0f -iv 00000000000000000000000000000000
}

while read -r name key iv length; do
  case "$name" in ''|'#'*) continue ;; esac
  if [ "$name" = nist ]; then
    # NIST SP 800-38A, F.2.1: the four plaintext blocks of the CBC-AES128 example.
    printf '%s' 6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51 \
      30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710 | xxd -r -p > nist.clear
  else
    filler "$length" > "$name.clear"
  fi
  openssl enc -aes-128-cbc -K "$key" -iv "$iv" -in "$name.clear" -out "$name.enc"
done < cases.txt

printf '00112233445566778899aabbccddee00' | xxd -r -p |
  openssl enc -aes-128-cbc -nopad -K 2b7e151628aed2a6abf7158809cf4f3c -iv 000102030405060708090a0b0c0d0e0f \
    -out bad-padding.enc
