//! Envelope encryption of personal data (DESIGN §6.2).
//!
//! A master key wraps one random data key per owner (an inquiry); personal values are sealed
//! with AES-256-GCM under that data key, with the owner id and the purpose as associated data so
//! a ciphertext cannot be moved to another row. Deleting the wrapped data key shreds everything
//! sealed under it.

use std::{fs, io::Write, path::Path};

use aes_gcm::{
    Aes256Gcm, Key, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::StoreError;

const FORMAT_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;

#[derive(Debug, Error)]
pub enum MasterKeyError {
    #[error("the master key must be 32 bytes encoded in base64")]
    Malformed,
    #[error("cannot read or create the master key file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

/// The key-encryption key. Never printed: its `Debug` is redacted.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

impl MasterKey {
    pub fn from_base64(encoded: &str) -> Result<Self, MasterKeyError> {
        let bytes = Zeroizing::new(
            BASE64
                .decode(encoded.trim())
                .map_err(|_| MasterKeyError::Malformed)?,
        );
        let key: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| MasterKeyError::Malformed)?;
        Ok(Self(Zeroizing::new(key)))
    }

    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rand::fill(&mut key[..]);
        Self(key)
    }

    /// Loads the key file, or creates it (mode 0600) with a fresh random key on first run.
    pub fn load_or_create(path: &Path) -> Result<Self, MasterKeyError> {
        let file_error = |source| MasterKeyError::File {
            path: path.display().to_string(),
            source,
        };
        match fs::read_to_string(path) {
            Ok(contents) => Self::from_base64(&contents),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                let mut options = fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut file = options.open(path).map_err(file_error)?;
                file.write_all(BASE64.encode(&key.0[..]).as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(file_error)?;
                Ok(key)
            }
            Err(e) => Err(file_error(e)),
        }
    }
}

/// A per-owner data key, unwrapped in memory only while it is used.
pub struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(***)")
    }
}

impl DataKey {
    /// Seals `plaintext`; `context` binds the ciphertext to its place (owner id, purpose).
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, StoreError> {
        seal_with(&self.0, plaintext, context)
    }

    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, StoreError> {
        open_with(&self.0, sealed, context)
    }
}

/// Wraps and unwraps data keys with the master key.
#[derive(Debug, Clone)]
pub struct Crypto {
    master: MasterKey,
}

impl Crypto {
    pub fn new(master: MasterKey) -> Self {
        Self { master }
    }

    /// A fresh data key for `owner_id`, and its wrapped form to store.
    pub fn new_data_key(&self, owner_id: &str) -> Result<(DataKey, Vec<u8>), StoreError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rand::fill(&mut key[..]);
        let wrapped = seal_with(&self.master.0, &key[..], &wrap_context(owner_id))?;
        Ok((DataKey(key), wrapped))
    }

    pub fn unwrap_data_key(&self, owner_id: &str, wrapped: &[u8]) -> Result<DataKey, StoreError> {
        let bytes = Zeroizing::new(open_with(&self.master.0, wrapped, &wrap_context(owner_id))?);
        let key: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Crypto("unwrapped data key has the wrong length".into()))?;
        Ok(DataKey(Zeroizing::new(key)))
    }

    /// Seals data that belongs to no inquiry (e.g. stored idempotent responses) directly under
    /// the master key.
    pub fn seal_system(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, StoreError> {
        seal_with(&self.master.0, plaintext, &format!("system:{context}"))
    }

    pub fn open_system(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, StoreError> {
        open_with(&self.master.0, sealed, &format!("system:{context}"))
    }
}

impl Crypto {
    /// An HMAC-SHA256 tag over `message` for `purpose` (signed URLs, CSRF tokens), keyed by the
    /// master key: valid on every node that shares the key, and only there.
    pub fn sign(&self, purpose: &str, message: &[u8]) -> Vec<u8> {
        use hmac::{KeyInit, Mac};
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&self.master.0[..])
            .expect("HMAC takes keys of any length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }

    /// Checks a tag made by [`Crypto::sign`], in constant time.
    pub fn verify(&self, purpose: &str, message: &[u8], tag: &[u8]) -> bool {
        use hmac::{KeyInit, Mac};
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&self.master.0[..])
            .expect("HMAC takes keys of any length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(message);
        mac.verify_slice(tag).is_ok()
    }
}

fn wrap_context(owner_id: &str) -> String {
    format!("data-key:{owner_id}")
}

fn cipher(key: &[u8; KEY_LEN]) -> Aes256Gcm {
    Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key))
}

fn seal_with(key: &[u8; KEY_LEN], plaintext: &[u8], context: &str) -> Result<Vec<u8>, StoreError> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::fill(&mut nonce[..]);
    let ciphertext = cipher(key)
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: context.as_bytes(),
            },
        )
        .map_err(|_| StoreError::Crypto("encryption failed".into()))?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

fn open_with(key: &[u8; KEY_LEN], sealed: &[u8], context: &str) -> Result<Vec<u8>, StoreError> {
    let (version, rest) = sealed
        .split_first()
        .ok_or_else(|| StoreError::Crypto("empty ciphertext".into()))?;
    if *version != FORMAT_VERSION || rest.len() < NONCE_LEN {
        return Err(StoreError::Crypto("unknown ciphertext format".into()));
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| StoreError::Crypto("bad nonce".into()))?;
    cipher(key)
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: ciphertext,
                aad: context.as_bytes(),
            },
        )
        .map_err(|_| StoreError::Crypto("decryption failed (wrong key or tampered data)".into()))
}

/// A new secret for people to copy: `<prefix>_` and 32 random bytes in base58.
pub fn random_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes[..]);
    format!("{prefix}_{}", bs58::encode(bytes).into_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn sealed_data_round_trips_and_is_bound_to_its_context(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let crypto = Crypto::new(MasterKey::generate());
            let (key, wrapped) = crypto.new_data_key("inq_a").unwrap();
            let sealed = key.seal(&data, "inq_a:fields").unwrap();
            let again = crypto.unwrap_data_key("inq_a", &wrapped).unwrap();
            prop_assert_eq!(again.open(&sealed, "inq_a:fields").unwrap(), data);
            prop_assert!(again.open(&sealed, "inq_b:fields").is_err());
            prop_assert!(crypto.unwrap_data_key("inq_b", &wrapped).is_err());
        }
    }

    #[test]
    fn signatures_verify_only_for_their_purpose_and_message() {
        let crypto = Crypto::new(MasterKey::generate());
        let tag = crypto.sign("file-url", b"file_1|100");
        assert!(crypto.verify("file-url", b"file_1|100", &tag));
        assert!(!crypto.verify("file-url", b"file_1|101", &tag));
        assert!(!crypto.verify("csrf", b"file_1|100", &tag));
        assert!(!Crypto::new(MasterKey::generate()).verify("file-url", b"file_1|100", &tag));
    }

    #[test]
    fn tampering_is_detected() {
        let crypto = Crypto::new(MasterKey::generate());
        let (key, _) = crypto.new_data_key("o").unwrap();
        let mut sealed = key.seal(b"Jane", "c").unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(key.open(&sealed, "c").is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let first = MasterKey::load_or_create(&path).unwrap();
        let second = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(first.0[..], second.0[..]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
    }
}
