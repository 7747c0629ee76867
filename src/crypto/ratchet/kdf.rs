//! The two KDF chains of the Double Ratchet (§2.2 symmetric-key ratchet, §2.3 DH ratchet),
//! with the §5.2 recommended functions.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::crypto::bytes::Secret32;
use crate::crypto::params::{
    KDF_CK_CHAIN_KEY_CONSTANT, KDF_CK_MESSAGE_KEY_CONSTANT, KDF_RK_INFO, KDF_RK_OUTPUT_LEN,
};

/// `KDF_RK(rk, dh_out)` → `(root_key, chain_key)`: HKDF-SHA256 with `rk` as salt, `dh_out` as
/// input key material and `KDF_RK_INFO`, 64 bytes split in two.
pub(crate) fn kdf_rk(rk: &Secret32, dh_out: &Secret32) -> (Secret32, Secret32) {
    let mut okm = Zeroizing::new([0u8; KDF_RK_OUTPUT_LEN]);
    Hkdf::<Sha256>::new(Some(rk.as_bytes()), dh_out.as_bytes())
        .expand(KDF_RK_INFO, okm.as_mut())
        .expect("64 bytes is a valid HKDF-SHA256 output length");
    (
        Secret32::new(okm[..32].try_into().expect("32")),
        Secret32::new(okm[32..].try_into().expect("32")),
    )
}

/// `KDF_CK(ck)` → `(chain_key, message_key)`: HMAC-SHA256 keyed with `ck` over the single
/// byte 0x02 (next chain key) and 0x01 (message key).
pub(crate) fn kdf_ck(ck: &Secret32) -> (Secret32, Secret32) {
    (
        hmac_byte(ck, KDF_CK_CHAIN_KEY_CONSTANT),
        hmac_byte(ck, KDF_CK_MESSAGE_KEY_CONSTANT),
    )
}

fn hmac_byte(key: &Secret32, input: u8) -> Secret32 {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(&[input]);
    Secret32::new(mac.finalize().into_bytes().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_and_message_keys_differ_and_advance() {
        let ck0 = Secret32::new([3u8; 32]);
        let (ck1, mk0) = kdf_ck(&ck0);
        let (ck2, mk1) = kdf_ck(&ck1);
        assert_ne!(ck1, mk0);
        assert_ne!(ck1, ck2);
        assert_ne!(mk0, mk1);
        assert_eq!(kdf_ck(&ck0).1, mk0, "deterministic");
    }

    #[test]
    fn root_kdf_splits_sixty_four_bytes() {
        let (rk, ck) = kdf_rk(&Secret32::new([1u8; 32]), &Secret32::new([2u8; 32]));
        assert_ne!(rk, ck);
        let (rk2, _) = kdf_rk(&Secret32::new([1u8; 32]), &Secret32::new([4u8; 32]));
        assert_ne!(rk, rk2);
    }
}
