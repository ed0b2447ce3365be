//! `idshare bench screening`: screenings per second through the index against a brute-force
//! scan of the same generated list, in the same run.
//!
//! The list is generated deterministically (`screening::synthetic`, fixed seed): realistic
//! multi-token names of several cultures with birthdates and countries. Half the queries are
//! spelling variants of listed names (typos, token order, accents, initials, transliteration,
//! Cyrillic), some with the listed birthdate or country; the other half are generated names.
//! The brute-force scan uses the index's prepared names and the very same scoring, so the
//! ratio measures the blocking alone; it runs on the first queries only when a full run would
//! take too long (see [`BRUTE_FORCE_BUDGET`]), and its results are compared with the index's.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use idshare_domain::screening::synthetic::{self, Rng};
use idshare_domain::screening::{EntryKind, Match, Query, ScreeningIndex};

/// Seed of the generated list and queries.
const SEED: u64 = 0x1D5_4A9E;
/// The brute-force scan stops taking new queries after this long (at least 10 queries run).
const BRUTE_FORCE_BUDGET: Duration = Duration::from_secs(30);

struct Probe {
    query: Query,
    /// The listed entity the query is a variant of.
    target: Option<String>,
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn same(a: &[Match], b: &[Match]) -> bool {
    a == b
}

/// Generates `names` persons, screens `queries` queries through the index and through a
/// brute-force scan, and prints the rates, the speed-up, build time and memory.
pub fn run(names: usize, queries: usize) -> Result<()> {
    ensure!(names > 0, "--names must be at least 1");
    ensure!(queries > 0, "--queries must be at least 1");
    ensure!(u32::try_from(names).is_ok(), "--names must fit in 32 bits");

    let mut rng = Rng::new(SEED);
    let started = Instant::now();
    let entries = synthetic::generate_entries(&mut rng, names, "bench", EntryKind::Sanction, "b");
    let generated = started.elapsed();

    let mut probes = Vec::with_capacity(queries);
    for i in 0..queries {
        if i % 2 == 0 {
            let e = &entries[rng.below(entries.len())];
            let (name, _) = synthetic::spelling_variant(&mut rng, &e.name);
            let mut query = Query::new(name);
            if rng.chance(0.5)
                && let Some(b) = e.birthdates.first()
            {
                query = query.with_birthdate(b.clone());
            }
            if rng.chance(0.5)
                && let Some(c) = e.countries.first()
            {
                query = query.with_country(c.clone());
            }
            probes.push(Probe {
                query,
                target: Some(e.entity_id.clone()),
            });
        } else {
            probes.push(Probe {
                query: Query::new(synthetic::random_person_name(&mut rng)),
                target: None,
            });
        }
    }
    let variants = probes.iter().filter(|p| p.target.is_some()).count();

    let started = Instant::now();
    let index = ScreeningIndex::build(entries);
    let built = started.elapsed();
    let stats = index.stats();
    let memory = index.memory_estimate();

    let started = Instant::now();
    let mut indexed = Vec::with_capacity(probes.len());
    let mut candidates = 0usize;
    let mut scored = 0usize;
    let mut most_candidates = 0usize;
    for p in &probes {
        let (matches, s) = index.screen_with_stats(&p.query);
        candidates += s.candidates;
        scored += s.scored;
        most_candidates = most_candidates.max(s.candidates);
        indexed.push(matches);
    }
    let indexed_time = started.elapsed();

    let started = Instant::now();
    let mut brute = Vec::new();
    for p in &probes {
        if brute.len() >= 10 && started.elapsed() >= BRUTE_FORCE_BUDGET {
            break;
        }
        brute.push(index.screen_exhaustive(&p.query));
    }
    let brute_time = started.elapsed();

    let found = |results: &[Vec<Match>]| {
        probes
            .iter()
            .zip(results)
            .filter(|(p, r)| {
                p.target
                    .as_ref()
                    .is_some_and(|t| r.iter().any(|m| &m.entity_id == t))
            })
            .count()
    };
    let brute_variants = probes[..brute.len()]
        .iter()
        .filter(|p| p.target.is_some())
        .count();
    let agree = indexed
        .iter()
        .zip(&brute)
        .filter(|(a, b)| same(a, b))
        .count();
    let flagged_random = probes
        .iter()
        .zip(&indexed)
        .filter(|(p, r)| p.target.is_none() && !r.is_empty())
        .count();

    let indexed_rate = per_second(probes.len(), indexed_time);
    let brute_rate = per_second(brute.len(), brute_time);
    println!(
        "screening benchmark: {names} generated names (seed {SEED:#x}), {} queries \
         ({variants} spelling variants of listed names, {} other generated names)",
        probes.len(),
        probes.len() - variants
    );
    println!(
        "list generated in {:.2} s; index built in {:.2} s: {} names, {} tokens, {} blocks \
         (largest {}, {} over the stop limit of {}); index memory ≈ {:.1} MiB",
        generated.as_secs_f64(),
        built.as_secs_f64(),
        stats.names,
        stats.tokens,
        stats.blocks,
        stats.largest_block,
        stats.stop_blocks,
        stats.stop_limit,
        memory as f64 / (1024.0 * 1024.0),
    );
    println!(
        "indexed:     {:>6} screenings in {:>8.3} s = {:>10.1} screenings/s ({:.3} ms each; \
         on average {:.0} entries reached through blocks, {:.0} of them scored; at most {} reached)",
        probes.len(),
        indexed_time.as_secs_f64(),
        indexed_rate,
        millis(indexed_time) / probes.len() as f64,
        candidates as f64 / probes.len() as f64,
        scored as f64 / probes.len() as f64,
        most_candidates,
    );
    println!(
        "brute force: {:>6} screenings in {:>8.3} s = {:>10.1} screenings/s ({:.3} ms each{})",
        brute.len(),
        brute_time.as_secs_f64(),
        brute_rate,
        millis(brute_time) / brute.len() as f64,
        if brute.len() < probes.len() {
            format!(
                "; stopped after {} s, the first {} queries",
                BRUTE_FORCE_BUDGET.as_secs(),
                brute.len()
            )
        } else {
            String::new()
        },
    );
    println!("speed-up: {:.1}×", indexed_rate / brute_rate);
    println!(
        "same results as brute force: {agree}/{} queries; variants found: {}/{brute_variants} \
         (brute force), {}/{variants} (indexed, all queries); other names flagged: \
         {flagged_random}/{}",
        brute.len(),
        found(&brute),
        found(&indexed),
        probes.len() - variants,
    );
    Ok(())
}
