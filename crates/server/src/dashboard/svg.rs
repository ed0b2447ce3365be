//! Bar charts drawn on the server as SVG: no script, no external resource, no inline style
//! (the pages' Content-Security-Policy allows none), a `<title>` on every bar for screen readers
//! and tooltips, and every text escaped.

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

const WIDTH: u32 = 640;
const HEIGHT: u32 = 220;
const LEFT: u32 = 40;
const BOTTOM: u32 = 40;
const TOP: u32 = 10;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A stacked bar chart with a legend; `title` names it for assistive technology.
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
    let legend_height = 20;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {}\" role=\"img\" \
         aria-label=\"{}\" class=\"chart\">",
        HEIGHT + legend_height,
        escape(title)
    );
    let _ = write!(svg, "<title>{}</title>", escape(title));
    // Axis and the top value.
    let _ = write!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{}\" stroke=\"#8c959f\"/>\
         <line x1=\"{LEFT}\" y1=\"{0}\" x2=\"{WIDTH}\" y2=\"{0}\" stroke=\"#8c959f\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\" fill=\"#57606a\">{max}</text>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\" fill=\"#57606a\">0</text>",
        HEIGHT - BOTTOM,
        LEFT - 4,
        TOP + 10,
        LEFT - 4,
        HEIGHT - BOTTOM,
    );
    let label_every = (bars.len() / 8).max(1);
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
                "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#57606a\">{}</text>",
                x + bar_width / 2,
                HEIGHT - BOTTOM + 14,
                escape(&bar.label)
            );
        }
    }
    // Legend.
    let mut x = LEFT;
    for s in series {
        let _ = write!(
            svg,
            "<rect x=\"{x}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#1b1f24\">{}</text>",
            HEIGHT + 4,
            s.colour,
            x + 14,
            HEIGHT + 13,
            escape(s.name)
        );
        x += 14 + 8 * u32::try_from(s.name.len()).unwrap_or(10) + 16;
    }
    svg.push_str("</svg>");
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
}
