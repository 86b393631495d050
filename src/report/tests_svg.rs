use super::*;

#[test]
fn linear_ticks_are_round_and_cover_the_data() {
    let (lo, hi, t) = linear_ticks(0.0, 97.0);
    assert_eq!((lo, hi), (0.0, 100.0));
    assert_eq!(t, vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
    let (lo, hi, t) = linear_ticks(0.13, 0.62);
    assert!(lo <= 0.13 && hi >= 0.62);
    assert_eq!(t, vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]);
    // A flat series still gets a range.
    let (lo, hi, _) = linear_ticks(5.0, 5.0);
    assert!(lo < 5.0 && hi > 5.0);
    let (lo, hi, _) = linear_ticks(0.0, 0.0);
    assert!(lo == 0.0 && hi > 0.0);
}

#[test]
fn log_ticks_by_decade() {
    let (lo, hi, t) = log_ticks(3.0, 4000.0);
    assert_eq!((lo, hi), (1.0, 10_000.0));
    assert_eq!(t, vec![1.0, 10.0, 100.0, 1000.0, 10_000.0]);
    let (_, _, t) = log_ticks(20.0, 300.0);
    assert_eq!(t, vec![10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]);
}

#[test]
fn auto_axis_goes_logarithmic_over_a_wide_range_and_ignores_a_few_tiny_values() {
    let narrow = Axis::auto("ms", [41.0, 100.0, 562.0].into_iter());
    assert_eq!(narrow.scale, Scale::Linear);
    // 200 gaps of 6–300 ms and one of 0.001 ms: log from 1 ms, the tiny one at the edge.
    let mut gaps: Vec<f64> = (0..200).map(|i| 6.0 + i as f64 * 1.5).collect();
    gaps.push(0.001);
    let wide = Axis::auto("ms", gaps.into_iter());
    assert_eq!((wide.scale, wide.floor), (Scale::Log, Some(1.0)));
    assert!(wide.log_note().unwrap().contains("below 1 "));
    let m = Mapping::new(&wide, &[0.001, 6.0, 300.0], 0.0, 100.0);
    assert_eq!((m.lo, m.hi), (1.0, 1000.0));
    assert_eq!(m.px(0.001), m.px(1.0), "clamped to the edge");
}

#[test]
fn tick_labels_are_short() {
    assert_eq!(tick_label(0.0), "0");
    assert_eq!(tick_label(0.25), "0.25");
    assert_eq!(tick_label(2.5), "2.5");
    assert_eq!(tick_label(150.0), "150");
    assert_eq!(tick_label(12_000.0), "12k");
    assert_eq!(tick_label(2_500_000.0), "2.5M");
    assert_eq!(esc("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
}

#[test]
fn server_text_shows_its_controls_on_the_page() {
    assert_eq!(
        esc("m\u{1b}]0;t\u{7}\r\u{202e}<x>\nnext"),
        "m\\x1b]0;t\\x07\\r\\u{202e}&lt;x&gt;\nnext"
    );
}

#[test]
fn chart_has_one_series_element_per_curve_with_data() {
    let series = vec![
        Series {
            name: "a".into(),
            points: vec![(1.0, 0.0), (2.0, 0.5), (4.0, 1.0)],
        },
        Series {
            name: "b <x>".into(),
            points: vec![(3.0, 1.0)],
        },
        Series {
            name: "empty".into(),
            points: vec![],
        },
    ];
    let svg = chart(&Chart {
        id: "t".into(),
        title: "T".into(),
        x: Axis::linear("x (ms)"),
        y: Axis::zero("share"),
        series: &series,
        style: Style::Line,
        note: None,
    });
    assert_eq!(svg.matches("class=\"series\"").count(), 2);
    assert!(svg.contains("b &lt;x&gt;") && !svg.contains("b <x>"));
    assert!(svg.contains("empty (no samples)"));
    assert_eq!(svg.matches("<li>").count(), 3, "legend lists every series");
    assert!(svg.contains("x (ms)"));
    // The hover readout's mapping: x from 1 to 4 over the plot's width, linear.
    let map = attr_of(&svg, "data-map");
    let x: Vec<&str> = map.split('|').next().unwrap().split(' ').collect();
    assert_eq!(x[0].parse::<f64>().unwrap(), LEFT);
    assert_eq!(x[1].parse::<f64>().unwrap(), W - RIGHT);
    assert_eq!(&x[4..], ["0", "0"], "linear, not reversed");
    assert_eq!(attr_of(&svg, "data-xl"), "x (ms)");
}

fn attr_of(html: &str, name: &str) -> String {
    let at = html.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
    html[at..at + html[at..].find('"').unwrap()].to_string()
}
