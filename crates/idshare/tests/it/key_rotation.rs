//! Master key rotation as an operator runs it (docs/operations.md, "Rotating the master key"):
//! a new key file, servers restarted with it as the current key and the old one as a previous
//! key, `idshare admin master-key rotate` in batches while a server serves reads and writes of
//! the old data, an interrupted rotation resumed, and a server started with the new key alone
//! reading everything, while the old key alone is refused at start.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{Value, json};

use idshare_store::{
    Crypto, MasterKey, MasterKeySource, MasterKeys, Store,
    key_rotation::{self, RotateOptions, RotateOutcome},
};

use crate::{
    cli::{Server, idshare, idshare_exits, refused, stdout, storage_for},
    helpers::{Backend, expect_status, spawn_app, standard_template},
};

/// `idshare admin master-key generate FILE`: the printed key id.
fn generate(file: &Path) -> String {
    let id = stdout(&idshare(
        &[
            "admin",
            "master-key",
            "generate",
            &file.display().to_string(),
        ],
        &[],
    ));
    assert_eq!(id.len(), 12, "a short fingerprint: {id}");
    id
}

fn key_flags<'a>(current: &'a str, previous: &[&'a str]) -> Vec<&'a str> {
    let mut flags = vec!["--master-key-file", current];
    for file in previous {
        flags.extend(["--previous-master-key-file", *file]);
    }
    flags
}

/// `idshare admin master-key …` with these keys; its stdout.
fn master_key(command: &[&str], keys: &[&str], storage: &[String]) -> String {
    let args = [&["admin", "master-key"][..], command, keys].concat();
    stdout(&idshare(&args, storage))
}

/// The count of data keys under `id` in the output of `status`.
fn data_keys_under(status: &str, id: &str) -> u64 {
    status
        .lines()
        .find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some(id)).then(|| words.next().unwrap().parse().unwrap())
        })
        .unwrap_or(0)
}

struct Api {
    client: reqwest::Client,
    key: String,
}

impl Api {
    async fn create_inquiry(&self, server: &Server, template: &str, name: &str) -> String {
        let created = expect_status(
            self.client
                .post(server.url("/api/v1/inquiries"))
                .bearer_auth(&self.key)
                .json(
                    &json!({"data": {"attributes": {"inquiry-template-id": template,
                    "fields": {"name-first": name, "name-last": "Lovelace"}}}}),
                )
                .send()
                .await
                .unwrap(),
            StatusCode::CREATED,
        )
        .await;
        created["data"]["id"].as_str().unwrap().to_owned()
    }

    async fn get(&self, server: &Server, path: &str) -> Value {
        expect_status(
            self.client
                .get(server.url(path))
                .bearer_auth(&self.key)
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await
    }

    /// Every inquiry reads back with its name: its data key opens.
    async fn read_all(&self, server: &Server, inquiries: &[(String, String)]) {
        for (id, name) in inquiries {
            let read = self.get(server, &format!("/api/v1/inquiries/{id}")).await;
            assert_eq!(
                read["data"]["attributes"]["fields"]["name-first"]["value"], *name,
                "{id}"
            );
        }
    }
}

async fn rotation_runs_online_resumes_and_frees_the_old_key(backend: Backend) {
    idshare_service::install_tls_provider();
    let dir = tempfile::tempdir().unwrap();
    let storage = storage_for(backend, &dir.path().join("data")).await;
    // The keys live outside the data directory, as docs/operations.md recommends.
    let keys = dir.path().join("keys");
    let old_file = keys.join("master-1.key");
    let new_file = keys.join("master-2.key");
    let old_id = generate(&old_file);
    let (old, new) = (
        old_file.display().to_string(),
        new_file.display().to_string(),
    );
    stdout(&idshare(&["migrate"], &storage));
    let org = stdout(&idshare(
        &["admin", "org", "create", "--name", "Acme"],
        &storage,
    ));
    let api = Api {
        client: reqwest::Client::new(),
        key: stdout(&idshare(
            &[
                "admin",
                "api-key",
                "create",
                "--org",
                &org,
                "--environment",
                "sandbox",
            ],
            &storage,
        )),
    };

    // Data sealed under the first key: inquiries, a webhook's secrets, a stored answer.
    let server = Server::start(&storage, &key_flags(&old, &[]));
    assert_eq!(server.started["master_key"], format!("file {old}"));
    assert_eq!(server.started["master_key_id"], old_id.as_str());
    let template = expect_status(
        api.client
            .post(server.url("/api/v1/inquiry-templates"))
            .bearer_auth(&api.key)
            .json(&json!({"data": {"attributes": standard_template("KYC")}}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let template = template["data"]["id"].as_str().unwrap().to_owned();
    let mut inquiries = vec![];
    for n in 0..6 {
        let name = format!("Ada{n}");
        inquiries.push((api.create_inquiry(&server, &template, &name).await, name));
    }
    let webhook = expect_status(
        api.client
            .post(server.url("/api/v1/webhooks"))
            .bearer_auth(&api.key)
            .json(&json!({"data": {"attributes": {
                "url": "https://hooks.example.invalid/idshare", "enabled-events": ["inquiry.approved"]}}}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let webhook = webhook["data"]["id"].as_str().unwrap().to_owned();
    let rotated_secret = expect_status(
        api.client
            .post(server.url(&format!("/api/v1/webhooks/{webhook}/rotate-secret")))
            .bearer_auth(&api.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let secrets = rotated_secret["data"]["attributes"]["secrets"].clone();
    assert_eq!(secrets.as_array().unwrap().len(), 2, "{rotated_secret}");
    let grace = json!({"data": {"attributes": {"inquiry-template-id": template,
        "fields": {"name-first": "Grace", "name-last": "Hopper"}}}});
    let replayable = |server: &Server| {
        api.client
            .post(server.url("/api/v1/inquiries"))
            .bearer_auth(&api.key)
            .header("idempotency-key", "rotation-replay")
            .json(&grace)
    };
    let stored = expect_status(
        replayable(&server).send().await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let replayed_id = stored["data"]["id"].as_str().unwrap().to_owned();
    inquiries.push((replayed_id.clone(), "Grace".to_owned()));
    assert!(server.stop().success());

    // A second key. The status names what is under which key; the new key alone is refused,
    // naming both ids.
    let new_id = generate(&new_file);
    let status = master_key(&["status"], &key_flags(&new, &[&old]), &storage);
    assert_eq!(data_keys_under(&status, &old_id), 7, "{status}");
    assert!(
        status.contains("sealed values under another key: 4"),
        "two webhook secrets, a stored answer and the inquiries' search key: {status}"
    );
    let error = refused(
        &idshare_exits(
            &[
                &["serve", "--listen", "127.0.0.1:0"][..],
                &key_flags(&new, &[]),
            ]
            .concat(),
            &storage,
            &[],
        ),
        "serve with only the new key before the rotation",
    );
    assert!(
        error.contains("does not match")
            && error.contains(&format!("sealed under key id {old_id}"))
            && error.contains(&format!("{new_id} (current)")),
        "{error}"
    );

    // Servers restarted with the new key as current and the old one as previous: old data
    // reads, new data is sealed under the new key.
    let server = Server::start(&storage, &key_flags(&new, &[&old]));
    assert_eq!(server.started["master_key_id"], new_id.as_str());
    assert_eq!(server.started["previous_master_key_ids"], old_id.as_str());
    api.read_all(&server, &inquiries).await;
    inquiries.push((
        api.create_inquiry(&server, &template, "Barbara").await,
        "Barbara".to_owned(),
    ));
    let rotate = |extra: &[&str]| {
        let keys = key_flags(&new, &[&old]);
        let args = [&["rotate"][..], extra, &keys].concat();
        idshare(&[&["admin", "master-key"][..], &args].concat(), &storage)
    };

    // Interrupted after one batch of two: half rotated, everything still reads.
    let paused = stdout(&rotate(&["--batch-size", "2", "--max-batches", "1"]));
    assert!(
        paused.contains("rotation paused after 1 batch (2 data keys wrapped again"),
        "{paused}"
    );
    let status = master_key(&["status"], &key_flags(&new, &[&old]), &storage);
    assert_eq!(data_keys_under(&status, &old_id), 5, "{status}");
    assert_eq!(data_keys_under(&status, &new_id), 3, "{status}");
    api.read_all(&server, &inquiries).await;

    // Run again to the end while the server serves reads: each one succeeds.
    let storage_for_rotation = storage.clone();
    let keys = key_flags(&new, &[&old])
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    let running = std::thread::spawn(move || {
        let args = [
            vec!["admin", "master-key", "rotate", "--batch-size", "1"],
            keys.iter().map(String::as_str).collect(),
        ]
        .concat();
        idshare(&args, &storage_for_rotation)
    });
    let mut reads_during = 0;
    while !running.is_finished() {
        api.read_all(&server, &inquiries).await;
        reads_during += 1;
    }
    let finished = stdout(&running.join().unwrap());
    assert!(
        finished.contains(&format!(
            "rotation finished: everything is sealed under key id {new_id} (5 data keys wrapped \
             again, 4 sealed values sealed again)"
        )),
        "{finished}"
    );
    assert!(reads_during > 0);
    api.read_all(&server, &inquiries).await;
    let status = master_key(&["status"], &key_flags(&new, &[&old]), &storage);
    assert_eq!(data_keys_under(&status, &new_id), 8, "{status}");
    assert_eq!(data_keys_under(&status, &old_id), 0, "{status}");
    assert!(
        status.contains("nothing to rotate: the previous keys are no longer needed"),
        "{status}"
    );

    // Idempotent: a second run finds nothing to do.
    let again = stdout(&rotate(&[]));
    assert!(
        again.contains("(0 data keys wrapped again, 0 sealed values sealed again)"),
        "{again}"
    );
    assert!(server.stop().success());

    // The new key alone opens everything: inquiries, the webhook's two secrets, the stored
    // answer (replayed, not created again).
    let server = Server::start(&storage, &key_flags(&new, &[]));
    assert_eq!(server.started["previous_master_key_ids"], "");
    api.read_all(&server, &inquiries).await;
    let read = api
        .get(&server, &format!("/api/v1/webhooks/{webhook}"))
        .await;
    assert_eq!(read["data"]["id"], webhook.as_str());
    let replay = expect_status(
        replayable(&server).send().await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(replay["data"]["id"], replayed_id.as_str());
    let rotated_again = expect_status(
        api.client
            .post(server.url(&format!("/api/v1/webhooks/{webhook}/rotate-secret")))
            .bearer_auth(&api.key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        rotated_again["data"]["attributes"]["secrets"][1]["value"], secrets[0]["value"],
        "the secret sealed under the old key, opened with the new one: {rotated_again}"
    );
    assert!(server.stop().success());

    // The old key alone no longer opens the database: refused at start, in one line.
    let error = refused(
        &idshare_exits(
            &[
                &["serve", "--listen", "127.0.0.1:0"][..],
                &key_flags(&old, &[]),
            ]
            .concat(),
            &storage,
            &[],
        ),
        "serve with only the old key after the rotation",
    );
    assert!(
        error.contains("does not match")
            && error.contains(&new_id)
            && error.contains(&format!("{old_id} (current)")),
        "{error}"
    );
}

async fn previous_keys_are_checked_and_rotation_needs_the_servers_keys(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let storage = storage_for(backend, &dir.path().join("data")).await;
    let old_file = dir.path().join("old.key");
    let new_file = dir.path().join("new.key");
    generate(&old_file);
    let new_id = generate(&new_file);
    let (old, new) = (
        old_file.display().to_string(),
        new_file.display().to_string(),
    );
    stdout(&idshare(&["migrate"], &storage));

    // `generate` never replaces a key.
    let error = refused(
        &idshare(&["admin", "master-key", "generate", &old], &[]),
        "generate over an existing key file",
    );
    assert!(error.contains(&old), "{error}");

    // A missing previous key file is an error, not a key quietly left out.
    let missing = dir.path().join("missing.key").display().to_string();
    let error = refused(
        &idshare_exits(
            &[
                &["serve", "--listen", "127.0.0.1:0"][..],
                &key_flags(&new, &[&missing]),
            ]
            .concat(),
            &storage,
            &[],
        ),
        "serve with a missing previous key file",
    );
    assert!(
        error.contains(&format!(
            "previous master key file {missing} does not exist"
        )),
        "{error}"
    );
    // The environment names previous keys too (comma-separated).
    let error = refused(
        &idshare_exits(
            &["admin", "master-key", "status", "--master-key-file", &new],
            &storage,
            &[(
                "IDSHARE_PREVIOUS_MASTER_KEY_FILES",
                &format!("{old},{missing}"),
            )],
        ),
        "status with a missing previous key file in the environment",
    );
    assert!(error.contains(&missing), "{error}");

    // Rotation reads the servers' current key: a missing one is named, never created.
    let absent = dir.path().join("absent.key").display().to_string();
    let error = refused(
        &idshare(
            &[
                "admin",
                "master-key",
                "rotate",
                "--master-key-file",
                &absent,
            ],
            &storage,
        ),
        "rotate without the current key file",
    );
    assert!(
        error.contains(&format!("no master key file at {absent}")),
        "{error}"
    );
    assert!(!Path::new(&absent).exists());

    // On a fresh database the first key is recorded, and there is nothing to rotate.
    let status = master_key(&["status"], &key_flags(&new, &[&old]), &storage);
    assert!(
        status.contains(&format!("current key    {new_id}")),
        "{status}"
    );
    let dry_run = master_key(
        &["rotate", "--dry-run"],
        &key_flags(&new, &[&old]),
        &storage,
    );
    assert!(dry_run.contains("dry run: nothing changed"), "{dry_run}");
}

/// A node that kept the old key as its current key goes on wrapping data keys under it: the
/// rotation goes over the tables again, then stops and names the key instead of recording the new
/// key as the database's; once the node is gone, a run finishes.
async fn a_node_still_sealing_under_the_old_key_stops_the_rotation(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let template = app.create_template(&tenant.sandbox).await;
    for name in ["Ada", "Grace"] {
        app.create_inquiry(&tenant.sandbox, &template, json!({"name-first": name}))
            .await;
    }
    let old = MasterKey::read_file(&app.data_dir.join("master.key"))
        .unwrap()
        .unwrap();
    let (old_id, new) = (old.id(), MasterKey::generate());
    let rotating = Store::open(
        &app.database_url,
        false,
        MasterKeys {
            current: MasterKeySource::Value(new.clone()),
            previous: vec![old.clone()],
        },
        app.state.config().database_timeout(),
    )
    .await
    .unwrap();
    let options = RotateOptions {
        batch_size: std::num::NonZeroU32::new(1).unwrap(),
        max_batches: None,
    };

    // After every batch the stale node writes a data key under the old key, each one ordered
    // before those the rotation has passed.
    let stale = Crypto::new(old.clone());
    let handle = tokio::runtime::Handle::current();
    let mut written = 0;
    let error = key_rotation::rotate(&rotating, options, |_| {
        written += 1;
        let owner = format!("aaa_{:04}", 1000 - written);
        let (_, wrapped) = stale.new_data_key(&owner).unwrap();
        let hex: String = wrapped.bytes.iter().map(|b| format!("{b:02x}")).collect();
        let bytes = match backend {
            Backend::Sqlite => format!("X'{hex}'"),
            Backend::Postgres => format!("'\\x{hex}'::bytea"),
        };
        let insert = format!(
            "INSERT INTO data_keys (owner_id, wrapped_key, key_id, created_at) \
             VALUES ('{owner}', {bytes}, '{}', 0)",
            wrapped.key_id
        );
        tokio::task::block_in_place(|| handle.block_on(app.run_sql(&[&insert])));
    })
    .await
    .unwrap_err()
    .to_string();
    assert!(
        error.contains(&format!("data keys under key id {old_id} keep appearing"))
            && error.contains(&format!("make {} the current key", new.id())),
        "{error}"
    );
    let status = key_rotation::status(&rotating).await.unwrap();
    assert_eq!(status.database_key.as_ref(), Some(&old_id), "not recorded");
    assert!(status.data_keys_to_rewrap() > 0, "{status:?}");

    // The stale node gone, a run finishes, and the new key alone opens every data key.
    let outcome = key_rotation::rotate(&rotating, options, |_| {})
        .await
        .unwrap();
    assert!(matches!(outcome, RotateOutcome::Finished(_)), "{outcome:?}");
    let status = key_rotation::status(&rotating).await.unwrap();
    assert!(status.rotated(), "{status:?}");
    rotating.close().await;
    let new_only = Store::open(
        &app.database_url,
        false,
        MasterKeySource::Value(new),
        app.state.config().database_timeout(),
    )
    .await
    .unwrap();
    assert_eq!(
        key_rotation::status(&new_only).await.unwrap().data_keys,
        [(
            Some(new_only.crypto().current_key_id().unwrap().clone()),
            2 + written
        )]
    );
    new_only.close().await;
}

/// A webhook secret sealed under a key the server is not given (no key id names it): the start
/// is refused, naming the webhook, until that key is configured.
async fn a_secret_no_configured_key_opens_stops_the_start(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let created = expect_status(
        app.post(
            &tenant.sandbox,
            "/api/v1/webhooks",
            &json!({"data": {"attributes": {
                "url": "https://hooks.example.invalid/idshare", "enabled-events": ["inquiry.approved"]}}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let webhook = created["data"]["id"].as_str().unwrap().to_owned();
    let secret = created["data"]["attributes"]["secrets"][0]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let old = MasterKey::read_file(&app.data_dir.join("master.key"))
        .unwrap()
        .unwrap();
    // As a server with a new current key would have sealed it.
    let new = MasterKey::generate();
    let sealed = Crypto::new(new.clone())
        .seal_system(secret.as_bytes(), &format!("{webhook}:webhook-secret"))
        .unwrap();
    let hex: String = sealed.iter().map(|b| format!("{b:02x}")).collect();
    let bytes = match backend {
        Backend::Sqlite => format!("X'{hex}'"),
        Backend::Postgres => format!("'\\x{hex}'::bytea"),
    };
    app.run_sql(&[&format!(
        "UPDATE webhooks SET secret = {bytes} WHERE id = '{webhook}'"
    )])
    .await;

    let wait = app.state.config().database_timeout();
    let open = |previous: Vec<MasterKey>| {
        Store::open(
            &app.database_url,
            false,
            MasterKeys {
                current: MasterKeySource::Value(old.clone()),
                previous,
            },
            wait,
        )
    };
    let error = open(vec![]).await.unwrap_err().to_string();
    assert!(
        error.contains(&format!(
            "the secret of webhook {webhook} is sealed under a key"
        )) && error.contains(&format!("{} (current)", old.id())),
        "{error}"
    );
    open(vec![new]).await.unwrap().close().await;
}

backend_tests!(
    a_secret_no_configured_key_opens_stops_the_start,
    rotation_runs_online_resumes_and_frees_the_old_key,
    previous_keys_are_checked_and_rotation_needs_the_servers_keys,
    a_node_still_sealing_under_the_old_key_stops_the_rotation,
);
