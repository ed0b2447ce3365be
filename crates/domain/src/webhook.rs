//! Webhook rules that need no I/O: which events a subscription receives, which attributes its
//! payloads leave out, when a failed delivery is tried again, and which targets are refused.
//!
//! The signature scheme lives in [`crate::webhook_signature`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::{Host, Url};

use crate::PointedError;
use crate::event::names;

/// The wildcard of `enabled-events`: every event, including those added later.
pub const ALL_EVENTS: &str = "*";

/// Every event name a webhook can subscribe to (and a workflow can be triggered by), grouped by
/// the object the event is about.
pub const SUBSCRIBABLE_EVENTS: &[&str] = &[
    names::INQUIRY_CREATED,
    // The status transitions of `InquiryAction::event_name`.
    "inquiry.started",
    "inquiry.completed",
    "inquiry.failed",
    "inquiry.expired",
    "inquiry.resumed",
    "inquiry.marked-for-review",
    "inquiry.approved",
    "inquiry.declined",
    names::INQUIRY_UPDATED,
    names::INQUIRY_UPDATED_TAGS,
    names::INQUIRY_REDACTED,
    names::INQUIRY_FIELD_CONFIRMED,
    names::INQUIRY_TEMPLATE_CREATED,
    names::INQUIRY_TEMPLATE_VERSION_CREATED,
    names::INQUIRY_TEMPLATE_VERSION_PUBLISHED,
    names::VERIFICATION_PASSED,
    names::VERIFICATION_FAILED,
    names::VERIFICATION_SUBMITTED,
    names::VERIFICATION_REQUIRES_RETRY,
    names::REPORT_WATCHLIST_READY,
    names::REPORT_WATCHLIST_MATCHED,
    names::REPORT_WATCHLIST_DISMISSED,
    names::REPORT_PEP_READY,
    names::REPORT_PEP_MATCHED,
    names::REPORT_PEP_DISMISSED,
    names::DOCUMENT_CREATED,
    names::FILE_CREATED,
    names::CONNECTION_CREATED,
    names::CONNECTION_ACTIVATED,
    names::CONNECTION_DEACTIVATED,
    names::CONNECTION_REACTIVATED,
    names::SHARE_TOKEN_OUTBOUND_CREATED,
    names::SHARE_TOKEN_INBOUND_CREATED,
    names::SHARE_TOKEN_OUTBOUND_EXPIRED,
    names::SHARE_TOKEN_INBOUND_EXPIRED,
    names::SHARE_TOKEN_OUTBOUND_REDEEMED,
    names::SHARE_TOKEN_INBOUND_REDEEMED,
    names::SHARE_TOKEN_OUTBOUND_FAILED,
    names::SHARE_TOKEN_INBOUND_FAILED,
    names::SHARE_TOKEN_OUTBOUND_PEEKED,
    names::SHARE_TOKEN_INBOUND_PEEKED,
    names::SHARE_TOKEN_OUTBOUND_PREVIEWED,
    names::SHARE_TOKEN_INBOUND_PREVIEWED,
    names::WORKFLOW_RUN_CREATED,
    names::WORKFLOW_RUN_COMPLETED,
    names::WORKFLOW_RUN_ERRORED,
];

/// The known event name equal to `name`, as a `'static` string.
pub fn known_event(name: &str) -> Option<&'static str> {
    SUBSCRIBABLE_EVENTS
        .iter()
        .copied()
        .find(|known| *known == name)
}

/// The events a webhook receives (`enabled-events`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnabledEvents {
    /// `"*"` was listed: every event, present and future.
    All,
    /// These events only, without repeats, in the order first listed.
    Only(Vec<&'static str>),
}

impl EnabledEvents {
    /// Reads an `enabled-events` list. Every item must be a name of [`SUBSCRIBABLE_EVENTS`] or
    /// `"*"` (which makes the rest redundant); the list must not be empty. Each error points at
    /// its item (`/2`), relative to the list.
    pub fn parse(items: &[String]) -> Result<Self, Vec<PointedError>> {
        if items.is_empty() {
            return Err(vec![PointedError {
                pointer: String::new(),
                message: format!("list at least one event name, or \"{ALL_EVENTS}\" for all"),
            }]);
        }
        let mut all = false;
        let mut only = Vec::new();
        let mut errors = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if item == ALL_EVENTS {
                all = true;
            } else if let Some(name) = known_event(item) {
                if !only.contains(&name) {
                    only.push(name);
                }
            } else {
                errors.push(PointedError {
                    pointer: format!("/{i}"),
                    message: format!(
                        "`{}` is not an event name; use \"{ALL_EVENTS}\" or one of: {}",
                        echo(item),
                        SUBSCRIBABLE_EVENTS.join(", ")
                    ),
                });
            }
        }
        match (errors.is_empty(), all) {
            (false, _) => Err(errors),
            (true, true) => Ok(Self::All),
            (true, false) => Ok(Self::Only(only)),
        }
    }

    /// Whether an event named `event_name` goes to this webhook.
    pub fn matches(&self, event_name: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(names) => names.contains(&event_name),
        }
    }
}

impl Serialize for EnabledEvents {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::All => [ALL_EVENTS].serialize(s),
            Self::Only(names) => names.serialize(s),
        }
    }
}

/// User input echoed in a message: bounded, without control characters.
pub(crate) fn echo(input: &str) -> String {
    input.chars().filter(|c| !c.is_control()).take(64).collect()
}

const MAX_BLOCKLIST_PATTERNS: usize = 100;
const MAX_PATTERN_CHARS: usize = 256;

/// One `api-attributes-blocklist` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// A glob matched against every key under an `attributes` object.
    Key(String),
    /// Globs matched segment by segment from the root of the payload.
    Path(Vec<String>),
}

/// The attributes a webhook leaves out of its payloads (`api-attributes-blocklist`).
///
/// A pattern is either
/// - **a key pattern** such as `name-last` or `address-*`: it removes every member whose key
///   matches, at any depth inside an `attributes` object of the payload (so inside `fields` too,
///   and in `included` objects). Keys outside `attributes` (`type`, `id`, `relationships`) are
///   never touched;
/// - **a path pattern**, starting with `/`, such as `/data/attributes/fields/*-number`: a JSON
///   pointer (RFC 6901, `~1` for `/` and `~0` for `~`) from the root of the payload document
///   `{data, included}`, whose segments may hold globs. Segments match object keys, or list
///   indexes written in decimal. The last segment removes object members; list elements are
///   walked through, never removed.
///
/// In both, `*` matches any run of characters (none included) and every other character
/// matches itself; there is no escape for a literal `*`. The patterns are applied to the event's
/// payload before it is wrapped in the delivery envelope, so the envelope's own `name` and
/// `created-at` always stay.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttributesBlocklist {
    /// Each pattern as written, with its parsed form.
    patterns: Vec<(String, Pattern)>,
}

impl AttributesBlocklist {
    /// Reads a blocklist; repeats are dropped. At most 100 patterns of at most 256 characters,
    /// none empty or with control characters. A key pattern holds no `/`; a path pattern has no
    /// empty segment and uses `~` only in `~0` and `~1`. Each error points at its item (`/1`).
    pub fn parse(items: &[String]) -> Result<Self, Vec<PointedError>> {
        let mut errors = Vec::new();
        if items.len() > MAX_BLOCKLIST_PATTERNS {
            errors.push(PointedError {
                pointer: String::new(),
                message: format!("at most {MAX_BLOCKLIST_PATTERNS} patterns are allowed"),
            });
        }
        let mut patterns: Vec<(String, Pattern)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match parse_pattern(item) {
                Ok(pattern) => {
                    if !patterns.iter().any(|(raw, _)| raw == item) {
                        patterns.push((item.clone(), pattern));
                    }
                }
                Err(message) => errors.push(PointedError {
                    pointer: format!("/{i}"),
                    message,
                }),
            }
        }
        if errors.is_empty() {
            Ok(Self { patterns })
        } else {
            Err(errors)
        }
    }

    /// True when nothing is blocked.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Removes what the patterns match from an event payload document (`{data, included}`).
    pub fn apply(&self, payload: &mut Value) {
        let keys: Vec<&str> = self
            .patterns
            .iter()
            .filter_map(|(_, p)| match p {
                Pattern::Key(glob) => Some(glob.as_str()),
                Pattern::Path(_) => None,
            })
            .collect();
        if !keys.is_empty() {
            remove_keys(payload, &keys, false);
        }
        for (_, pattern) in &self.patterns {
            if let Pattern::Path(segments) = pattern {
                remove_path(payload, segments);
            }
        }
    }
}

impl Serialize for AttributesBlocklist {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.patterns.iter().map(|(raw, _)| raw))
    }
}

fn parse_pattern(raw: &str) -> Result<Pattern, String> {
    if raw.is_empty() {
        return Err("patterns must not be empty".to_owned());
    }
    if raw.chars().count() > MAX_PATTERN_CHARS {
        return Err(format!(
            "patterns are at most {MAX_PATTERN_CHARS} characters"
        ));
    }
    if raw.chars().any(char::is_control) {
        return Err("patterns must not contain control characters".to_owned());
    }
    let Some(path) = raw.strip_prefix('/') else {
        if raw.contains('/') {
            return Err(format!(
                "`{}` mixes a key and a path: a path pattern starts with `/`, such as \
                 `/data/attributes/fields/name-last`",
                echo(raw)
            ));
        }
        return Ok(Pattern::Key(raw.to_owned()));
    };
    path.split('/')
        .map(|segment| {
            if segment.is_empty() {
                return Err(format!(
                    "`{}` has an empty segment; separate segments with a single `/`",
                    echo(raw)
                ));
            }
            unescape_segment(segment).ok_or_else(|| {
                format!(
                    "`{}`: in a path, `~` must be followed by `0` (for `~`) or `1` (for `/`)",
                    echo(raw)
                )
            })
        })
        .collect::<Result<_, _>>()
        .map(Pattern::Path)
}

/// RFC 6901 unescaping of one segment; `None` on a `~` not followed by `0` or `1`.
fn unescape_segment(segment: &str) -> Option<String> {
    let mut out = String::with_capacity(segment.len());
    let mut chars = segment.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next()? {
                '0' => out.push('~'),
                '1' => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters. Linear in
/// practice: a mismatch backs up to the last `*` only.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut resume: Option<(usize, usize)> = None;
    while ti < t.len() {
        if p.get(pi) == Some(&b'*') {
            resume = Some((pi, ti));
            pi += 1;
        } else if p.get(pi) == Some(&t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((star, from)) = resume {
            pi = star + 1;
            ti = from + 1;
            resume = Some((star, from + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

fn remove_keys(value: &mut Value, globs: &[&str], in_attributes: bool) {
    match value {
        Value::Object(map) => {
            if in_attributes {
                map.retain(|key, _| !globs.iter().any(|glob| glob_matches(glob, key)));
            }
            for (key, child) in map.iter_mut() {
                remove_keys(child, globs, in_attributes || key == "attributes");
            }
        }
        Value::Array(items) => {
            for child in items {
                remove_keys(child, globs, in_attributes);
            }
        }
        _ => {}
    }
}

fn remove_path(value: &mut Value, segments: &[String]) {
    let Some((glob, rest)) = segments.split_first() else {
        return;
    };
    match value {
        Value::Object(map) if rest.is_empty() => map.retain(|key, _| !glob_matches(glob, key)),
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if glob_matches(glob, key) {
                    remove_path(child, rest);
                }
            }
        }
        Value::Array(items) if !rest.is_empty() => {
            for (index, child) in items.iter_mut().enumerate() {
                if glob_matches(glob, &index.to_string()) {
                    remove_path(child, rest);
                }
            }
        }
        _ => {}
    }
}

string_enum! {
    /// Whether a webhook receives deliveries. `archived` is final.
    pub enum WebhookStatus ("webhook status", all: slice) {
        Enabled = "enabled",
        Disabled = "disabled",
        Archived = "archived",
    }
}

string_enum! {
    /// A status change of a webhook (`POST /webhooks/{id}/<action>`).
    pub enum WebhookAction ("webhook action", all: slice) {
        Enable = "enable",
        Disable = "disable",
        Archive = "archive",
    }
}

/// The status `action` leads to from `from`, or `None` when it does not apply: `enable` a
/// disabled webhook, `disable` an enabled one, `archive` either (never an archived one).
pub fn transition(from: WebhookStatus, action: WebhookAction) -> Option<WebhookStatus> {
    use WebhookAction as A;
    use WebhookStatus as S;
    match (from, action) {
        (S::Disabled, A::Enable) => Some(S::Enabled),
        (S::Enabled, A::Disable) => Some(S::Disabled),
        (S::Enabled | S::Disabled, A::Archive) => Some(S::Archived),
        _ => None,
    }
}

/// Attempts per delivery, the first included: 1 + 7 retries.
pub const MAX_ATTEMPTS: u32 = 8;

/// How long a receiver has to answer an attempt with a 2xx; anything slower is a failure.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest a delivery waits for an earlier pending delivery of the same object to the same
/// webhook (deliveries of one object are sent in event order): 10 minutes, in which a failing
/// delivery makes its first three attempts (at once, 30 s and 2 min 30 s later).
pub const ORDER_WAIT: Duration = Duration::from_secs(600);

/// Whether a failed delivery gives way instead of being retried at `next_attempt_at`: when a
/// later delivery of its object, waiting since `later_waiting_since`, would then have waited
/// longer than [`ORDER_WAIT`]. The delivery ends `failed` and the later one is sent.
pub fn gives_way(
    next_attempt_at: time::OffsetDateTime,
    later_waiting_since: time::OffsetDateTime,
) -> bool {
    next_attempt_at > later_waiting_since + ORDER_WAIT
}

/// Delay after the first failed attempt.
const FIRST_RETRY_SECONDS: u64 = 30;
/// Each further delay is this many times the one before, up to [`MAX_RETRY_SECONDS`].
const BACKOFF_FACTOR: u64 = 4;
/// The longest nominal delay between two attempts: 6 hours.
const MAX_RETRY_SECONDS: u64 = 6 * 3600;
/// How far (as a fraction of the nominal delay) jitter moves a delay either way.
const JITTER_FRACTION: f64 = 0.2;

/// How long to wait before the next attempt, once `attempts_made` attempts have failed; `None`
/// when all [`MAX_ATTEMPTS`] have been made. With no attempt made yet the answer is zero: the
/// first attempt goes out at once.
///
/// The nominal delay after attempt *n* is 30 s · 4^(n−1), capped at 6 h, then moved by up to
/// ±20 % by `jitter` (a uniform random number in `[0, 1)`: 0 shortens by 20 %, 0.5 keeps the
/// nominal delay; values outside are clamped, NaN counts as 0.5), so that receivers coming back
/// after an outage are not hit by every retry at the same instant.
///
/// | failed attempts | nominal delay | nominal time since the first attempt |
/// |---:|---:|---:|
/// | 1 | 30 s | 30 s |
/// | 2 | 2 min | 2 min 30 s |
/// | 3 | 8 min | 10 min 30 s |
/// | 4 | 32 min | 42 min 30 s |
/// | 5 | 2 h 8 min | 2 h 50 min 30 s |
/// | 6 | 6 h (capped) | 8 h 50 min 30 s |
/// | 7 | 6 h (capped) | 14 h 50 min 30 s |
/// | 8 | none: the delivery has failed | |
pub fn next_attempt_delay(attempts_made: u32, jitter: f64) -> Option<Duration> {
    if attempts_made == 0 {
        return Some(Duration::ZERO);
    }
    if attempts_made >= MAX_ATTEMPTS {
        return None;
    }
    let nominal = BACKOFF_FACTOR
        .checked_pow(attempts_made - 1)
        .and_then(|factor| FIRST_RETRY_SECONDS.checked_mul(factor))
        .map_or(MAX_RETRY_SECONDS, |s| s.min(MAX_RETRY_SECONDS));
    let jitter = if jitter.is_nan() {
        0.5
    } else {
        jitter.clamp(0.0, 1.0)
    };
    let scale = 1.0 + JITTER_FRACTION * (2.0 * jitter - 1.0);
    Some(Duration::from_secs_f64(nominal as f64 * scale))
}

/// Why a delivery target address is refused, or `None` for a public address.
///
/// Refused, with the reason returned: `unspecified` (0.0.0.0, ::), `this-network` (0.0.0.0/8),
/// `private` (10/8, 172.16/12, 192.168/16, and the deprecated site-local fec0::/10), `loopback`
/// (127/8, ::1), `link-local` (169.254/16, where cloud metadata services answer, and fe80::/10),
/// `shared-address-space` (carrier-grade NAT, 100.64/10), `unique-local` (fc00::/7),
/// `multicast` (224/4, ff00::/8), `broadcast` (255.255.255.255), `documentation` (192.0.2/24,
/// 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20: never a real receiver),
/// `benchmarking` (198.18/15, 2001:2::/48), `teredo` (2001::/32: a tunnel to an IPv4 host behind
/// a NAT, whose address the prefix only obfuscates), `local-use-translation` (64:ff9b:1::/48,
/// NAT64 into a network of the operator's choosing) and `reserved` (240/4, 192.0.0/24,
/// 192.88.99/24; 100::/64 and 100:0:0:1::/64, ORCHID 2001:10::/28 and 2001:20::/28, SRv6
/// 5f00::/16, the rest of ::/8).
///
/// An IPv6 address that carries an IPv4 one (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
/// `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`) is judged by that IPv4 address,
/// since that is where the connection would end up; so is an ISATAP interface identifier
/// (`…:0:5efe:a.b.c.d`, `…:200:5efe:a.b.c.d`) when its IPv4 address is refused, since the
/// ISATAP router forwards to it.
pub fn forbidden_target(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, d] = ip.octets();
    Some(match (a, b, c, d) {
        (0, 0, 0, 0) => "unspecified",
        (0, ..) => "this-network",
        (10, ..) | (172, 16..=31, ..) | (192, 168, ..) => "private",
        (100, 64..=127, ..) => "shared-address-space",
        (127, ..) => "loopback",
        (169, 254, ..) => "link-local",
        (192, 0, 2, _) | (198, 51, 100, _) | (203, 0, 113, _) => "documentation",
        (198, 18..=19, ..) => "benchmarking",
        (224..=239, ..) => "multicast",
        (255, 255, 255, 255) => "broadcast",
        (240..=255, ..) | (192, 0, 0, _) | (192, 88, 99, _) => "reserved",
        _ => return None,
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if let Some(v4) = embedded_v4(ip) {
        return forbidden_v4(v4);
    }
    let by_prefix = match ip.segments() {
        [0xfe80..=0xfebf, ..] => "link-local",
        [0xfec0..=0xfeff, ..] => "private",
        [0xfc00..=0xfdff, ..] => "unique-local",
        [0xff00..=0xffff, ..] => "multicast",
        [0x2001, 0x0db8, ..] | [0x3fff, 0x0000..=0x0fff, ..] => "documentation",
        [0x2001, 0x0000, ..] => "teredo",
        [0x2001, 0x0002, 0x0000, ..] => "benchmarking",
        [0x0064, 0xff9b, 0x0001, ..] => "local-use-translation",
        [0x2001, 0x0010..=0x002f, ..]
        | [0x5f00, ..]
        | [0x0100, 0, 0, 0 | 1, ..]
        | [0x0000..=0x00ff, ..] => "reserved",
        _ => return isatap_v4(ip).and_then(forbidden_v4),
    };
    Some(by_prefix)
}

/// The IPv4 address a connection to `ip` would reach, for the forms that embed one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    match ip.segments() {
        [0, 0, 0, 0, 0, 0xffff | 0, hi, lo] | [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => {
            Some(v4_of(hi, lo))
        }
        [0x2002, hi, lo, ..] => Some(v4_of(hi, lo)),
        _ => None,
    }
}

/// The IPv4 address in an ISATAP interface identifier (RFC 5214), under any prefix.
fn isatap_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    match ip.segments() {
        [_, _, _, _, 0x0000 | 0x0200, 0x5efe, hi, lo] => Some(v4_of(hi, lo)),
        _ => None,
    }
}

fn v4_of(hi: u16, lo: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))
}

/// The longest URL accepted for a webhook or an HTTPS request step.
pub const MAX_URL_CHARS: usize = 2048;

/// An absolute `https` (or `http`) URL with a host and no credentials, normalised by the `url`
/// crate (lowercase host, IPv4 hosts in dotted form: `http://0x7f.1/` becomes
/// `http://127.0.0.1/`).
///
/// Only the form is checked here. Where the URL leads is checked at each delivery: a host that
/// is an IP address by [`forbidden_target`] on [`WebhookUrl::host_ip`], a host name on every
/// address it resolves to (so that a name cannot be pointed at an internal address later).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WebhookUrl(Url);

/// Why a URL is refused as a webhook or HTTPS request target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("a URL is at most {MAX_URL_CHARS} characters")]
    TooLong,
    #[error("not an absolute URL: {0}")]
    Invalid(#[from] url::ParseError),
    #[error("`{0}` URLs are not allowed: use https (or http)")]
    Scheme(String),
    #[error("a URL must not carry a user name or password; send credentials in the body")]
    Credentials,
}

/// Checks the form of a webhook or HTTPS request URL (see [`WebhookUrl`]).
pub fn parse_webhook_url(s: &str) -> Result<WebhookUrl, UrlError> {
    if s.chars().count() > MAX_URL_CHARS {
        return Err(UrlError::TooLong);
    }
    let url = Url::parse(s)?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(UrlError::Scheme(echo(url.scheme())));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    Ok(WebhookUrl(url))
}

impl WebhookUrl {
    /// The normalised URL.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn url(&self) -> &Url {
        &self.0
    }

    /// The host when it is written as an IP address (after normalisation), for
    /// [`forbidden_target`]; `None` for a host name.
    pub fn host_ip(&self) -> Option<IpAddr> {
        match self.0.host()? {
            Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            Host::Domain(_) => None,
        }
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WebhookUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, UrlError> {
        parse_webhook_url(s)
    }
}

impl Serialize for WebhookUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for WebhookUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        parse_webhook_url(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_status_machine() {
        use WebhookAction as A;
        use WebhookStatus as S;
        let allowed = [
            (S::Disabled, A::Enable, S::Enabled),
            (S::Enabled, A::Disable, S::Disabled),
            (S::Enabled, A::Archive, S::Archived),
            (S::Disabled, A::Archive, S::Archived),
        ];
        for from in S::ALL {
            for action in A::ALL {
                let expected = allowed
                    .iter()
                    .find(|(f, a, _)| f == from && a == action)
                    .map(|(_, _, to)| *to);
                assert_eq!(transition(*from, *action), expected, "{from} {action}");
            }
        }
    }
    use crate::connect::{ConnectionAction, Side};
    use crate::inquiry::InquiryAction;
    use crate::share_token;
    use proptest::prelude::*;
    use serde_json::json;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn every_emitted_event_is_subscribable_once() {
        let mut emitted: Vec<&str> = InquiryAction::ALL.iter().map(|a| a.event_name()).collect();
        emitted.extend(ConnectionAction::ALL.iter().map(|a| a.event_name()));
        for &side in Side::ALL {
            emitted.extend([
                share_token::created_event(side),
                share_token::expired_event(side),
                share_token::redeemed_event(side),
                share_token::failed_event(side),
            ]);
        }
        for name in emitted {
            assert_eq!(known_event(name), Some(name), "{name}");
        }
        // The server names report events `report/<type>.<what>`.
        for report in crate::template::ReportType::ALL {
            for what in ["ready", "matched", "dismissed"] {
                let name = format!("report/{report}.{what}");
                assert!(known_event(&name).is_some(), "{name}");
            }
        }
        for (i, name) in SUBSCRIBABLE_EVENTS.iter().enumerate() {
            assert!(!SUBSCRIBABLE_EVENTS[..i].contains(name), "{name} twice");
            assert_ne!(*name, ALL_EVENTS);
        }
        assert!(known_event("workflow-run.completed").is_some());
    }

    #[test]
    fn enabled_events_match_what_was_listed() {
        let only = EnabledEvents::parse(&strings(&[
            "inquiry.completed",
            "connect/share-token.inbound-created",
            "inquiry.completed",
        ]))
        .unwrap();
        assert_eq!(
            only,
            EnabledEvents::Only(vec![
                "inquiry.completed",
                "connect/share-token.inbound-created"
            ])
        );
        assert!(only.matches("inquiry.completed"));
        assert!(!only.matches("inquiry.approved"));
        assert_eq!(
            serde_json::to_value(&only).unwrap(),
            json!(["inquiry.completed", "connect/share-token.inbound-created"])
        );

        let all = EnabledEvents::parse(&strings(&["inquiry.created", "*"])).unwrap();
        assert_eq!(all, EnabledEvents::All);
        assert!(all.matches("anything.at-all"));
        assert_eq!(serde_json::to_value(&all).unwrap(), json!(["*"]));
    }

    #[test]
    fn unknown_events_are_named_and_pointed_at() {
        let errors = EnabledEvents::parse(&strings(&[
            "inquiry.completed",
            "inquiry.done",
            "*",
            "Inquiry.created",
        ]))
        .unwrap_err();
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/1", "/3"]);
        assert!(
            errors[0].message.starts_with(
                "`inquiry.done` is not an event name; use \"*\" or one of: inquiry.created, "
            ),
            "{}",
            errors[0].message
        );
        let empty = EnabledEvents::parse(&[]).unwrap_err();
        assert_eq!(empty[0].pointer, "");
    }

    fn payload() -> Value {
        json!({
            "data": {
                "type": "inquiry",
                "id": "inq_1",
                "attributes": {
                    "status": "completed",
                    "name-first": "Ada",
                    "name-last": "Lovelace",
                    "address-city": "London",
                    "address-street-1": "1 Main St",
                    "fields": {
                        "name-last": {"type": "string", "value": "Lovelace"},
                        "identification-number": {"type": "string", "value": "X1"},
                        "phone-number": {"type": "string", "value": "+44"},
                        "birthdate": {"type": "date", "value": "1815-12-10"}
                    }
                },
                "relationships": {"name-last": {"data": null}}
            },
            "included": [
                {"type": "verification/government-id", "id": "ver_1",
                 "attributes": {"name-last": "Lovelace", "checks": [{"name-last": 1, "status": "passed"}]}}
            ]
        })
    }

    fn apply(patterns: &[&str]) -> Value {
        let mut value = payload();
        AttributesBlocklist::parse(&strings(patterns))
            .unwrap()
            .apply(&mut value);
        value
    }

    #[test]
    fn key_patterns_remove_attributes_at_any_depth_and_nothing_else() {
        let out = apply(&["name-last", "address-*"]);
        let attributes = &out["data"]["attributes"];
        assert_eq!(
            attributes.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["status", "name-first", "fields"]
        );
        assert!(attributes["fields"].get("name-last").is_none());
        assert!(attributes["fields"].get("birthdate").is_some());
        assert!(out["included"][0]["attributes"].get("name-last").is_none());
        assert_eq!(
            out["included"][0]["attributes"]["checks"],
            json!([{"status": "passed"}])
        );
        // Outside attributes: untouched.
        assert!(out["data"]["relationships"].get("name-last").is_some());
        assert_eq!(out["data"]["id"], "inq_1");
    }

    #[test]
    fn path_patterns_follow_the_pointer_with_globs_per_segment() {
        let out = apply(&["/data/attributes/fields/*-number"]);
        let fields = out["data"]["attributes"]["fields"].as_object().unwrap();
        assert_eq!(
            fields.keys().collect::<Vec<_>>(),
            ["name-last", "birthdate"]
        );
        assert!(out["data"]["attributes"].get("name-last").is_some());

        let out = apply(&[
            "/included/*/attributes/name-last",
            "/data/attributes/fields/*/value",
        ]);
        assert!(out["included"][0]["attributes"].get("name-last").is_none());
        assert_eq!(
            out["data"]["attributes"]["fields"]["birthdate"],
            json!({"type": "date"})
        );
        assert!(out["data"]["attributes"].get("name-last").is_some());

        // List elements are walked through, never removed; a miss changes nothing.
        assert_eq!(apply(&["/included/0"]), payload());
        assert_eq!(apply(&["/data/nothing/here"]), payload());
        let out = apply(&["/data/*"]);
        assert_eq!(out["data"], json!({}));
    }

    #[test]
    fn escaped_path_segments_match_literal_slashes_and_tildes() {
        let mut value = json!({"data": {"a/b": 1, "c~d": 2, "e": 3}});
        AttributesBlocklist::parse(&strings(&["/data/a~1b", "/data/c~0d"]))
            .unwrap()
            .apply(&mut value);
        assert_eq!(value, json!({"data": {"e": 3}}));
    }

    #[test]
    fn blocklist_patterns_are_validated_and_kept_as_written() {
        let list =
            AttributesBlocklist::parse(&strings(&["name-last", "/data/x", "name-last"])).unwrap();
        assert_eq!(
            serde_json::to_value(&list).unwrap(),
            json!(["name-last", "/data/x"])
        );
        assert!(!list.is_empty());
        assert!(AttributesBlocklist::parse(&[]).unwrap().is_empty());

        let errors = AttributesBlocklist::parse(&strings(&[
            "ok",
            "",
            "fields/name-last",
            "/data//x",
            "/data/",
            "/a~2",
            "a\nb",
            &"x".repeat(257),
        ]))
        .unwrap_err();
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/1", "/2", "/3", "/4", "/5", "/6", "/7"]);
        assert!(errors[1].message.contains("a path pattern starts with `/`"));

        let many: Vec<String> = (0..101).map(|i| format!("k{i}")).collect();
        assert_eq!(
            AttributesBlocklist::parse(&many).unwrap_err()[0].pointer,
            ""
        );
    }

    /// Reference glob matcher: plain recursion, exponential but obviously right.
    fn glob_reference(p: &[u8], t: &[u8]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((b'*', rest)) => (0..=t.len()).any(|i| glob_reference(rest, &t[i..])),
            Some((c, rest)) => t.first() == Some(c) && glob_reference(rest, &t[1..]),
        }
    }

    #[test]
    fn glob_examples() {
        assert!(glob_matches("address-*", "address-city"));
        assert!(glob_matches("address-*", "address-"));
        assert!(!glob_matches("address-*", "address"));
        assert!(glob_matches("*-number", "identification-number"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a*b*c", "aXbYbZc"));
        assert!(!glob_matches("a*b*c", "aXbYbZ"));
        assert!(glob_matches("name-é*", "name-éa"));
    }

    proptest! {
        #[test]
        fn glob_agrees_with_the_reference(pattern in "[ab*]{0,8}", text in "[ab]{0,10}") {
            prop_assert_eq!(
                glob_matches(&pattern, &text),
                glob_reference(pattern.as_bytes(), text.as_bytes())
            );
        }

        #[test]
        fn blocklists_only_remove_members_and_are_idempotent(
            patterns in proptest::collection::vec("/?[a-z*~01/-]{0,12}", 0..5)
        ) {
            if let Ok(list) = AttributesBlocklist::parse(&patterns) {
                let mut once = payload();
                list.apply(&mut once);
                prop_assert!(is_pruned(&payload(), &once));
                let mut twice = once.clone();
                list.apply(&mut twice);
                prop_assert_eq!(twice, once);
            }
        }
    }

    /// Whether `pruned` is `original` with some object members removed (lists keep their length).
    fn is_pruned(original: &Value, pruned: &Value) -> bool {
        match (original, pruned) {
            (Value::Object(a), Value::Object(b)) => b
                .iter()
                .all(|(key, value)| a.get(key).is_some_and(|orig| is_pruned(orig, value))),
            (Value::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| is_pruned(x, y))
            }
            (a, b) => a == b,
        }
    }

    #[test]
    fn retries_follow_the_documented_table() {
        let nominal: Vec<Option<u64>> = (0..=9)
            .map(|n| next_attempt_delay(n, 0.5).map(|d| d.as_secs()))
            .collect();
        assert_eq!(
            nominal,
            [
                Some(0),
                Some(30),
                Some(120),
                Some(480),
                Some(1920),
                Some(7680),
                Some(21_600),
                Some(21_600),
                None,
                None
            ]
        );
        assert_eq!(next_attempt_delay(u32::MAX, 0.5), None);
        assert_eq!(next_attempt_delay(1, 0.0), Some(Duration::from_secs(24)));
        assert_eq!(next_attempt_delay(1, 1.0), Some(Duration::from_secs(36)));
        assert_eq!(next_attempt_delay(1, 7.0), Some(Duration::from_secs(36)));
        assert_eq!(next_attempt_delay(1, -1.0), Some(Duration::from_secs(24)));
        assert_eq!(
            next_attempt_delay(1, f64::NAN),
            Some(Duration::from_secs(30))
        );
        assert_eq!(DELIVERY_TIMEOUT, Duration::from_secs(5));
        assert_eq!(MAX_ATTEMPTS, 8);
    }

    #[test]
    fn a_failing_delivery_holds_later_ones_up_for_at_most_the_order_wait() {
        let since = time::OffsetDateTime::UNIX_EPOCH;
        // The first retries (30 s, then 2 min 30 s after the first attempt) fall within it.
        assert!(!gives_way(since + time::Duration::seconds(30), since));
        assert!(!gives_way(since + ORDER_WAIT, since));
        // A retry due later than that gives way to the waiting delivery.
        assert!(gives_way(
            since + ORDER_WAIT + time::Duration::seconds(1),
            since
        ));
    }

    proptest! {
        #[test]
        fn jittered_delays_stay_within_twenty_percent(n in 1u32..8, jitter in 0.0f64..1.0) {
            let nominal = next_attempt_delay(n, 0.5).unwrap().as_secs_f64();
            let delay = next_attempt_delay(n, jitter).unwrap().as_secs_f64();
            prop_assert!(delay >= nominal * 0.8 - 1e-6 && delay <= nominal * 1.2 + 1e-6);
            if let Some(next) = next_attempt_delay(n + 1, 0.5) {
                prop_assert!(next >= next_attempt_delay(n, 0.5).unwrap());
            }
        }
    }

    fn reason(ip: &str) -> Option<&'static str> {
        forbidden_target(ip.parse().unwrap())
    }

    #[test]
    fn forbidden_targets_are_classified() {
        for (ip, expected) in [
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "this-network"),
            ("10.0.0.1", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "shared-address-space"),
            ("100.127.255.255", "shared-address-space"),
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("169.254.169.254", "link-local"),
            ("192.0.2.10", "documentation"),
            ("198.51.100.1", "documentation"),
            ("203.0.113.7", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("192.0.0.8", "reserved"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "private"),
            ("fc00::1", "unique-local"),
            ("fd12:3456::1", "unique-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("100::1", "reserved"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.1.2.3", "private"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::127.0.0.1", "loopback"),
            ("::ffff:0.0.0.0", "unspecified"),
            ("64:ff9b::192.168.0.1", "private"),
            ("2002:7f00:1::", "loopback"),
            ("2002:a9fe:a9fe::1", "link-local"),
            // Teredo, whatever server and (obfuscated) client it names.
            ("2001::1", "teredo"),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "teredo"),
            ("2001:0:ffff:ffff:ffff:ffff:ffff:ffff", "teredo"),
            ("2001:2::1", "benchmarking"),
            ("2001:2:0:ffff::1", "benchmarking"),
            ("3fff::1", "documentation"),
            ("3fff:fff:ffff::1", "documentation"),
            ("64:ff9b:1::a00:1", "local-use-translation"),
            ("64:ff9b:1:ffff::808:808", "local-use-translation"),
            ("64:ff9b::1:0:0:a00:1", "reserved"),
            ("2001:10::1", "reserved"),
            ("2001:2f::1", "reserved"),
            ("5f00::1", "reserved"),
            ("100:0:0:1::1", "reserved"),
            ("::ffff:0:a00:1", "reserved"),
            // 6to4 and NAT64 carrying the other internal IPv4 ranges.
            ("2002:a00:1::1", "private"),
            ("2002:c0a8:1::1", "private"),
            ("2002:6440:1::1", "shared-address-space"),
            ("64:ff9b::a00:1", "private"),
            ("64:ff9b::7f00:1", "loopback"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            // ISATAP towards an internal IPv4 address, under a public prefix.
            ("2a00:1450:4001::5efe:a00:1", "private"),
            ("2a00:1450:4001::200:5efe:7f00:1", "loopback"),
            ("2a00:1450:4001::5efe:a9fe:a9fe", "link-local"),
        ] {
            assert_eq!(reason(ip), Some(expected), "{ip}");
        }
    }

    proptest! {
        /// Every form that carries an IPv4 address is refused exactly when, and for the reason,
        /// that address is; ISATAP under a public prefix likewise; Teredo always.
        #[test]
        fn embedded_ipv4_addresses_are_judged_as_themselves(
            v4 in any::<u32>(),
            rest in any::<[u16; 5]>(),
        ) {
            let v4 = Ipv4Addr::from(v4);
            let expected = forbidden_v4(v4);
            let [hi, lo] = [(u32::from(v4) >> 16) as u16, u32::from(v4) as u16];
            let [r0, r1, r2, r3, r4] = rest;
            for v6 in [
                v4.to_ipv6_mapped(),
                Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo),
                Ipv6Addr::new(0x2002, hi, lo, r0, r1, r2, r3, r4),
                Ipv6Addr::new(0x2a00, 0x1450, r0, r1, 0, 0x5efe, hi, lo),
                Ipv6Addr::new(0x2a00, 0x1450, r0, r1, 0x200, 0x5efe, hi, lo),
            ] {
                prop_assert_eq!(forbidden_v6(v6), expected, "{}", v6);
            }
            prop_assert_eq!(
                forbidden_v6(Ipv6Addr::new(0x2001, 0, r0, r1, r2, r3, hi, lo)),
                Some("teredo")
            );
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.0.1",
            "192.167.1.1",
            "223.255.255.254",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            // Around Teredo, benchmarking and ORCHID, in 2001::/23 and beyond.
            "2001:1::1",
            "2001:3::1",
            "2001:4:112::1",
            "2001:30::1",
            "2001:200::1",
            "2001:4860:4860::8888",
            "3fff:1000::1",
            "5f01::1",
            "101::1",
            // ISATAP towards a public IPv4 address, and an identifier that only looks like one.
            "2a00:1450:4001::5efe:808:808",
            "2a00:1450:4001:0:1:5efe:a00:1",
        ] {
            assert_eq!(reason(ip), None, "{ip}");
        }
    }

    #[test]
    fn webhook_urls_are_absolute_http_with_a_host_and_no_credentials() {
        let url = parse_webhook_url("https://Example.COM:8443/hooks?x=1").unwrap();
        assert_eq!(url.as_str(), "https://example.com:8443/hooks?x=1");
        assert_eq!(url.host_ip(), None);
        assert_eq!(url.url().port(), Some(8443));
        assert_eq!(
            serde_json::to_value(&url).unwrap(),
            json!("https://example.com:8443/hooks?x=1")
        );
        assert_eq!(
            serde_json::from_value::<WebhookUrl>(json!("http://example.com")).unwrap(),
            "http://example.com/".parse().unwrap()
        );
        assert!(serde_json::from_value::<WebhookUrl>(json!("ftp://example.com")).is_err());

        assert_eq!(
            parse_webhook_url("ftp://example.com/"),
            Err(UrlError::Scheme("ftp".to_owned()))
        );
        assert_eq!(
            parse_webhook_url("file:///etc/passwd"),
            Err(UrlError::Scheme("file".to_owned()))
        );
        assert_eq!(
            parse_webhook_url("/relative/path"),
            Err(UrlError::Invalid(url::ParseError::RelativeUrlWithoutBase))
        );
        assert_eq!(
            parse_webhook_url("https://"),
            Err(UrlError::Invalid(url::ParseError::EmptyHost))
        );
        // WHATWG parsing reads the extra slashes away: the host is `no-host`.
        assert_eq!(
            parse_webhook_url("https:///no-host").unwrap().as_str(),
            "https://no-host/"
        );
        assert_eq!(
            parse_webhook_url("https://user:pw@example.com/"),
            Err(UrlError::Credentials)
        );
        assert_eq!(
            parse_webhook_url("https://user@example.com/"),
            Err(UrlError::Credentials)
        );
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS));
        assert_eq!(parse_webhook_url(&long), Err(UrlError::TooLong));
        assert_eq!(
            parse_webhook_url("gopher://x").unwrap_err().to_string(),
            "`gopher` URLs are not allowed: use https (or http)"
        );
    }

    #[test]
    fn ip_hosts_are_normalised_before_they_are_judged() {
        for (input, ip, expected) in [
            ("http://0x7f.1/", "127.0.0.1", Some("loopback")),
            ("http://2130706433/", "127.0.0.1", Some("loopback")),
            ("http://0177.0.0.1/", "127.0.0.1", Some("loopback")),
            ("http://127.1/", "127.0.0.1", Some("loopback")),
            ("http://[::1]:8080/", "::1", Some("loopback")),
            (
                "http://[::ffff:127.0.0.1]/",
                "::ffff:127.0.0.1",
                Some("loopback"),
            ),
            (
                "https://[::ffff:a9fe:a9fe]/latest",
                "::ffff:169.254.169.254",
                Some("link-local"),
            ),
            ("http://0/", "0.0.0.0", Some("unspecified")),
            ("https://8.8.8.8/", "8.8.8.8", None),
        ] {
            let url = parse_webhook_url(input).unwrap();
            let host = url.host_ip().unwrap();
            assert_eq!(host, ip.parse::<IpAddr>().unwrap(), "{input}");
            assert_eq!(forbidden_target(host), expected, "{input}");
        }
    }
}
