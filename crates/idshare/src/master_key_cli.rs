//! `idshare admin master-key`: a new key file, what is sealed under which key, and the rotation
//! that wraps every data key again under the current key (docs/operations.md, "Rotating the
//! master key").

use std::{num::NonZeroU32, path::PathBuf};

use anyhow::Context;
use clap::Subcommand;
use idshare_server::{app, config::Config};
use idshare_store::{
    MasterKey, MasterKeySource, MasterKeys, Store, StoreError,
    key_rotation::{self, KeyStatus, RotateOptions, RotateOutcome, RotateProgress},
};

use crate::StorageArgs;

#[derive(Debug, Subcommand)]
pub enum MasterKeyCommand {
    /// Write a new random master key to FILE (mode 0600; an existing file is never replaced)
    /// and print its key id. Nothing in the database changes: make it the current key of every
    /// server, with the old key as a previous key, then run `rotate`.
    Generate {
        /// Where to write the key, outside the data directory (e.g. /etc/idshare/master-2.key).
        file: PathBuf,
    },
    /// Show the configured keys and how many data keys and sealed values are under each key id.
    /// Changes nothing beyond what a server start records (the check value of a first key).
    Status {
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Wrap every data key under an older master key again under the current key, and seal
    /// again every value sealed under an older key, in batches while servers keep serving.
    /// Interrupted, or stopped by --max-batches, it goes on where it was when run again; once
    /// nothing is left, the previous keys are no longer needed.
    Rotate {
        /// Rows per batch, each batch its own short transaction.
        #[arg(long, default_value_t = NonZeroU32::new(500).expect("500 is not zero"))]
        batch_size: NonZeroU32,
        /// Stop after this many batches (e.g. to spread the work over quiet hours); run again
        /// to go on.
        #[arg(long)]
        max_batches: Option<u32>,
        /// Only show what would be done (the status); change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

/// The keys, as the servers are configured (the configuration file and environment apply too).
#[derive(Debug, clap::Args)]
pub struct KeyArgs {
    /// The current master key file (also IDSHARE_MASTER_KEY_FILE) [default: master.key in the
    /// data dir].
    #[arg(long)]
    master_key_file: Option<PathBuf>,
    /// A master key file from before the rotation (repeatable; also
    /// IDSHARE_PREVIOUS_MASTER_KEY_FILES, comma-separated).
    #[arg(long = "previous-master-key-file")]
    previous_master_key_files: Vec<PathBuf>,
}

/// Runs `command`; `load` reads the configuration for the given storage and key options.
pub async fn run(
    command: &MasterKeyCommand,
    load: impl FnOnce(&StorageArgs, Option<&PathBuf>, &[PathBuf]) -> anyhow::Result<Config>,
) -> anyhow::Result<()> {
    match command {
        MasterKeyCommand::Generate { file } => {
            let key = MasterKey::create_file(file)?;
            println!("{}", key.id());
            eprintln!(
                "wrote a new master key to {} (key id {}); nothing is sealed under it yet",
                file.display(),
                key.id()
            );
        }
        MasterKeyCommand::Status { keys, storage } => {
            let store = open(load(
                storage,
                keys.master_key_file.as_ref(),
                &keys.previous_master_key_files,
            )?)
            .await?;
            print_status(&key_rotation::status(&store).await?);
        }
        MasterKeyCommand::Rotate {
            batch_size,
            max_batches,
            dry_run,
            keys,
            storage,
        } => {
            let store = open(load(
                storage,
                keys.master_key_file.as_ref(),
                &keys.previous_master_key_files,
            )?)
            .await?;
            if *dry_run {
                print_status(&key_rotation::status(&store).await?);
                println!("dry run: nothing changed");
                return Ok(());
            }
            let current = store
                .crypto()
                .current_key_id()
                .map(ToString::to_string)
                .unwrap_or_default();
            let options = RotateOptions {
                batch_size: *batch_size,
                max_batches: *max_batches,
            };
            let outcome = key_rotation::rotate(&store, options, |done| {
                eprintln!("batch {}: {}", done.batches, progress(done));
            })
            .await?;
            match outcome {
                RotateOutcome::Finished(done) => println!(
                    "rotation finished: everything is sealed under key id {current} ({}); the \
                     previous keys are no longer needed",
                    progress(&done)
                ),
                RotateOutcome::Paused(done) => println!(
                    "rotation paused after {} batch{} ({}): run it again to go on",
                    done.batches,
                    if done.batches == 1 { "" } else { "es" },
                    progress(&done)
                ),
            }
        }
    }
    Ok(())
}

/// Opens the store with the configured keys, checked against the database like a server start;
/// never creates a key file (a rotation needs the keys the servers use).
async fn open(config: Config) -> anyhow::Result<Store> {
    let mut keys: MasterKeys = config.master_keys()?;
    if let MasterKeySource::File(path) = &keys.current {
        let key = MasterKey::read_file(path)?.with_context(|| {
            format!(
                "no master key file at {}: name the servers' current key with --master-key-file",
                path.display()
            )
        })?;
        keys.current = MasterKeySource::Value(key);
    }
    Store::open(
        &config.database_url(),
        false,
        keys,
        config.database_timeout(),
    )
    .await
    .map_err(|error| match error {
        StoreError::NoDatabase(path) => anyhow::anyhow!(
            "no database at {}: check --data-dir/--database-url",
            path.display()
        ),
        other => app::open_error(other),
    })
}

fn progress(done: &RotateProgress) -> String {
    format!(
        "{} data keys wrapped again, {} sealed values sealed again",
        done.data_keys, done.sealed_values
    )
}

fn print_status(status: &KeyStatus) {
    println!("current key    {}", status.current);
    for id in &status.previous {
        println!("previous key   {id}");
    }
    match &status.database_key {
        Some(id) => {
            println!("database key   {id} (the key the database was last wholly sealed under)")
        }
        None => println!("database key   not recorded yet"),
    }
    println!("data keys by key id:");
    if status.data_keys.is_empty() {
        println!("  (none)");
    }
    for (id, count) in &status.data_keys {
        let name = id.as_ref().map_or("(before key ids)", |id| id.as_str());
        let note = if id.as_ref() == Some(&status.current) {
            " (current)"
        } else {
            ""
        };
        println!("  {name}  {count}{note}");
    }
    println!(
        "sealed values under another key: {}",
        status.sealed_values_to_reseal
    );
    if status.rotated() {
        println!("nothing to rotate: the previous keys are no longer needed");
    } else {
        println!(
            "to rotate: {} data keys and {} sealed values (`idshare admin master-key rotate`)",
            status.data_keys_to_rewrap(),
            status.sealed_values_to_reseal
        );
    }
}
