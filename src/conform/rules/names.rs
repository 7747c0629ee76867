//! What an identifier says it holds. Schemas name their E2EE columns in every style
//! (`one_time_prekeys`, `oneTimePreKey`, `otpk_id`), so names are split into lower-case words
//! (at `_`, `-`, spaces and camelCase boundaries) and matched on words and on the words
//! joined, never on one schema's spelling.

/// An identifier split into lower-case words.
#[derive(Debug, Clone)]
pub(crate) struct Name {
    pub(crate) words: Vec<String>,
    /// The words joined without separators: `one_time_prekey_id` → `onetimeprekeyid`.
    pub(crate) joined: String,
}

impl Name {
    pub(crate) fn new(ident: &str) -> Name {
        let mut words = Vec::new();
        let mut cur = String::new();
        let mut prev_lower = false;
        for ch in ident.chars() {
            if !ch.is_ascii_alphanumeric() {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
                prev_lower = false;
                continue;
            }
            if ch.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = ch.is_ascii_lowercase() || ch.is_ascii_digit();
            cur.push(ch.to_ascii_lowercase());
        }
        if !cur.is_empty() {
            words.push(cur);
        }
        let joined = words.concat();
        Name { words, joined }
    }

    pub(crate) fn has_word(&self, any: &[&str]) -> bool {
        self.words.iter().any(|w| any.contains(&w.as_str()))
    }

    pub(crate) fn last_word_is(&self, any: &[&str]) -> bool {
        self.words.last().is_some_and(|w| any.contains(&w.as_str()))
    }

    /// A one-time prekey (or a set of them): `one_time_prekeys`, `oneTimePreKey`, `otpk`.
    pub(crate) fn one_time_prekey(&self) -> bool {
        ["onetimeprekey", "onetimepreke", "onetimekey"]
            .iter()
            .any(|p| self.joined.contains(p))
            || self.has_word(&["otpk", "otpks", "opk", "opks", "otk", "otks"])
    }

    /// Private or secret key material, encrypted or not (a hash of a secret is not).
    pub(crate) fn private_key(&self) -> bool {
        if self.has_word(&["hash", "hashed", "digest", "fingerprint", "id", "ids"]) {
            return false;
        }
        let keyish = self.words.iter().any(|w| w.contains("key"));
        ["privatekey", "privkey", "secretkey"]
            .iter()
            .any(|p| self.joined.contains(p))
            || (keyish && self.has_word(&["private", "priv", "secret"]))
            || (keyish && self.has_word(&["root", "chain"]))
    }

    /// Public key material or a signature: what a device publishes and peers verify.
    pub(crate) fn public_key_material(&self) -> bool {
        if self.private_key()
            || self.last_word_is(&[
                "id",
                "ids",
                "count",
                "at",
                "version",
                "type",
                "hash",
                "algorithm",
                "alg",
                "status",
                "used",
                "consumed",
                "active",
                "format",
                "length",
                "len",
            ])
        {
            return false;
        }
        [
            "publickey",
            "pubkey",
            "identitykey",
            "prekey",
            "prekeypub",
            "signature",
        ]
        .iter()
        .any(|p| self.joined.contains(p))
            || self.has_word(&["sig", "pub", "pubkey", "spk", "ik"])
    }

    /// A signed prekey's public key (not its id or its signature).
    pub(crate) fn signed_prekey(&self) -> bool {
        self.joined.contains("signedprekey") && self.public_key_material() && !self.signature()
    }

    pub(crate) fn signature(&self) -> bool {
        self.joined.contains("signature") || self.has_word(&["sig"])
    }

    /// Ciphertext: `ciphertext`, `encrypted_content`, `payload_encrypted`.
    pub(crate) fn ciphertext(&self) -> bool {
        self.joined.contains("ciphertext")
            || (self.has_word(&["encrypted", "enc", "sealed"])
                && !self.private_key()
                && self.has_word(&["content", "body", "payload", "message", "data", "text"]))
    }

    /// A plaintext message body: `content`, `body`, `text`, `plaintext`, `message_text`.
    pub(crate) fn plaintext_body(&self) -> bool {
        !self.has_word(&[
            "encrypted",
            "enc",
            "type",
            "kind",
            "hash",
            "id",
            "length",
            "format",
        ]) && (self.has_word(&["plaintext", "body", "content"])
            || self.joined == "text"
            || self.joined == "messagetext")
    }

    /// A device reference (`device_id`, `recipient_device`, `toDeviceId`).
    pub(crate) fn device(&self) -> bool {
        self.has_word(&["device", "devices"]) || self.joined.contains("device")
    }

    /// The sending side of a message (`sender_device`, `from_device_id`).
    pub(crate) fn sending_side(&self) -> bool {
        self.has_word(&["from", "sender", "source", "origin", "author"])
    }

    /// A key's id within its device (`key_id`, `prekey_id`, `keyId`).
    pub(crate) fn key_id(&self) -> bool {
        self.last_word_is(&["id"]) && self.words.iter().any(|w| w.contains("key"))
    }

    /// A message or envelope table.
    pub(crate) fn message_table(&self) -> bool {
        ["message", "envelope", "inbox", "outbox"]
            .iter()
            .any(|p| self.joined.contains(p))
    }
}

#[cfg(test)]
mod tests {
    use super::Name;

    #[test]
    fn words_split_at_separators_and_camel_case() {
        assert_eq!(
            Name::new("oneTimePreKeys").words,
            ["one", "time", "pre", "keys"]
        );
        assert_eq!(Name::new("one_time_prekey_id").joined, "onetimeprekeyid");
    }

    #[test]
    fn names_say_what_they_hold() {
        assert!(Name::new("one_time_prekeys").one_time_prekey());
        assert!(Name::new("oneTimePreKey").one_time_prekey());
        assert!(Name::new("otpk_used").one_time_prekey());
        assert!(!Name::new("signed_prekeys").one_time_prekey());
        assert!(Name::new("identity_key_private_encrypted").private_key());
        assert!(Name::new("privateKey").private_key());
        assert!(!Name::new("token_hash").private_key());
        assert!(!Name::new("secret_key_hash").private_key());
        assert!(Name::new("identity_key").public_key_material());
        assert!(Name::new("signed_prekey_sig").public_key_material());
        assert!(!Name::new("signed_prekey_id").public_key_material());
        assert!(Name::new("signed_prekey_pub").signed_prekey());
        assert!(!Name::new("signed_prekey_sig").signed_prekey());
        assert!(Name::new("encrypted_content").ciphertext());
        assert!(Name::new("content").plaintext_body());
        assert!(!Name::new("content_type").plaintext_body());
        assert!(Name::new("prekey_id").key_id());
        assert!(Name::new("recipient_device").device());
        assert!(Name::new("from_device_id").sending_side());
    }
}
