//! The overview: the review queue, the approval rate and inquiries by status, then Connect at a
//! glance in three charts drawn on the server — share tokens by status over the last 14 days,
//! what redemptions ended in, and how long they took. What has no data yet says so.

use askama::Template;
use axum::{Router, extract::State, http::StatusCode, response::Response, routing::get};
use idshare_domain::{inquiry::InquiryStatus, share_token::ShareTokenStatus};
use idshare_store::{
    inquiries,
    share_tokens::{self, ShareToken},
};
use time::{Duration, OffsetDateTime};

use super::{
    Chrome, PageError, Signed,
    svg::{Bar, Series, stacked_bars},
};
use crate::{state::AppState, web};

/// How far back the charts look.
const DAYS: i64 = 14;
/// The most tokens the charts read (a busy organization's last 14 days, sampled from the start).
const MAX_TOKENS: u32 = 20_000;

pub fn routes() -> Router<AppState> {
    Router::new().route("/dashboard/overview", get(show))
}

const STATUS_SERIES: [Series; 5] = [
    Series {
        name: "created",
        colour: "#0b5cad",
    },
    Series {
        name: "pending",
        colour: "#bf8700",
    },
    Series {
        name: "redeemed",
        colour: "#1a7f37",
    },
    Series {
        name: "failed",
        colour: "#b3261e",
    },
    Series {
        name: "expired",
        colour: "#8c959f",
    },
];

fn status_index(status: ShareTokenStatus) -> usize {
    match status {
        ShareTokenStatus::Created => 0,
        ShareTokenStatus::Pending => 1,
        ShareTokenStatus::Redeemed => 2,
        ShareTokenStatus::Failed => 3,
        ShareTokenStatus::Expired => 4,
    }
}

/// Tokens per day of creation (the last [`DAYS`] days, oldest first), split by status now.
fn tokens_by_day(tokens: &[ShareToken], today: time::Date) -> Vec<Bar> {
    (0..DAYS)
        .rev()
        .map(|ago| {
            let day = today - Duration::days(ago);
            let mut values = vec![0; STATUS_SERIES.len()];
            for token in tokens.iter().filter(|t| t.created_at.date() == day) {
                values[status_index(token.status)] += 1;
            }
            Bar {
                label: format!("{:02}-{:02}", u8::from(day.month()), day.day()),
                values,
            }
        })
        .collect()
}

const OUTCOME_SERIES: [Series; 4] = [
    Series {
        name: "completed",
        colour: "#1a7f37",
    },
    Series {
        name: "failed",
        colour: "#b3261e",
    },
    Series {
        name: "stuck",
        colour: "#bf8700",
    },
    Series {
        name: "in review",
        colour: "#6639ba",
    },
];

/// What a redemption ended in, from its destination inquiry's status: completed (or decided
/// after), failed, stuck (waiting for the end user), or in review.
fn outcome_index(inquiry_status: &str) -> usize {
    match inquiry_status {
        "completed" | "approved" => 0,
        "failed" | "declined" => 1,
        "needs_review" => 3,
        _ => 2,
    }
}

fn outcomes(statuses: &[String]) -> Vec<Bar> {
    OUTCOME_SERIES
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut values = vec![0; OUTCOME_SERIES.len()];
            values[i] = statuses.iter().filter(|st| outcome_index(st) == i).count() as u64;
            Bar {
                label: s.name.to_owned(),
                values,
            }
        })
        .collect()
}

const LATENCY_BUCKETS: [(&str, i64); 7] = [
    ("< 100 ms", 100),
    ("< 250 ms", 250),
    ("< 500 ms", 500),
    ("< 1 s", 1_000),
    ("< 2 s", 2_000),
    ("< 5 s", 5_000),
    ("≥ 5 s", i64::MAX),
];

/// Redemption latency (redeem call accepted → token redeemed) as a histogram.
fn latencies(tokens: &[ShareToken]) -> Vec<Bar> {
    let mut counts = [0u64; LATENCY_BUCKETS.len()];
    for token in tokens {
        if let (Some(pending), Some(redeemed)) = (token.pending_at, token.redeemed_at) {
            let ms = (redeemed - pending).whole_milliseconds();
            let bucket = LATENCY_BUCKETS
                .iter()
                .position(|(_, limit)| ms < i128::from(*limit))
                .unwrap_or(LATENCY_BUCKETS.len() - 1);
            counts[bucket] += 1;
        }
    }
    LATENCY_BUCKETS
        .iter()
        .zip(counts)
        .map(|((label, _), count)| Bar {
            label: (*label).to_owned(),
            values: vec![count],
        })
        .collect()
}

/// The share of decisions that approved, in whole percent; `None` before any decision.
fn approval_rate(approved: i64, declined: i64) -> Option<i64> {
    let decided = approved + declined;
    (decided > 0).then(|| (approved * 100 + decided / 2) / decided)
}

/// One status of the inquiries created in the period: how many, and a link to them.
#[derive(Debug)]
struct StatusCount {
    status: &'static str,
    count: i64,
}

#[derive(Debug, Template)]
#[template(path = "dashboard/overview.html")]
struct OverviewPage {
    chrome: Chrome,
    /// Inquiries waiting for a reviewer now.
    needs_review: i64,
    approved: i64,
    decided: i64,
    approval_rate: Option<i64>,
    /// Every status, also those with none, in the order of the inquiry's life.
    inquiries_by_status: Vec<StatusCount>,
    total_inquiries: i64,
    /// `None` when the chart would be empty ("No data yet").
    tokens_chart: Option<String>,
    outcomes_chart: Option<String>,
    latency_chart: Option<String>,
    total_tokens: usize,
    total_redemptions: usize,
}

async fn show(State(state): State<AppState>, signed: Signed) -> Result<Response, PageError> {
    let scope = signed.scope();
    let now: OffsetDateTime = state.now();
    let since = (now - Duration::days(DAYS - 1))
        .date()
        .midnight()
        .assume_utc();
    let mut tx = state.store().begin_read().await?;
    let tokens = share_tokens::created_since(&mut tx, &scope, since, MAX_TOKENS).await?;
    let statuses = share_tokens::redemption_outcomes(&mut tx, &scope, since).await?;
    let counts = inquiries::counts(&mut tx, &scope, since).await?;
    drop(tx);
    let inbound: Vec<ShareToken> = tokens
        .iter()
        .filter(|t| t.destination_org_id == signed.session.user.org_id)
        .cloned()
        .collect();
    let latency_bars = latencies(&inbound);
    let inquiries_by_status: Vec<StatusCount> = InquiryStatus::ALL
        .iter()
        .map(|status| StatusCount {
            status: status.as_str(),
            count: counts
                .created_by_status
                .iter()
                .find(|(s, _)| s == status)
                .map_or(0, |(_, n)| *n),
        })
        .collect();
    let page = OverviewPage {
        chrome: signed.chrome("overview"),
        needs_review: counts.needs_review,
        approved: counts.approved,
        decided: counts.approved + counts.declined,
        approval_rate: approval_rate(counts.approved, counts.declined),
        total_inquiries: inquiries_by_status.iter().map(|s| s.count).sum(),
        inquiries_by_status,
        tokens_chart: (!tokens.is_empty()).then(|| {
            stacked_bars(
                "Share tokens created per day, by status",
                &STATUS_SERIES,
                &tokens_by_day(&tokens, now.date()),
            )
        }),
        outcomes_chart: (!statuses.is_empty())
            .then(|| stacked_bars("Redemption outcomes", &OUTCOME_SERIES, &outcomes(&statuses))),
        latency_chart: latency_bars.iter().any(|b| b.values[0] > 0).then(|| {
            stacked_bars(
                "Redemption latency",
                &[Series {
                    name: "redemptions",
                    colour: "#0b5cad",
                }],
                &latency_bars,
            )
        }),
        total_tokens: tokens.len(),
        total_redemptions: statuses.len(),
    };
    Ok(web::html(StatusCode::OK, page.render()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use idshare_domain::{
        environment::Environment,
        id::{ConnectionId, InquiryId, OrgId, ShareTokenId},
    };
    use time::macros::datetime;

    fn token(
        created: OffsetDateTime,
        status: ShareTokenStatus,
        took_ms: Option<i64>,
    ) -> ShareToken {
        let org = OrgId::generate();
        ShareToken {
            id: ShareTokenId::generate(),
            environment: Environment::Sandbox,
            connection_id: ConnectionId::generate(),
            source_org_id: org.clone(),
            destination_org_id: org,
            source_inquiry_id: InquiryId::generate(),
            status,
            creator_type: "api-key".into(),
            creator_id: "api_x".into(),
            created_at: created,
            updated_at: created,
            expires_at: created + Duration::days(14),
            pending_at: took_ms.map(|_| created),
            redeemed_at: took_ms.map(|ms| created + Duration::milliseconds(ms)),
            failed_at: None,
            failure_reason: None,
            expired_at: None,
            destination_inquiry_id: None,
        }
    }

    #[test]
    fn the_approval_rate_is_rounded_and_absent_before_any_decision() {
        assert_eq!(approval_rate(0, 0), None);
        assert_eq!(approval_rate(3, 0), Some(100));
        assert_eq!(approval_rate(0, 2), Some(0));
        assert_eq!(approval_rate(2, 1), Some(67));
        assert_eq!(approval_rate(1, 7), Some(13), "12.5 rounds up");
    }

    #[test]
    fn tokens_are_counted_on_their_day_and_status() {
        let today = datetime!(2026-11-26 12:00 UTC);
        let tokens = [
            token(today, ShareTokenStatus::Redeemed, Some(300)),
            token(today, ShareTokenStatus::Created, None),
            token(today - Duration::days(13), ShareTokenStatus::Expired, None),
            token(today - Duration::days(14), ShareTokenStatus::Created, None),
        ];
        let bars = tokens_by_day(&tokens, today.date());
        assert_eq!(bars.len(), 14);
        assert_eq!(bars[13].label, "11-26");
        assert_eq!(bars[13].values, [1, 0, 1, 0, 0]);
        assert_eq!(
            bars[0].values,
            [0, 0, 0, 0, 1],
            "13 days ago; 14 is out of range"
        );
    }

    #[test]
    fn outcomes_and_latencies_fall_in_their_buckets() {
        let statuses: Vec<String> = ["completed", "approved", "failed", "pending", "needs_review"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let bars = outcomes(&statuses);
        let totals: Vec<u64> = bars.iter().map(|b| b.values.iter().sum()).collect();
        assert_eq!(totals, [2, 1, 1, 1]);
        let now = datetime!(2026-11-26 12:00 UTC);
        let tokens = [
            token(now, ShareTokenStatus::Redeemed, Some(50)),
            token(now, ShareTokenStatus::Redeemed, Some(700)),
            token(now, ShareTokenStatus::Redeemed, Some(9_000)),
            token(now, ShareTokenStatus::Created, None),
        ];
        let counts: Vec<u64> = latencies(&tokens).iter().map(|b| b.values[0]).collect();
        assert_eq!(counts, [1, 0, 0, 1, 0, 0, 1]);
    }
}
