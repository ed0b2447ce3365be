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
        "the master key does not match this database: its data is sealed under key id {found}, \
         the configured keys are {configured}: start with the key it was created with, or add \
         it with --previous-master-key-file while a rotation is unfinished"
    )]
    Mismatch { found: String, configured: String },
    #[error(
        "the master key does not match this database: {what} is sealed under a key that none of \
         the configured keys ({configured}) is: start with that key as the current key, or add it \
         with --previous-master-key-file while a rotation is unfinished"
    )]
    SecretUnopened { what: String, configured: String },
    #[error(
        "the previous master key file {path} does not exist: restore it, or leave it out of the \
         configuration once `idshare admin master-key status` shows no data under it"
    )]
    PreviousMissing { path: String },
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

/// A master key's name: the first 6 bytes of an HMAC-SHA256 under the key, in hex. It tells
/// which key wrapped a data key and which keys a server holds, and reveals nothing of the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MasterKeyId(String);

impl MasterKeyId {
    /// An id read back from the database.
    pub(crate) fn from_stored(id: String) -> Self {
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for MasterKeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How many bytes of the HMAC name a key: 48 bits tell a handful of keys apart.
const KEY_ID_LEN: usize = 6;

impl MasterKey {
    pub fn id(&self) -> MasterKeyId {
        use hmac::{KeyInit, Mac};
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&self.0[..])
            .expect("HMAC takes keys of any length");
        mac.update(b"master-key-id\0");
        MasterKeyId(hex::encode(&mac.finalize().into_bytes()[..KEY_ID_LEN]))
    }
}

/// A configured master key and its id.
#[derive(Debug, Clone)]
struct KeyEntry {
    key: MasterKey,
    id: MasterKeyId,
}

impl KeyEntry {
    fn new(key: MasterKey) -> Self {
        let id = key.id();
        Self { key, id }
    }

    fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.key.0
    }
}

/// A data key wrapped under the current master key, as it is stored.
#[derive(Debug)]
pub struct WrappedDataKey {
    pub bytes: Vec<u8>,
    pub key_id: MasterKeyId,
}

/// Wraps and unwraps data keys with the master keys.
///
/// The current key wraps and seals everything new and signs; previous keys (kept during and
/// after a rotation) only open what they sealed before: AES-GCM authenticates, so trying each
/// key in turn finds the one that opens. Commands that seal and open nothing (`migrate`,
/// `admin`, `lists`, `screen`) run without a master key ([`Crypto::without_key`]), so they never
/// read or create a key file: every use of the key then fails, and nothing is ever sealed under a
/// key nobody keeps.
#[derive(Debug, Clone)]
pub struct Crypto {
    current: Option<KeyEntry>,
    previous: Vec<KeyEntry>,
}

/// What the stored check value is computed over: proves which master key seals the database
/// without revealing anything about the key.
const CHECK_PURPOSE: &str = "master-key-check";

const DECRYPTION_FAILED: &str = "decryption failed (wrong key or tampered data)";

impl Crypto {
    pub fn new(master: MasterKey) -> Self {
        Self {
            current: Some(KeyEntry::new(master)),
            previous: Vec::new(),
        }
    }

    /// Adds keys that open what they sealed but seal nothing new (the current key and
    /// duplicates are skipped).
    pub fn with_previous(mut self, keys: impl IntoIterator<Item = MasterKey>) -> Self {
        for key in keys {
            let entry = KeyEntry::new(key);
            if !self.keys().any(|known| known.id == entry.id) {
                self.previous.push(entry);
            }
        }
        self
    }

    pub fn without_key() -> Self {
        Self {
            current: None,
            previous: Vec::new(),
        }
    }

    /// The id of the key everything new is sealed under (`None` without a master key).
    pub fn current_key_id(&self) -> Option<&MasterKeyId> {
        self.current.as_ref().map(|entry| &entry.id)
    }

    /// The ids of the previous keys, in the order they were configured.
    pub fn previous_key_ids(&self) -> impl Iterator<Item = &MasterKeyId> {
        self.previous.iter().map(|entry| &entry.id)
    }

    /// Whether the key with this id is configured, current or previous.
    pub fn holds(&self, id: &MasterKeyId) -> bool {
        self.keys().any(|entry| &entry.id == id)
    }

    /// The configured keys, for messages: `abc (current), def (previous)`.
    pub fn describe_keys(&self) -> String {
        let current = self.current.iter().map(|e| format!("{} (current)", e.id));
        let previous = self.previous.iter().map(|e| format!("{} (previous)", e.id));
        let all: Vec<String> = current.chain(previous).collect();
        if all.is_empty() {
            "none".to_owned()
        } else {
            all.join(", ")
        }
    }

    /// The current key, then the previous ones.
    fn keys(&self) -> impl Iterator<Item = &KeyEntry> {
        self.current.iter().chain(&self.previous)
    }

    fn current(&self) -> Result<&KeyEntry, StoreError> {
        self.current
            .as_ref()
            .ok_or_else(|| StoreError::Crypto("this command runs without the master key".into()))
    }

    /// Opens `sealed` with whichever configured key sealed it.
    fn open_any(&self, sealed: &[u8], context: &str) -> Result<(Vec<u8>, &KeyEntry), StoreError> {
        self.current()?;
        self.keys()
            .find_map(|entry| {
                open_with(entry.bytes(), sealed, context)
                    .ok()
                    .map(|plain| (plain, entry))
            })
            .ok_or_else(|| StoreError::Crypto(DECRYPTION_FAILED.into()))
    }

    /// A fresh data key for `owner_id`, and its form wrapped under the current key to store.
    pub fn new_data_key(&self, owner_id: &str) -> Result<(DataKey, WrappedDataKey), StoreError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rand::fill(&mut key[..]);
        let wrapped = self.wrap(&key, owner_id)?;
        Ok((DataKey(key), wrapped))
    }

    fn wrap(&self, key: &[u8; KEY_LEN], owner_id: &str) -> Result<WrappedDataKey, StoreError> {
        let current = self.current()?;
        Ok(WrappedDataKey {
            bytes: seal_with(current.bytes(), &key[..], &wrap_context(owner_id))?,
            key_id: current.id.clone(),
        })
    }

    pub fn unwrap_data_key(&self, owner_id: &str, wrapped: &[u8]) -> Result<DataKey, StoreError> {
        let (bytes, _) = self.open_any(wrapped, &wrap_context(owner_id))?;
        let bytes = Zeroizing::new(bytes);
        let key: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Crypto("unwrapped data key has the wrong length".into()))?;
        Ok(DataKey(Zeroizing::new(key)))
    }

    /// The data key of `owner_id` wrapped under the current key instead of the one that wrapped
    /// it (a rotation): the data sealed under the data key stays as it is.
    pub fn rewrap_data_key(
        &self,
        owner_id: &str,
        wrapped: &[u8],
    ) -> Result<WrappedDataKey, StoreError> {
        let key = self.unwrap_data_key(owner_id, wrapped)?;
        self.wrap(&key.0, owner_id)
    }

    /// Seals data that belongs to no inquiry (e.g. stored idempotent responses) directly under
    /// the current master key.
    pub fn seal_system(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, StoreError> {
        seal_with(self.current()?.bytes(), plaintext, &system_context(context))
    }

    pub fn open_system(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, StoreError> {
        self.open_any(sealed, &system_context(context))
            .map(|(plain, _)| plain)
    }

    /// `sealed` (made by [`Crypto::seal_system`]) sealed again under the current key, or `None`
    /// when it already is.
    pub fn reseal_system(
        &self,
        sealed: &[u8],
        context: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let context = system_context(context);
        let current = self.current()?;
        let (plain, entry) = self.open_any(sealed, &context)?;
        if entry.id == current.id {
            return Ok(None);
        }
        let plain = Zeroizing::new(plain);
        seal_with(current.bytes(), &plain, &context).map(Some)
    }

    /// The value stored in the database that identifies the current master key (`None`
    /// without one).
    pub(crate) fn check_value(&self) -> Option<Vec<u8>> {
        self.current.as_ref().map(check_value_of)
    }

    /// The check value of the configured key with this id.
    pub(crate) fn check_value_for(&self, id: &MasterKeyId) -> Option<Vec<u8>> {
        self.keys()
            .find(|entry| &entry.id == id)
            .map(check_value_of)
    }

    /// The configured key that made `stored` with [`Crypto::check_value`], if any.
    pub(crate) fn key_of_check_value(&self, stored: &[u8]) -> Option<&MasterKeyId> {
        use hmac::Mac;
        self.keys()
            .find(|entry| {
                mac_with(entry, CHECK_PURPOSE, &[])
                    .verify_slice(stored)
                    .is_ok()
            })
            .map(|entry| &entry.id)
    }

    /// The configured key that wraps this data key, if any.
    pub(crate) fn key_of_data_key(&self, owner_id: &str, wrapped: &[u8]) -> Option<&MasterKeyId> {
        self.open_any(wrapped, &wrap_context(owner_id))
            .ok()
            .map(|(_, entry)| &entry.id)
    }
}

impl Crypto {
    /// An HMAC-SHA256 tag over `message` for `purpose` (signed URLs, CSRF tokens), keyed by the
    /// current master key: valid on every node that shares the key, and only there. Without a
    /// master key the tag is empty, and [`Crypto::verify`] accepts no tag.
    pub fn sign(&self, purpose: &str, message: &[u8]) -> Vec<u8> {
        use hmac::Mac;
        self.current
            .as_ref()
            .map(|entry| {
                mac_with(entry, purpose, message)
                    .finalize()
                    .into_bytes()
                    .to_vec()
            })
            .unwrap_or_default()
    }

    /// Checks a tag made by [`Crypto::sign`], in constant time, under the current key or a
    /// previous one (links and forms handed out before a key change stay valid).
    pub fn verify(&self, purpose: &str, message: &[u8], tag: &[u8]) -> bool {
        use hmac::Mac;
        self.keys()
            .any(|entry| mac_with(entry, purpose, message).verify_slice(tag).is_ok())
    }
}

fn check_value_of(entry: &KeyEntry) -> Vec<u8> {
    use hmac::Mac;
    mac_with(entry, CHECK_PURPOSE, &[])
        .finalize()
        .into_bytes()
        .to_vec()
}

fn mac_with(entry: &KeyEntry, purpose: &str, message: &[u8]) -> hmac::Hmac<sha2::Sha256> {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(entry.bytes())
        .expect("HMAC takes keys of any length");
    mac.update(purpose.as_bytes());
    mac.update(&[0]);
    mac.update(message);
    mac
}

fn system_context(context: &str) -> String {
    format!("system:{context}")
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
        .map_err(|_| StoreError::Crypto(DECRYPTION_FAILED.into()))
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
            let again = crypto.unwrap_data_key("inq_a", &wrapped.bytes).unwrap();
            prop_assert_eq!(again.open(&sealed, "inq_a:fields").unwrap(), data);
            prop_assert!(again.open(&sealed, "inq_b:fields").is_err());
            prop_assert!(crypto.unwrap_data_key("inq_b", &wrapped.bytes).is_err());
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
        assert_eq!(crypto.key_of_check_value(&stored), crypto.current_key_id());
        assert!(
            Crypto::new(MasterKey::generate())
                .key_of_check_value(&stored)
                .is_none()
        );
    }

    #[test]
    fn a_key_id_names_the_key_and_reveals_nothing_of_it() {
        let key = MasterKey::generate();
        let id = key.id();
        assert_eq!(id, key.clone().id(), "the same key, the same id");
        assert_eq!(id.as_str().len(), 2 * KEY_ID_LEN);
        assert!(id.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(id, MasterKey::generate().id());
        assert!(!hex::encode(&key.0[..]).contains(id.as_str()));
        assert_eq!(
            Crypto::new(key).with_previous([]).describe_keys(),
            format!("{id} (current)")
        );
    }

    #[test]
    fn previous_keys_open_what_they_sealed_and_the_current_key_seals_everything_new() {
        let old = Crypto::new(MasterKey::generate());
        let old_key_id = old.current_key_id().unwrap().clone();
        let (data_key, wrapped) = old.new_data_key("inq_a").unwrap();
        let sealed = data_key.seal(b"Ada", "inq_a:fields").unwrap();
        let secret = old
            .seal_system(b"wbhsec_1", "whk_1:webhook-secret")
            .unwrap();
        let tag = old.sign("csrf", b"session");

        let new_key = MasterKey::generate();
        let rotating =
            Crypto::new(new_key.clone()).with_previous([old.current.clone().unwrap().key]);
        assert!(rotating.holds(&old_key_id));
        let opened = rotating.unwrap_data_key("inq_a", &wrapped.bytes).unwrap();
        assert_eq!(opened.open(&sealed, "inq_a:fields").unwrap(), b"Ada");
        assert!(rotating.verify("csrf", b"session", &tag));
        let (_, fresh) = rotating.new_data_key("inq_b").unwrap();
        assert_eq!(&fresh.key_id, rotating.current_key_id().unwrap());

        // Wrapped and sealed again, the data opens under the new key alone.
        let rewrapped = rotating.rewrap_data_key("inq_a", &wrapped.bytes).unwrap();
        assert_eq!(rewrapped.key_id, new_key.id());
        let resealed = rotating
            .reseal_system(&secret, "whk_1:webhook-secret")
            .unwrap()
            .unwrap();
        assert!(
            rotating
                .reseal_system(&resealed, "whk_1:webhook-secret")
                .unwrap()
                .is_none(),
            "already under the current key"
        );
        let new_only = Crypto::new(new_key);
        let again = new_only.unwrap_data_key("inq_a", &rewrapped.bytes).unwrap();
        assert_eq!(again.open(&sealed, "inq_a:fields").unwrap(), b"Ada");
        assert_eq!(
            new_only
                .open_system(&resealed, "whk_1:webhook-secret")
                .unwrap(),
            b"wbhsec_1"
        );
        assert!(new_only.unwrap_data_key("inq_a", &wrapped.bytes).is_err());
        assert!(
            new_only
                .open_system(&secret, "whk_1:webhook-secret")
                .is_err()
        );
        assert!(!new_only.verify("csrf", b"session", &tag));
    }
}
