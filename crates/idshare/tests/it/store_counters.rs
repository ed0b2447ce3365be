//! The store counts its own statements and transactions (what `idshare bench` reports per
//! operation): a known sequence of store calls gives known counts.

use std::time::Duration;

use idshare_domain::id::OrgId;
use idshare_store::{Counters, MasterKeySource, Store, orgs};
use time::OffsetDateTime;

use crate::helpers::{Backend, spawn_app};

async fn known_calls_give_known_counts(backend: Backend) {
    let app = spawn_app(backend).await;
    // A store of its own on the app's database: the server's housekeeping runs on the app's
    // store, and would add to the counts under test.
    let store = Store::open(
        &app.database_url,
        false,
        MasterKeySource::NotNeeded,
        Duration::from_secs(5),
    )
    .await
    .expect("open store");
    let now = OffsetDateTime::now_utc();
    let counted = |before: Counters| store.counters() - before;

    let before = store.counters();
    let mut tx = store.begin_write().await.expect("begin");
    let org = orgs::create(&mut tx, "Counted", now).await.expect("create");
    orgs::get(&mut tx, &org.id).await.expect("get");
    tx.commit().await.expect("commit");
    assert_eq!(
        counted(before),
        Counters {
            statements: 2,
            write_transactions: 1,
            write_commits: 1,
            read_transactions: 0,
        },
        "a committed write transaction with an INSERT and a SELECT"
    );

    let before = store.counters();
    let mut tx = store.begin_read().await.expect("begin");
    orgs::get(&mut tx, &org.id).await.expect("get");
    orgs::get(&mut tx, &OrgId::generate()).await.expect("get");
    orgs::count(&mut tx).await.expect("count");
    drop(tx);
    assert_eq!(
        counted(before),
        Counters {
            statements: 3,
            write_transactions: 0,
            write_commits: 0,
            read_transactions: 1,
        },
        "a read transaction with three SELECTs"
    );

    let before = store.counters();
    let mut tx = store.begin_write().await.expect("begin");
    orgs::create(&mut tx, "Rolled back", now)
        .await
        .expect("create");
    drop(tx);
    assert_eq!(
        counted(before),
        Counters {
            statements: 1,
            write_transactions: 1,
            write_commits: 0,
            read_transactions: 0,
        },
        "a write transaction rolled back is begun, not committed"
    );

    let before = store.counters();
    store.clone().ping().await.expect("ping");
    assert_eq!(
        counted(before),
        Counters {
            statements: 1,
            ..Counters::default()
        },
        "a clone counts into the same counters; a statement outside a transaction counts"
    );
    store.close().await;
}

backend_tests!(known_calls_give_known_counts);
