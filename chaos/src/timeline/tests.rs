use roxmltree::{Document, Node};

use super::*;

fn op(start_s: f64, latency_ms: f64, outcome: Outcome, kind: &str) -> OpPoint {
    OpPoint {
        start_s,
        latency_ms,
        outcome,
        kind: kind.to_string(),
    }
}

fn fault(start_s: f64, end_s: f64, label: &str) -> FaultSpan {
    FaultSpan {
        start_s,
        end_s,
        label: label.to_string(),
    }
}

fn sample() -> Timeline {
    Timeline {
        title: "register, 3 nodes".to_string(),
        duration_s: 30.0,
        ops: vec![
            op(0.5, 3.0, Outcome::Ok, "write"),
            op(1.0, 250.0, Outcome::Ok, "read"),
            op(2.0, 40.0, Outcome::Fail, "write"),
            op(12.0, 5000.0, Outcome::Unknown, "lin-read"),
            op(29.0, 1.2, Outcome::Ok, "add"),
        ],
        faults: vec![
            fault(5.0, 15.0, "partition {n1} | {n2 n3}"),
            fault(8.0, 12.0, "loss 30%"),
            fault(20.0, 20.0, "kill -9 n2"),
        ],
        leaders: vec![(0.2, Some(1)), (6.0, None), (7.5, Some(3))],
    }
}

fn parse(svg: &str) -> Document<'_> {
    match Document::parse(svg) {
        Ok(doc) => doc,
        Err(e) => panic!("not XML: {e}\n{svg}"),
    }
}

/// The elements whose class list holds `class`.
fn with_class<'a>(doc: &'a Document<'a>, class: &str) -> Vec<Node<'a, 'a>> {
    doc.descendants()
        .filter(|n| {
            n.attribute("class")
                .is_some_and(|c| c.split_whitespace().any(|c| c == class))
        })
        .collect()
}

fn num(node: Node<'_, '_>, attr: &str) -> f64 {
    let v = node.attribute(attr).unwrap_or_default();
    v.parse().unwrap_or_else(|_| panic!("{attr}={v:?}"))
}

fn texts<'a>(doc: &'a Document<'a>) -> Vec<&'a str> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect()
}

#[test]
fn one_element_per_op_fault_and_leader_change() {
    let t = sample();
    let svg = render_svg(&t);
    let doc = parse(&svg);
    assert_eq!(with_class(&doc, "op").len(), t.ops.len());
    assert_eq!(with_class(&doc, "ok").len() - 1, 3, "less the legend's");
    assert_eq!(with_class(&doc, "fail").len() - 1, 1);
    assert_eq!(with_class(&doc, "unknown").len() - 1, 1);
    assert_eq!(with_class(&doc, "band").len(), t.faults.len());
    assert_eq!(with_class(&doc, "shade").len(), t.faults.len());
    assert_eq!(with_class(&doc, "instant").len(), 1);
    // The legend shows one leader line too.
    assert_eq!(with_class(&doc, "leader").len(), t.leaders.len() + 1);
    let texts = texts(&doc);
    for label in ["partition {n1} | {n2 n3}", "loss 30%", "kill -9 n2"] {
        assert!(texts.contains(&label), "{label} missing");
    }
    for label in ["1", "none", "3", "write (2)", "lin-read (1)", "add (1)"] {
        assert!(texts.contains(&label), "{label} missing from {texts:?}");
    }
}

#[test]
fn failures_are_drawn_over_successes() {
    let svg = render_svg(&sample());
    let doc = parse(&svg);
    let order: Vec<&str> = with_class(&doc, "op")
        .iter()
        .filter_map(|n| n.attribute("class"))
        .collect();
    assert_eq!(order, ["op ok", "op ok", "op ok", "op unknown", "op fail"]);
}

#[test]
fn labels_are_escaped() {
    let mut t = sample();
    t.title = "a \"quoted\" & 'odd' <title>".to_string();
    t.faults[0].label = "<&>".to_string();
    t.ops[0].kind = "<&>".to_string();
    t.faults[1].label = "bell\u{7}".to_string();
    let svg = render_svg(&t);
    let doc = parse(&svg);
    let texts = texts(&doc);
    assert!(texts.contains(&"<&>"), "{texts:?}");
    assert!(texts.contains(&"<&> (1)"), "{texts:?}");
    assert!(texts.contains(&"a \"quoted\" & 'odd' <title>"));
    assert!(texts.contains(&"bell\u{fffd}"));
}

#[test]
fn an_empty_timeline_renders() {
    let svg = render_svg(&Timeline::default());
    let doc = parse(&svg);
    assert!(with_class(&doc, "op").is_empty());
    assert!(with_class(&doc, "band").is_empty());
    assert!(texts(&doc).contains(&"no operations"));
}

#[test]
fn zero_latency_is_drawn_on_the_floor() {
    let t = Timeline {
        duration_s: 10.0,
        ops: vec![
            op(1.0, 0.0, Outcome::Ok, "read"),
            op(2.0, 1.0, Outcome::Ok, "read"),
            op(3.0, 0.3, Outcome::Ok, "read"),
            op(4.0, 100.0, Outcome::Ok, "read"),
        ],
        ..Timeline::default()
    };
    let svg = render_svg(&t);
    let doc = parse(&svg);
    let ys: Vec<f64> = with_class(&doc, "op")
        .iter()
        .map(|n| num(*n, "y"))
        .collect();
    assert_eq!(ys.len(), 4);
    assert_eq!(ys[0], ys[1]);
    assert_eq!(ys[2], ys[1]);
    assert!(ys[3] < ys[0], "slower is higher");
    let frame = with_class(&doc, "axis")[0];
    let bottom = num(frame, "y") + num(frame, "height");
    assert!(
        ys[0] < bottom && ys[0] > bottom - 10.0,
        "{} vs {bottom}",
        ys[0]
    );
}

#[test]
fn timeouts_get_ten_seconds_of_headroom() {
    let mut t = sample();
    let svg = render_svg(&t);
    assert!(texts(&parse(&svg)).contains(&"10 s"));
    t.ops.retain(|o| o.outcome != Outcome::Unknown);
    let svg = render_svg(&t);
    let doc = parse(&svg);
    let texts = texts(&doc);
    assert!(texts.contains(&"100 ms") && !texts.contains(&"1 s"));
}

#[test]
fn overlapping_faults_stack_in_lanes() {
    let svg = render_svg(&sample());
    let doc = parse(&svg);
    let ys: Vec<f64> = with_class(&doc, "band")
        .iter()
        .map(|n| num(*n, "y"))
        .collect();
    assert!(ys[0] != ys[1], "overlapping faults share a lane");
    assert_eq!(ys[0], ys[2], "a later fault takes the first free lane");
}

#[test]
fn odd_numbers_do_not_break_the_picture() {
    let mut t = sample();
    t.duration_s = f64::NAN;
    t.ops
        .push(op(f64::NAN, f64::INFINITY, Outcome::Ok, "write"));
    t.ops.push(op(-3.0, f64::NAN, Outcome::Unknown, "write"));
    t.faults.push(fault(25.0, 22.0, "backwards"));
    t.faults.push(fault(f64::NAN, f64::INFINITY, "unbounded"));
    t.leaders.push((f64::INFINITY, Some(u64::MAX)));
    let svg = render_svg(&t);
    assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    let doc = parse(&svg);
    assert_eq!(with_class(&doc, "op").len(), t.ops.len());
}

#[test]
fn fifty_thousand_ops_stay_compact() {
    let ops = (0..50_000)
        .map(|i| op(i as f64 * 0.006, (i % 997) as f64, Outcome::Ok, "write"))
        .collect();
    let t = Timeline {
        duration_s: 300.0,
        ops,
        ..Timeline::default()
    };
    let svg = render_svg(&t);
    assert!(svg.len() < 3_500_000, "{} bytes", svg.len());
    assert_eq!(with_class(&parse(&svg), "op").len(), 50_000);
}
