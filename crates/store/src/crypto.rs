//! Envelope encryption of personal data (DESIGN §6.2).
//!
//! A master key wraps one random data key per owner (an inquiry); personal values are sealed
//! with AES-256-GCM under that data key, with the owner id and the purpose as associated data so
//! a ciphertext cannot be moved to another row. Deleting the wrapped data key shreds everything
//! sealed under it.

use std::{
    fs,
    io::{Read, Write},
    path::Path,
};

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

/// Why the master key cannot be used. Each message is one line that says what to do.
#[derive(Debug, Error)]
pub enum MasterKeyError {
    #[error("the master key must be 32 bytes encoded in base64")]
    Malformed,
    #[error("cannot read or create the master key file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the master key file {path} can be read or changed by other users (mode {mode:03o}): \
         run `chmod 600 {path}` and start again"
    )]
    Exposed { path: String, mode: u32 },
    #[error(
        "the master key file {path} does not exist, but this database holds data sealed under a \
         master key: restore that key file (or set master_key); a new key cannot open the data"
    )]
    Missing { path: String },
    #[error(
        "the master key does not match this database (its data is sealed under another key): \
         start with the key it was created with"
    )]
    Mismatch,
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

    /// Reads the key file; `None` when it does not exist. A file that other users may read or
    /// change is refused: the key may have leaked, or been replaced.
    pub fn read_file(path: &Path) -> Result<Option<Self>, MasterKeyError> {
        let file_error = |source| MasterKeyError::File {
            path: path.display().to_string(),
            source,
        };
        let mut file = match fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(file_error(e)),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = file.metadata().map_err(file_error)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(MasterKeyError::Exposed {
                    path: path.display().to_string(),
                    mode,
                });
            }
        }
        let mut contents = Zeroizing::new(String::new());
        file.read_to_string(&mut contents).map_err(file_error)?;
        Self::from_base64(&contents).map(Some)
    }

    /// Writes a fresh random key to a new file, mode 0600 (its missing parent directories
    /// 0700). Fails when the file exists.
    pub fn create_file(path: &Path) -> Result<Self, MasterKeyError> {
        let file_error = |source| MasterKeyError::File {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(parent).map_err(file_error)?;
        }
        let key = Self::generate();
        let mut file = create_private_file(path).map_err(file_error)?;
        file.write_all(BASE64.encode(&key.0[..]).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(file_error)?;
        Ok(key)
    }
}

/// Creates `dir` and its missing parents, readable only by this user (0700). An existing
/// directory is left as it is.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Creates a new file readable only by this user (0600); fails when it exists.
pub(crate) fn create_private_file(path: &Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
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
///
/// Commands that seal and open nothing (`migrate`, `admin`, `lists`, `screen`) run without the
/// master key ([`Crypto::without_key`]), so they never read or create a key file: every use of
/// the key then fails, and nothing is ever sealed under a key nobody keeps.
#[derive(Debug, Clone)]
pub struct Crypto {
    master: Option<MasterKey>,
}

/// What the stored check value is computed over: proves which master key seals the database
/// without revealing anything about the key.
const CHECK_PURPOSE: &str = "master-key-check";

impl Crypto {
    pub fn new(master: MasterKey) -> Self {
        Self {
            master: Some(master),
        }
    }

    pub fn without_key() -> Self {
        Self { master: None }
    }

    fn master(&self) -> Result<&[u8; KEY_LEN], StoreError> {
        self.master
            .as_ref()
            .map(|key| &*key.0)
            .ok_or_else(|| StoreError::Crypto("this command runs without the master key".into()))
    }

    /// A fresh data key for `owner_id`, and its wrapped form to store.
    pub fn new_data_key(&self, owner_id: &str) -> Result<(DataKey, Vec<u8>), StoreError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rand::fill(&mut key[..]);
        let wrapped = seal_with(self.master()?, &key[..], &wrap_context(owner_id))?;
        Ok((DataKey(key), wrapped))
    }

    pub fn unwrap_data_key(&self, owner_id: &str, wrapped: &[u8]) -> Result<DataKey, StoreError> {
        let bytes = Zeroizing::new(open_with(self.master()?, wrapped, &wrap_context(owner_id))?);
        let key: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Crypto("unwrapped data key has the wrong length".into()))?;
        Ok(DataKey(Zeroizing::new(key)))
    }

    /// Seals data that belongs to no inquiry (e.g. stored idempotent responses) directly under
    /// the master key.
    pub fn seal_system(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, StoreError> {
        seal_with(self.master()?, plaintext, &format!("system:{context}"))
    }

    pub fn open_system(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, StoreError> {
        open_with(self.master()?, sealed, &format!("system:{context}"))
    }

    /// The value stored in the database that identifies this master key (`None` without one).
    pub(crate) fn check_value(&self) -> Option<Vec<u8>> {
        self.master.as_ref()?;
        Some(self.sign(CHECK_PURPOSE, &[]))
    }

    /// True when `stored` was made by [`Crypto::check_value`] with this master key.
    pub(crate) fn matches_check_value(&self, stored: &[u8]) -> bool {
        self.verify(CHECK_PURPOSE, &[], stored)
    }
}

impl Crypto {
    /// An HMAC-SHA256 tag over `message` for `purpose` (signed URLs, CSRF tokens), keyed by the
    /// master key: valid on every node that shares the key, and only there. Without a master
    /// key the tag is empty, and [`Crypto::verify`] accepts no tag.
    pub fn sign(&self, purpose: &str, message: &[u8]) -> Vec<u8> {
        use hmac::Mac;
        self.mac(purpose, message)
            .map(|mac| mac.finalize().into_bytes().to_vec())
            .unwrap_or_default()
    }

    /// Checks a tag made by [`Crypto::sign`], in constant time.
    pub fn verify(&self, purpose: &str, message: &[u8], tag: &[u8]) -> bool {
        use hmac::Mac;
        self.mac(purpose, message)
            .is_some_and(|mac| mac.verify_slice(tag).is_ok())
    }

    fn mac(&self, purpose: &str, message: &[u8]) -> Option<hmac::Hmac<sha2::Sha256>> {
        use hmac::{KeyInit, Mac};
        let key = self.master.as_ref()?;
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key.0[..])
            .expect("HMAC takes keys of any length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(message);
        Some(mac)
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
        let path = dir.path().join("keys").join("master.key");
        assert!(MasterKey::read_file(&path).unwrap().is_none());
        let first = MasterKey::create_file(&path).unwrap();
        let second = MasterKey::read_file(&path).unwrap().unwrap();
        assert_eq!(first.0[..], second.0[..]);
        assert!(
            MasterKey::create_file(&path).is_err(),
            "an existing key is never replaced"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_other_users_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        MasterKey::create_file(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let error = MasterKey::read_file(&path).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");
        assert!(!error.contains('\n'), "one line: {error}");
    }

    #[test]
    fn without_a_master_key_nothing_is_sealed_or_signed() {
        let crypto = Crypto::without_key();
        assert!(crypto.new_data_key("inq_a").is_err());
        assert!(crypto.seal_system(b"x", "c").is_err());
        assert!(crypto.sign("csrf", b"m").is_empty());
        assert!(!crypto.verify("csrf", b"m", &[]));
        assert!(crypto.check_value().is_none());
    }

    #[test]
    fn the_check_value_identifies_the_master_key() {
        let crypto = Crypto::new(MasterKey::generate());
        let stored = crypto.check_value().unwrap();
        assert!(crypto.matches_check_value(&stored));
        assert!(!Crypto::new(MasterKey::generate()).matches_check_value(&stored));
    }
}
