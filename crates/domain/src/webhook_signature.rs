//! The `Persona-Signature` header of webhook deliveries and signed workflow requests: producing
//! it, and checking it the way a receiver should.
//!
//! ```text
//! Persona-Signature: t=<unix seconds>,v1=<lowercase hex HMAC-SHA256(secret, "<t>.<raw body>")>
//! ```
//! The key is the bytes of the whole secret string as shown to the user (`wbhsec_…`, prefix
//! included). While a secret is being rotated the header holds one such pair per valid secret,
//! separated by a space, all with the same `t`; a receiver accepts the delivery when any `v1`
//! matches its secret. The timestamp is part of the signed message, so a captured delivery cannot
//! be replayed later with a fresh `t`; receivers refuse a `t` too far from their own clock.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The name of the header carrying the signature.
pub const HEADER_NAME: &str = "Persona-Signature";

/// How far (in seconds, either way) a signature's timestamp may be from the receiver's clock by
/// default: 5 minutes, the window receivers of Persona webhooks commonly use. It covers delivery
/// time and modest clock skew while keeping the replay window short.
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 300;

/// The most `t=…,v1=…` pairs a header may hold. Two are used during a rotation; the bound keeps a
/// hostile header from costing the receiver one HMAC per pair without limit.
const MAX_PAIRS: usize = 8;

/// Length of a `v1` value: 32 bytes of HMAC-SHA256 as hex.
const SIGNATURE_HEX_LEN: usize = 64;

/// Why a signature header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header does not have the `t=<digits>,v1=<64 hex digits>` form (optionally several
    /// pairs separated by spaces).
    #[error("malformed signature header: {0}")]
    Malformed(&'static str),
    /// A signature matched, but its timestamp is further from now than the tolerance allows: a
    /// replay, or a clock that is off.
    #[error(
        "signature timestamp {timestamp} is more than {tolerance_seconds} seconds away from now ({now})"
    )]
    TimestampOutsideTolerance {
        timestamp: i64,
        now: i64,
        tolerance_seconds: i64,
    },
    /// No `v1` in the header is the HMAC of this body under this secret and the pair's `t`.
    #[error("no signature in the header matches the body and the secret")]
    NoMatchingSignature,
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length (longer ones are hashed first), so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC-SHA256 takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// One `t=<timestamp>,v1=<hex>` pair: the signature of `body` sent at `timestamp` (unix seconds)
/// under `secret`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

/// The full header value: one pair per secret, in the given order, separated by a space (two
/// secrets while a rotation overlaps).
pub fn signature_header(secrets: &[&str], timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| sign(secret, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One parsed pair of a header.
struct Pair {
    timestamp: i64,
    signatures: Vec<Vec<u8>>,
}

fn parse_pair(pair: &str) -> Result<Pair, SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in pair.split(',') {
        let (key, value) = item
            .split_once('=')
            .ok_or(SignatureError::Malformed("every item must be `key=value`"))?;
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::Malformed("`t` appears twice in one pair"));
                }
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(SignatureError::Malformed("`t` must be unix seconds"));
                }
                timestamp = Some(
                    value
                        .parse()
                        .map_err(|_| SignatureError::Malformed("`t` is out of range"))?,
                );
            }
            "v1" => {
                if value.len() != SIGNATURE_HEX_LEN {
                    return Err(SignatureError::Malformed("`v1` must be 64 hex digits"));
                }
                signatures.push(
                    hex::decode(value)
                        .map_err(|_| SignatureError::Malformed("`v1` must be 64 hex digits"))?,
                );
            }
            // Other schemes (a future `v2`) are skipped so that adding one breaks no receiver.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed("a pair has no `t`"))?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed("a pair has no `v1`"));
    }
    Ok(Pair {
        timestamp,
        signatures,
    })
}

/// Checks a `Persona-Signature` header against one `secret` and the **raw** request body.
///
/// Accepts when some pair has a `v1` equal (compared in constant time) to the HMAC of
/// `"<t>.<body>"` under `secret`, and that pair's `t` is at most `tolerance_seconds` before or
/// after `now_unix` (a negative tolerance counts as 0). Use [`DEFAULT_TOLERANCE_SECONDS`] unless
/// there is a reason not to. A header that cannot be parsed is refused as a whole, before any
/// HMAC is computed. When a signature matches but is stale, the error says so.
pub fn verify(
    header: &str,
    secret: &str,
    body: &[u8],
    now_unix: i64,
    tolerance_seconds: i64,
) -> Result<(), SignatureError> {
    let pairs = header
        .split_ascii_whitespace()
        .map(parse_pair)
        .collect::<Result<Vec<_>, _>>()?;
    if pairs.is_empty() {
        return Err(SignatureError::Malformed("the header is empty"));
    }
    if pairs.len() > MAX_PAIRS {
        return Err(SignatureError::Malformed("too many signature pairs"));
    }
    let tolerance = tolerance_seconds.max(0).unsigned_abs();
    let mut stale = None;
    for pair in &pairs {
        let expected = mac(secret, pair.timestamp, body);
        let matched = pair
            .signatures
            .iter()
            .any(|signature| expected.clone().verify_slice(signature).is_ok());
        if matched {
            if now_unix.abs_diff(pair.timestamp) <= tolerance {
                return Ok(());
            }
            stale = Some(pair.timestamp);
        }
    }
    match stale {
        Some(timestamp) => Err(SignatureError::TimestampOutsideTolerance {
            timestamp,
            now: now_unix,
            tolerance_seconds,
        }),
        None => Err(SignatureError::NoMatchingSignature),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The vector published in docs/webhooks.md, computed independently with Python's `hmac`.
    const VECTOR_SECRET: &str = "wbhsec_test_9f1c2e8a7b6d5c4e3f2a1b0c";
    const VECTOR_ROTATED_SECRET: &str = "wbhsec_test_rotated_0a1b2c3d4e5f60718293";
    const VECTOR_T: i64 = 1_700_000_000;
    const VECTOR_BODY: &[u8] = br#"{"data":{"type":"event","id":"evt_XGuYWp7WuDzNxie5z16s7sGJ","attributes":{"name":"inquiry.approved"}}}"#;
    const VECTOR_V1: &str = "01ebf02c92e25762c304af621b957b66af33ced522ed7d92bb5a097820d704ac";
    const VECTOR_ROTATED_V1: &str =
        "67b95e3e744e557a5967034c09987e9d89555636c8f90a0d0390d486869eaee2";

    fn check(header: &str, secret: &str, body: &[u8]) -> Result<(), SignatureError> {
        verify(
            header,
            secret,
            body,
            VECTOR_T + 10,
            DEFAULT_TOLERANCE_SECONDS,
        )
    }

    #[test]
    fn matches_the_published_test_vector() {
        assert_eq!(
            sign(VECTOR_SECRET, VECTOR_T, VECTOR_BODY),
            format!("t={VECTOR_T},v1={VECTOR_V1}")
        );
        assert_eq!(
            signature_header(
                &[VECTOR_SECRET, VECTOR_ROTATED_SECRET],
                VECTOR_T,
                VECTOR_BODY
            ),
            format!("t={VECTOR_T},v1={VECTOR_V1} t={VECTOR_T},v1={VECTOR_ROTATED_V1}")
        );
    }

    #[test]
    fn round_trip_and_tampering() {
        let header = sign(VECTOR_SECRET, VECTOR_T, VECTOR_BODY);
        assert_eq!(check(&header, VECTOR_SECRET, VECTOR_BODY), Ok(()));

        let mut body = VECTOR_BODY.to_vec();
        body[10] ^= 1;
        assert_eq!(
            check(&header, VECTOR_SECRET, &body),
            Err(SignatureError::NoMatchingSignature)
        );
        assert_eq!(
            check(&header, "wbhsec_other", VECTOR_BODY),
            Err(SignatureError::NoMatchingSignature)
        );
        let moved = header.replace(&VECTOR_T.to_string(), &(VECTOR_T + 1).to_string());
        assert_eq!(
            check(&moved, VECTOR_SECRET, VECTOR_BODY),
            Err(SignatureError::NoMatchingSignature)
        );
        let upper = header
            .to_uppercase()
            .replace("T=", "t=")
            .replace("V1=", "v1=");
        assert_eq!(check(&upper, VECTOR_SECRET, VECTOR_BODY), Ok(()));
    }

    #[test]
    fn tolerance_applies_to_old_and_future_timestamps() {
        let header = sign(VECTOR_SECRET, VECTOR_T, VECTOR_BODY);
        let at = |now| verify(&header, VECTOR_SECRET, VECTOR_BODY, now, 300);
        assert_eq!(at(VECTOR_T - 300), Ok(()));
        assert_eq!(at(VECTOR_T + 300), Ok(()));
        for now in [VECTOR_T + 301, VECTOR_T - 301, i64::MAX, i64::MIN] {
            assert_eq!(
                at(now),
                Err(SignatureError::TimestampOutsideTolerance {
                    timestamp: VECTOR_T,
                    now,
                    tolerance_seconds: 300
                })
            );
        }
        assert_eq!(
            verify(&header, VECTOR_SECRET, VECTOR_BODY, VECTOR_T, -5),
            Ok(())
        );
        assert!(verify(&header, VECTOR_SECRET, VECTOR_BODY, VECTOR_T + 1, -5).is_err());
        assert_eq!(
            at(VECTOR_T + 301).unwrap_err().to_string(),
            "signature timestamp 1700000000 is more than 300 seconds away from now (1700000301)"
        );
    }

    #[test]
    fn a_rotation_header_verifies_with_either_secret() {
        let header = signature_header(
            &[VECTOR_SECRET, VECTOR_ROTATED_SECRET],
            VECTOR_T,
            VECTOR_BODY,
        );
        assert_eq!(check(&header, VECTOR_SECRET, VECTOR_BODY), Ok(()));
        assert_eq!(check(&header, VECTOR_ROTATED_SECRET, VECTOR_BODY), Ok(()));
        assert_eq!(
            check(&header, "wbhsec_neither", VECTOR_BODY),
            Err(SignatureError::NoMatchingSignature)
        );
        // Extra whitespace between pairs is harmless.
        let spaced = header.replace(' ', "  \t");
        assert_eq!(check(&spaced, VECTOR_ROTATED_SECRET, VECTOR_BODY), Ok(()));
    }

    #[test]
    fn unknown_schemes_are_skipped() {
        let header = format!("t={VECTOR_T},v0=zz,v1={VECTOR_V1},v2=abc");
        assert_eq!(check(&header, VECTOR_SECRET, VECTOR_BODY), Ok(()));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let good_v1 = format!("v1={VECTOR_V1}");
        for header in [
            String::new(),
            "   ".to_owned(),
            good_v1.clone(),
            format!("t={VECTOR_T}"),
            format!("t=,{good_v1}"),
            format!("t=-5,{good_v1}"),
            format!("t=+5,{good_v1}"),
            format!("t=12a,{good_v1}"),
            format!("t=99999999999999999999,{good_v1}"),
            format!("t={VECTOR_T},t={VECTOR_T},{good_v1}"),
            format!("t={VECTOR_T},v1={}", "g".repeat(64)),
            format!("t={VECTOR_T},v1={}", &VECTOR_V1[..62]),
            format!("t={VECTOR_T},v1="),
            format!("t={VECTOR_T};{good_v1}"),
            format!("t={VECTOR_T},{good_v1},"),
            format!("t={VECTOR_T},{good_v1} garbage"),
            vec![format!("t={VECTOR_T},{good_v1}"); 9].join(" "),
        ] {
            assert!(
                matches!(
                    check(&header, VECTOR_SECRET, VECTOR_BODY),
                    Err(SignatureError::Malformed(_))
                ),
                "{header:?}"
            );
        }
        assert_eq!(
            check("", VECTOR_SECRET, VECTOR_BODY)
                .unwrap_err()
                .to_string(),
            "malformed signature header: the header is empty"
        );
    }

    proptest! {
        #[test]
        fn sign_then_verify_and_any_flip_fails(
            body in proptest::collection::vec(any::<u8>(), 1..512),
            secret in "wbhsec_[a-zA-Z0-9]{1,40}",
            timestamp in 0i64..4_000_000_000,
            flip in any::<proptest::sample::Index>(),
            bit in 0u8..8,
        ) {
            let header = sign(&secret, timestamp, &body);
            prop_assert_eq!(verify(&header, &secret, &body, timestamp, 0), Ok(()));
            let mut tampered = body.clone();
            tampered[flip.index(body.len())] ^= 1 << bit;
            prop_assert_eq!(
                verify(&header, &secret, &tampered, timestamp, 0),
                Err(SignatureError::NoMatchingSignature)
            );
        }

        #[test]
        fn verify_never_panics(header in "\\PC*", now in any::<i64>(), tolerance in any::<i64>()) {
            let _ = verify(&header, VECTOR_SECRET, VECTOR_BODY, now, tolerance);
        }
    }
}
