//! Screening quality on the shipped sample list: recall of generated spelling variants and the
//! false-positive rate on generated names that are not listed. Also checks that the shipped
//! files are exactly what the generator makes.

use std::collections::{BTreeMap, HashSet};

use super::normalize::normalize_name;
use super::synthetic::{self, Rng, Variant};
use super::{DEFAULT_THRESHOLD, Query, ScreeningIndex, parse_opensanctions_csv};

const SAMPLE_WATCHLIST: &str = include_str!("../../../../data/lists/sample-watchlist.csv");
const SAMPLE_PEP: &str = include_str!("../../../../data/lists/sample-pep.csv");

/// Set to regenerate the shipped files: `IDSHARE_WRITE_SAMPLE_LISTS=1 cargo test -p
/// idshare-domain screening::quality_tests::shipped`.
const REGENERATE: &str = "IDSHARE_WRITE_SAMPLE_LISTS";

fn check_shipped(file: &str, shipped: &str, generated: &str) {
    if std::env::var_os(REGENERATE).is_some() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/lists/");
        std::fs::write(format!("{path}{file}"), generated).expect("write sample list");
        return;
    }
    assert!(
        shipped == generated,
        "data/lists/{file} is not what screening::synthetic generates; regenerate it with \
         {REGENERATE}=1 cargo test -p idshare-domain screening::quality_tests::shipped"
    );
}

#[test]
fn shipped_lists_match_the_generator() {
    check_shipped(
        "sample-watchlist.csv",
        SAMPLE_WATCHLIST,
        &synthetic::sample_watchlist_csv(),
    );
    check_shipped("sample-pep.csv", SAMPLE_PEP, &synthetic::sample_pep_csv());
}

#[test]
fn shipped_lists_parse() {
    let wl = parse_opensanctions_csv(SAMPLE_WATCHLIST.as_bytes(), "sample-watchlist").unwrap();
    assert_eq!((wl.entries.len(), wl.skipped), (2_000, 10));
    assert!(
        wl.entries
            .iter()
            .all(|e| e.kind == super::EntryKind::Sanction)
    );
    let pep = parse_opensanctions_csv(SAMPLE_PEP.as_bytes(), "sample-pep").unwrap();
    assert_eq!((pep.entries.len(), pep.skipped), (500, 0));
    assert!(pep.entries.iter().all(|e| e.kind == super::EntryKind::Pep));
}

#[test]
fn recall_and_false_positives_on_the_shipped_list() {
    let entries = parse_opensanctions_csv(SAMPLE_WATCHLIST.as_bytes(), "sample-watchlist")
        .unwrap()
        .entries;
    let index = ScreeningIndex::build(entries.clone());
    let mut rng = Rng::new(99);

    // Recall: spelling variants of listed names, sometimes with the listed birthdate and
    // country, must find the listed person at the default threshold.
    let variants: u32 = 1_000;
    let mut found = 0;
    let mut per_kind: BTreeMap<Variant, (u32, u32)> = BTreeMap::new();
    let mut misses = Vec::new();
    for i in 0..variants as usize {
        let e = &entries[rng.below(entries.len())];
        let source = if !e.aliases.is_empty() && rng.chance(0.2) {
            &e.aliases[0]
        } else {
            &e.name
        };
        let kind = Variant::ALL[i % Variant::ALL.len()];
        let (name, kind) = synthetic::spelling_variant_of(&mut rng, source, kind);
        let mut query = Query::new(name.clone());
        if rng.chance(0.5)
            && let Some(b) = e.birthdates.first()
        {
            query = query.with_birthdate(b.clone());
        }
        if rng.chance(0.5) {
            query = query.with_country(e.countries[0].clone());
        }
        let hit = index
            .screen(&query)
            .iter()
            .any(|m| m.entity_id == e.entity_id);
        let slot = per_kind.entry(kind).or_default();
        slot.1 += 1;
        if hit {
            found += 1;
            slot.0 += 1;
        } else if misses.len() < 30 {
            misses.push(format!("{source:?} → {name:?} ({kind:?})"));
        }
    }
    let recall = f64::from(found) / f64::from(variants);
    println!("recall {recall:.3} ({found}/{variants}) at threshold {DEFAULT_THRESHOLD}");
    for (kind, (hit, total)) in &per_kind {
        println!("  {kind:?}: {hit}/{total}");
    }
    for m in &misses {
        println!("  missed {m}");
    }

    // False positives: generated names that are not on the list.
    // "Not listed" ignores token order: "Chen Yong" is the listed "Yong Chen".
    let token_set = |name: &str| {
        let mut t: Vec<String> = normalize_name(name).split(' ').map(str::to_owned).collect();
        t.sort();
        t.join(" ")
    };
    let listed: HashSet<String> = entries
        .iter()
        .flat_map(|e| e.names().map(token_set).collect::<Vec<_>>())
        .collect();
    let mut probes = 0u32;
    let mut flagged = 0u32;
    let mut examples = Vec::new();
    while probes < 1_000 {
        let name = synthetic::random_person_name(&mut rng);
        if listed.contains(&token_set(&name)) {
            continue;
        }
        probes += 1;
        let matches = index.screen(&Query::new(name.clone()));
        if let Some(m) = matches.first() {
            flagged += 1;
            if examples.len() < 40 {
                examples.push(format!("{name:?} ~ {:?} {}", m.matched_name, m.score));
            }
        }
    }
    let fp_rate = f64::from(flagged) / f64::from(probes);
    let precision = f64::from(found) / f64::from(found + flagged);
    println!(
        "false-positive rate {fp_rate:.3} ({flagged}/{probes} non-listed names flagged); \
         precision {precision:.3} with equal numbers of listed variants and non-listed names"
    );
    for e in &examples {
        println!("  flagged {e}");
    }
    assert!(recall >= 0.95, "recall {recall}");
    assert!(fp_rate < 0.05, "false-positive rate {fp_rate}");
}
