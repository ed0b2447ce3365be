//! Times on pages as `<time datetime="…" title="2026-12-07 17:34:05 UTC">3 hours ago</time>`:
//! readable without script, the exact time on hover. `local-time.js` then rewrites the title
//! and the text into the browser's locale and time zone.

use std::fmt;

use idshare_domain::time_format::{format_exact, format_timestamp, relative_time};
use time::OffsetDateTime;

/// One point in time as a page shows it, relative to when the page was drawn.
#[derive(Debug, Clone)]
pub struct Moment {
    iso: String,
    exact: String,
    relative: String,
}

impl Moment {
    pub fn new(at: OffsetDateTime, now: OffsetDateTime) -> Self {
        Self {
            iso: format_timestamp(at),
            exact: format_exact(at),
            relative: relative_time(at, now),
        }
    }
}

/// Written as HTML: every part is our own formatting of a timestamp (digits, letters, `-`, `:`,
/// `.`, spaces), never user input, so nothing needs escaping.
impl fmt::Display for Moment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<time datetime=\"{}\" title=\"{}\" class=\"relative\">{}</time>",
            self.iso, self.exact, self.relative
        )
    }
}

impl askama::filters::HtmlSafe for Moment {}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_moment_is_a_time_element_with_the_exact_time_on_hover() {
        let moment = Moment::new(
            datetime!(2026-12-07 14:00 UTC),
            datetime!(2026-12-07 17:30 UTC),
        );
        assert_eq!(
            moment.to_string(),
            "<time datetime=\"2026-12-07T14:00:00.000Z\" title=\"2026-12-07 14:00:00 UTC\" \
             class=\"relative\">3 hours ago</time>"
        );
    }
}
