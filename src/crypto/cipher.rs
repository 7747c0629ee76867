//! `ENCRYPT(mk, plaintext, associated_data)` / `DECRYPT(...)`: the Double Ratchet §5.2
//! recommended construction.
//!
//! ```text
//! enc_key (32) || auth_key (32) || iv (16) = HKDF-SHA256(salt = 0^32, ikm = mk, info = ENCRYPT_HKDF_INFO, L = 80)
//! ciphertext = AES-256-CBC(enc_key, iv, PKCS#7(plaintext))
//! output     = ciphertext || HMAC-SHA256(auth_key, associated_data || ciphertext)
//! ```
//! Because each message key is used once, the derived IV is never reused with one key.

use aes::Aes256;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::params::{
    AUTH_KEY_LEN, ENCRYPTION_KEY_LEN, ENCRYPT_HKDF_INFO, ENCRYPT_HKDF_OUTPUT_LEN,
    ENCRYPT_HKDF_SALT, IV_LEN, MAC_LEN,
};
use super::CryptoError;

/// The three values §5.2 derives from one message key. Wiped on drop.
pub(crate) struct MessageKeys(Zeroizing<[u8; ENCRYPT_HKDF_OUTPUT_LEN]>);

impl MessageKeys {
    /// HKDF-SHA256(salt = zeros, ikm = mk, info = `ENCRYPT_HKDF_INFO`) → 80 bytes.
    pub(crate) fn derive(mk: &[u8; 32]) -> Self {
        let mut okm = Zeroizing::new([0u8; ENCRYPT_HKDF_OUTPUT_LEN]);
        Hkdf::<Sha256>::new(Some(&ENCRYPT_HKDF_SALT), mk)
            .expand(ENCRYPT_HKDF_INFO, okm.as_mut())
            .expect("80 bytes is a valid HKDF-SHA256 output length");
        Self(okm)
    }

    pub(crate) fn encryption_key(&self) -> &[u8] {
        &self.0[..ENCRYPTION_KEY_LEN]
    }

    pub(crate) fn auth_key(&self) -> &[u8] {
        &self.0[ENCRYPTION_KEY_LEN..ENCRYPTION_KEY_LEN + AUTH_KEY_LEN]
    }

    pub(crate) fn iv(&self) -> &[u8] {
        &self.0[ENCRYPTION_KEY_LEN + AUTH_KEY_LEN..]
    }

    fn mac(&self, associated_data: &[u8], ciphertext: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.auth_key())
            .expect("HMAC takes any key length");
        mac.update(associated_data);
        mac.update(ciphertext);
        mac
    }
}

/// `ENCRYPT(mk, plaintext, associated_data)`: AES-256-CBC ciphertext with the HMAC appended.
pub(crate) fn encrypt(mk: &[u8; 32], plaintext: &[u8], associated_data: &[u8]) -> Vec<u8> {
    let keys = MessageKeys::derive(mk);
    let mut out = cbc::Encryptor::<Aes256>::new_from_slices(keys.encryption_key(), keys.iv())
        .expect("32-byte key, 16-byte IV")
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
    let tag = keys.mac(associated_data, &out).finalize().into_bytes();
    out.extend_from_slice(&tag);
    out
}

/// `DECRYPT(mk, ciphertext, associated_data)`: checks the HMAC in constant time before
/// touching the ciphertext (encrypt-then-MAC), then decrypts and unpads.
pub(crate) fn decrypt(
    mk: &[u8; 32],
    ciphertext: &[u8],
    associated_data: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let body_len = ciphertext
        .len()
        .checked_sub(MAC_LEN)
        .filter(|n| *n >= IV_LEN && n % IV_LEN == 0);
    let Some(body_len) = body_len else {
        return Err(CryptoError::BadLength {
            what: "ciphertext",
            expected: format!("a positive multiple of {IV_LEN} plus the {MAC_LEN}-byte MAC"),
            got: ciphertext.len(),
        });
    };
    let (body, tag) = ciphertext.split_at(body_len);
    let keys = MessageKeys::derive(mk);
    keys.mac(associated_data, body)
        .verify_slice(tag)
        .map_err(|_| CryptoError::BadMac)?;
    cbc::Decryptor::<Aes256>::new_from_slices(keys.encryption_key(), keys.iv())
        .expect("32-byte key, 16-byte IV")
        .decrypt_padded_vec_mut::<Pkcs7>(body)
        .map_err(|_| CryptoError::BadPadding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_for_every_padding_length() {
        let mk = [7u8; 32];
        for len in 0..40 {
            let pt: Vec<u8> = (0..len as u8).collect();
            let ct = encrypt(&mk, &pt, b"ad");
            assert_eq!(ct.len(), (len / 16 + 1) * 16 + MAC_LEN);
            assert_eq!(decrypt(&mk, &ct, b"ad").unwrap(), pt);
        }
    }

    #[test]
    fn any_flipped_bit_or_other_key_or_ad_is_refused() {
        let mk = [9u8; 32];
        let ct = encrypt(&mk, b"attack at dawn", b"header");
        for bit in 0..ct.len() * 8 {
            let mut bad = ct.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                decrypt(&mk, &bad, b"header"),
                Err(CryptoError::BadMac),
                "bit {bit}"
            );
        }
        assert_eq!(decrypt(&mk, &ct, b"headeR"), Err(CryptoError::BadMac));
        assert_eq!(
            decrypt(&[8u8; 32], &ct, b"header"),
            Err(CryptoError::BadMac)
        );
        for len in [0, 16, 32, 47, 49, 63, 65] {
            let got = decrypt(&mk, &vec![0u8; len], b"header");
            assert!(
                matches!(got, Err(CryptoError::BadLength { got, .. }) if got == len),
                "length {len}"
            );
        }
    }

    #[test]
    fn derived_keys_are_split_as_the_spec_says() {
        let keys = MessageKeys::derive(&[1u8; 32]);
        assert_eq!(keys.encryption_key().len(), 32);
        assert_eq!(keys.auth_key().len(), 32);
        assert_eq!(keys.iv().len(), 16);
        assert_ne!(keys.encryption_key(), keys.auth_key());
    }
}
