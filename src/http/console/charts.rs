//! Charts drawn on the server as SVG: no JavaScript, no CDN, readable by screen readers (each
//! chart has a title and a description, and the page shows the figures as a table too).

/// Escapes text for SVG/XML content and attributes.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A vertical bar chart: one bar per `(label, value)`, values shown above the bars with
/// `show`, labels under them (shortened to fit).
pub fn bars(
    id: &str,
    title: &str,
    description: &str,
    data: &[(String, i64)],
    show: impl Fn(i64) -> String,
) -> String {
    let (width, height, left, bottom, top) = (640.0_f64, 240.0_f64, 40.0, 48.0, 20.0);
    let plot_h = height - bottom - top;
    let n = data.len().max(1) as f64;
    let slot = (width - left - 10.0) / n;
    let bar_w = (slot * 0.7).max(2.0);
    let max = data.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1) as f64;
    let mut svg = format!(
        r#"<svg class="chart" id="{id}" role="img" aria-labelledby="{id}-title {id}-desc" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"><title id="{id}-title">{}</title><desc id="{id}-desc">{}</desc>"#,
        esc(title),
        esc(description)
    );
    svg.push_str(&format!(
        r##"<line x1="{left}" y1="{y}" x2="{x2}" y2="{y}" stroke="#555" />"##,
        y = height - bottom,
        x2 = width - 10.0
    ));
    if data.is_empty() {
        svg.push_str(&format!(
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#333">No data yet</text>"##,
            width / 2.0,
            height / 2.0
        ));
    }
    for (i, (label, value)) in data.iter().enumerate() {
        let h = (*value.max(&0) as f64) / max * plot_h;
        let x = left + slot * i as f64 + (slot - bar_w) / 2.0;
        let y = height - bottom - h;
        let short: String = if label.chars().count() > 14 {
            label.chars().take(13).chain(['…']).collect()
        } else {
            label.clone()
        };
        svg.push_str(&format!(
            r##"<rect class="bar" x="{x:.1}" y="{y:.1}" width="{bar_w:.1}" height="{h:.1}" fill="#1f5f8b"><title>{}: {}</title></rect>"##,
            esc(label),
            esc(&show(*value))
        ));
        svg.push_str(&format!(
            r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#222">{}</text>"##,
            x + bar_w / 2.0,
            y - 4.0,
            esc(&show(*value))
        ));
        svg.push_str(&format!(
            r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#222">{}</text>"##,
            x + bar_w / 2.0,
            height - bottom + 14.0 + if data.len() > 8 && i % 2 == 1 { 14.0 } else { 0.0 },
            esc(&short)
        ));
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_chart_draws_one_bar_per_value_and_escapes_labels() {
        let svg = bars(
            "c",
            "Bids <per> lot",
            "d",
            &[("A&B".into(), 3), ("C".into(), 0)],
            |v| v.to_string(),
        );
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 2);
        assert!(svg.contains("Bids &lt;per&gt; lot"));
        assert!(svg.contains("A&amp;B"));
        assert!(!svg.contains("A&B"));
    }
}
