//! Bar charts drawn on the server as SVG: no script, no external resource, no inline style
//! (the pages' Content-Security-Policy allows none), a `<title>` on every bar for screen readers
//! and tooltips, and every text escaped. The SVG is drawn at its own size in pixels and never
//! scaled on wide screens, so that its labels take the page's font size from the stylesheet; the
//! legend is HTML beside it.

use std::fmt::Write;

/// One category of a chart: its label and one value per series.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub values: Vec<u64>,
}

/// A series: its name and its fill colour (a CSS colour of our own, never user input).
#[derive(Debug, Clone, Copy)]
pub struct Series {
    pub name: &'static str,
    pub colour: &'static str,
}

/// Fits a panel of the overview's two columns at 1280 px.
const WIDTH: u32 = 500;
const HEIGHT: u32 = 220;
const LEFT: u32 = 44;
const BOTTOM: u32 = 40;
const TOP: u32 = 10;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A stacked bar chart followed by its legend (when there are several series); `title` names it
/// for assistive technology.
pub fn stacked_bars(title: &str, series: &[Series], bars: &[Bar]) -> String {
    let max = bars
        .iter()
        .map(|b| b.values.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_height = HEIGHT - BOTTOM - TOP;
    let slot = (WIDTH - LEFT) / u32::try_from(bars.len().max(1)).unwrap_or(1);
    let bar_width = (slot * 7 / 10).max(2);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"{}\" class=\"chart\">",
        escape(title)
    );
    let _ = write!(svg, "<title>{}</title>", escape(title));
    // Axis and the top value.
    let _ = write!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{}\" stroke=\"#8c959f\"/>\
         <line x1=\"{LEFT}\" y1=\"{0}\" x2=\"{WIDTH}\" y2=\"{0}\" stroke=\"#8c959f\"/>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{max}</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text>",
        HEIGHT - BOTTOM,
        LEFT - 6,
        TOP + 12,
        LEFT - 6,
        HEIGHT - BOTTOM,
    );
    // At most seven labels: each keeps the page's font size and needs its room.
    let label_every = bars.len().div_ceil(7).max(1);
    for (i, bar) in bars.iter().enumerate() {
        let index = u32::try_from(i).unwrap_or(0);
        let x = LEFT + index * slot + (slot - bar_width) / 2;
        let mut y = HEIGHT - BOTTOM;
        for (value, s) in bar.values.iter().zip(series) {
            if *value == 0 {
                continue;
            }
            let height = u32::try_from(u64::from(plot_height) * value / max)
                .unwrap_or(0)
                .max(1);
            y -= height;
            let _ = write!(
                svg,
                "<rect x=\"{x}\" y=\"{y}\" width=\"{bar_width}\" height=\"{height}\" fill=\"{}\">\
                 <title>{}: {} {value}</title></rect>",
                s.colour,
                escape(&bar.label),
                escape(s.name)
            );
        }
        if i % label_every == 0 {
            let _ = write!(
                svg,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                x + bar_width / 2,
                HEIGHT - BOTTOM + 20,
                escape(&bar.label)
            );
        }
    }
    svg.push_str("</svg>");
    if series.len() > 1 {
        // HTML, so that it wraps and reads at the page's font size.
        svg.push_str("<ul class=\"legend\">");
        for s in series {
            let _ = write!(
                svg,
                "<li><svg width=\"12\" height=\"12\" aria-hidden=\"true\"><rect width=\"12\" \
                 height=\"12\" fill=\"{}\"/></svg> {}</li>",
                s.colour,
                escape(s.name)
            );
        }
        svg.push_str("</ul>");
    }
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: [Series; 1] = [Series {
        name: "created",
        colour: "#0b5cad",
    }];

    #[test]
    fn bars_are_scaled_to_the_largest_and_titled() {
        let svg = stacked_bars(
            "Tokens",
            &ONE,
            &[
                Bar {
                    label: "a".into(),
                    values: vec![2],
                },
                Bar {
                    label: "b".into(),
                    values: vec![4],
                },
            ],
        );
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("<title>a: created 2</title>"));
        assert!(svg.contains("<title>b: created 4</title>"));
        // The largest bar fills the plot (170 px); the other is half of it.
        assert!(svg.contains("height=\"170\""), "{svg}");
        assert!(svg.contains("height=\"85\""), "{svg}");
        assert!(
            !svg.contains("style="),
            "no inline style: the CSP forbids it"
        );
        assert!(
            svg.contains("width=\"500\" height=\"220\""),
            "drawn at its own size, not scaled: {svg}"
        );
        assert!(
            !svg.contains("font-size"),
            "labels take the page's font size from the stylesheet"
        );
        assert!(
            !svg.contains("class=\"legend\""),
            "one series needs no legend"
        );
    }

    #[test]
    fn labels_are_escaped_and_empty_charts_draw() {
        let svg = stacked_bars(
            "<b>",
            &ONE,
            &[Bar {
                label: "<script>".into(),
                values: vec![0],
            }],
        );
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
        assert!(stacked_bars("empty", &ONE, &[]).ends_with("</svg>"));
    }

    #[test]
    fn several_series_get_an_html_legend() {
        let two = [
            ONE[0],
            Series {
                name: "<expired>",
                colour: "#8c959f",
            },
        ];
        let chart = stacked_bars("Tokens", &two, &[]);
        assert!(
            chart.ends_with("<li><svg width=\"12\" height=\"12\" aria-hidden=\"true\"><rect width=\"12\" height=\"12\" fill=\"#8c959f\"/></svg> &lt;expired&gt;</li></ul>"),
            "{chart}"
        );
    }
}
