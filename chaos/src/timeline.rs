//! The timeline picture of a chaos run: every operation's latency against
//! the time it was invoked, with the fault windows and leader changes over
//! it, in the manner of Jepsen's latency-raw plots.
//!
//! [`render_svg`] writes the SVG text directly. Its elements carry classes
//! so that tests (and a reader's tools) can find them: each operation is one
//! element of class `op` plus its outcome (`ok`, `fail`, `unknown`), each
//! fault one `band` (in the fault lanes above the plot) and one `shade`
//! (across the plot), each leader change one `leader` line.

use std::collections::HashMap;

use svg::Svg;

mod svg;
#[cfg(test)]
mod tests;

/// How an operation ended, as the client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It took effect, and the client was told so.
    Ok,
    /// It did not take effect, and the client was told so.
    Fail,
    /// The client never learned (a timeout, a crash): indeterminate.
    Unknown,
}

/// One operation on the timeline.
#[derive(Clone, Debug)]
pub struct OpPoint {
    /// When the client invoked it, in seconds since the run started.
    pub start_s: f64,
    /// How long the client waited for its answer (or until it gave up), in
    /// milliseconds.
    pub latency_ms: f64,
    /// How it ended.
    pub outcome: Outcome,
    /// What it was, e.g. "write", "read", "lin-read", "add", "read-set".
    pub kind: String,
}

/// One fault window (`end_s == start_s` for an instantaneous fault such as
/// kill -9).
#[derive(Clone, Debug)]
pub struct FaultSpan {
    /// When the fault began, in seconds since the run started.
    pub start_s: f64,
    /// When it was healed, in seconds since the run started.
    pub end_s: f64,
    /// What it was, e.g. "partition {n1} | {n2 n3}".
    pub label: String,
}

/// Everything the picture shows.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// The heading of the picture.
    pub title: String,
    /// How long the run lasted, in seconds (the x axis reaches at least this).
    pub duration_s: f64,
    /// The operations, in any order.
    pub ops: Vec<OpPoint>,
    /// The fault windows, in any order.
    pub faults: Vec<FaultSpan>,
    /// `(time, leader node id)` on each change of leader, `None` when the
    /// cluster had no leader from then on.
    pub leaders: Vec<(f64, Option<u64>)>,
}

const WIDTH: f64 = 1280.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = WIDTH - 240.0;
const TITLE_H: f64 = 48.0;
const PLOT_H: f64 = 470.0;
const BOTTOM_H: f64 = 52.0;
const LANE_H: f64 = 17.0;
const LEADER_ROW_H: f64 = 13.0;
const MAX_LEADER_ROWS: usize = 3;
/// Past this many lanes, fault bands share them (their labels may collide).
const MAX_FAULT_LANES: usize = 10;
/// Inner padding of the plot, so that dots on the floor clear the axis.
const PAD: f64 = 6.0;
/// Rough width of one character of the 11 px sans-serif labels.
const CHAR_W: f64 = 6.3;
/// Latency the y axis starts at; anything faster is drawn on it.
const FLOOR_MS: f64 = 1.0;
/// The y axis reaches this when some operation's outcome is unknown.
const TIMEOUT_HEADROOM_MS: f64 = 10_000.0;

const OUTCOMES: [(Outcome, &str, &str); 3] = [
    (Outcome::Ok, "ok", "ok"),
    (Outcome::Unknown, "unknown", "unknown / indeterminate"),
    (Outcome::Fail, "fail", "fail"),
];
/// Marker shapes, one per kind of operation (cycling past six kinds),
/// centred on the origin, each of about the area of a circle of radius 1.7.
const MARKERS: [&str; 6] = [
    r#"<circle r="1.7"/>"#,
    r#"<rect x="-1.5" y="-1.5" width="3" height="3"/>"#,
    r#"<path d="M0,-2.4L2.1,1.3H-2.1Z"/>"#,
    r#"<path d="M0,-2.2L2.2,0L0,2.2L-2.2,0Z"/>"#,
    r#"<path d="M0,2.4L2.1,-1.3H-2.1Z"/>"#,
    r#"<path d="M-.7,-2.1h1.4v1.4h1.4v1.4h-1.4v1.4h-1.4v-1.4h-1.4v-1.4h1.4Z"/>"#,
];
const FAULT_COLOURS: [&str; 5] = ["#5b6bc0", "#8e6bb0", "#4a90a4", "#8c7a5b", "#6f7f8f"];
const STYLE: &str = "text{font-family:'DejaVu Sans',Verdana,sans-serif;font-size:11px;fill:#222}\
.title{font-size:16px;font-weight:bold}.head{font-weight:bold}.sub{fill:#555}.axis{stroke:#333;fill:none}\
.grid{stroke:#e3e3e3}.grid.minor{stroke:#f2f2f2}.tick{stroke:#333}\
.op{fill-opacity:.7}.ok{fill:#2ca02c}.fail{fill:#d62728}.unknown{fill:#ff8c00}\
.leader{stroke:#333;stroke-width:.8;stroke-opacity:.6}.lbl{font-size:10px;fill:#333}\
.kind{fill:#555}.shade{fill-opacity:.1}.shade.instant{fill-opacity:.45}.band{fill-opacity:.35}";

/// Draws `timeline` as a standalone SVG document.
///
/// Operations are drawn at the time they were invoked, at their latency on
/// a log scale from 1 ms (faster ones, including 0 ms, sit on the floor) to
/// a little above the slowest, and to at least 10 s when some outcome is
/// unknown, so that timeouts show. Failed operations are drawn last so that
/// they stay visible among many successful ones.
pub fn render_svg(timeline: &Timeline) -> String {
    let kinds = kinds(&timeline.ops);
    let scale = Scale::new(timeline);
    let faults = FaultLayout::new(&timeline.faults, &scale);
    let leaders = LeaderLayout::new(&timeline.leaders, &scale);
    // The strips above the plot, then the plot, shift everything down.
    let strip_top = TITLE_H + 6.0;
    let leader_top = strip_top + faults.lanes as f64 * LANE_H;
    let plot_top = leader_top + leaders.rows as f64 * LEADER_ROW_H + 4.0;
    let scale = Scale {
        top: plot_top,
        ..scale
    };
    let height = plot_top + PLOT_H + BOTTOM_H;

    let mut svg = Svg::default();
    svg.raw(format_args!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}"><style>{STYLE}</style><defs>"#
    ));
    for (i, marker) in MARKERS.iter().enumerate() {
        // Wrapped in a group so that the id sits on a known element.
        svg.raw(format_args!(r#"<g id="m{i}">{marker}</g>"#));
    }
    svg.raw(format_args!(
        r##"</defs><rect width="{WIDTH}" height="{height}" fill="#fff"/>"##
    ));
    svg.text(LEFT, 24.0, "title", &timeline.title);
    let summary = format!(
        "{} operations over {:.1} s, {} faults, {} leader changes",
        timeline.ops.len(),
        scale.x_max,
        timeline.faults.len(),
        timeline.leaders.len()
    );
    svg.text(LEFT, 40.0, "sub", &summary);

    axes(&mut svg, &scale);
    faults.draw(&mut svg, &timeline.faults, &scale, strip_top);
    ops(&mut svg, &timeline.ops, &kinds, &scale);
    // Over the dots, which would hide them where operations are dense.
    leaders.draw(&mut svg, &timeline.leaders, &scale, leader_top);
    legend(&mut svg, timeline, &kinds, plot_top);
    svg.raw(format_args!("</svg>\n"));
    svg.out
}

/// The kinds of operation in order of first appearance.
fn kinds(ops: &[OpPoint]) -> Vec<&str> {
    let mut kinds: Vec<&str> = Vec::new();
    for op in ops {
        if !kinds.contains(&op.kind.as_str()) {
            kinds.push(&op.kind);
        }
    }
    kinds
}

/// Maps seconds and milliseconds to the plot's pixels.
#[derive(Clone, Copy, Debug)]
struct Scale {
    x_max: f64,
    /// log10 of the latency at the top of the plot.
    log_top: f64,
    /// The plot's top edge in pixels.
    top: f64,
}

impl Scale {
    fn new(t: &Timeline) -> Scale {
        let ends = t.ops.iter().map(|o| o.start_s);
        let ends = ends.chain(t.faults.iter().flat_map(|f| [f.start_s, f.end_s]));
        let ends = ends.chain(t.leaders.iter().map(|l| l.0));
        let x_max = ends.filter(|v| v.is_finite()).fold(t.duration_s, f64::max);
        let x_max = if x_max.is_finite() && x_max > 0.0 {
            x_max
        } else {
            1.0
        };
        let slowest = t
            .ops
            .iter()
            .map(|o| o.latency_ms)
            .filter(|v| v.is_finite())
            .fold(10.0, f64::max);
        let timeouts = t.ops.iter().any(|o| o.outcome == Outcome::Unknown);
        let slowest = if timeouts {
            slowest.max(TIMEOUT_HEADROOM_MS)
        } else {
            slowest
        };
        Scale {
            x_max,
            log_top: slowest.log10() + 0.15,
            top: TITLE_H,
        }
    }

    fn bottom(&self) -> f64 {
        self.top + PLOT_H
    }

    /// `s` seconds clamped to the plot's time (0 for NaN).
    fn x_s(&self, s: f64) -> f64 {
        // max and min (unlike clamp) take the other operand for NaN.
        s.max(0.0).min(self.x_max)
    }

    /// The pixel column of `s` seconds (clamped to the plot).
    fn x(&self, s: f64) -> f64 {
        let s = self.x_s(s);
        LEFT + s / self.x_max * (RIGHT - LEFT)
    }

    /// The pixel row of `ms` milliseconds (clamped to the plot).
    fn y(&self, ms: f64) -> f64 {
        let log = ms.max(FLOOR_MS).log10().min(self.log_top);
        let frac = (log - FLOOR_MS.log10()) / (self.log_top - FLOOR_MS.log10());
        self.bottom() - PAD - frac * (PLOT_H - 2.0 * PAD)
    }
}

/// The frame, grid, ticks and axis titles.
fn axes(svg: &mut Svg, s: &Scale) {
    let (top, bottom) = (s.top, s.bottom());
    // Time: about ten ticks at a round step.
    let step = nice_step(s.x_max / 10.0);
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    let ticks = (s.x_max / step + 1e-9).floor() as usize;
    for i in 0..=ticks {
        let t = i as f64 * step;
        let x = s.x(t);
        svg.line("grid", x, top, x, bottom);
        svg.line("tick", x, bottom, x, bottom + 5.0);
        svg.text_anchored(x, bottom + 18.0, "", "middle", &format!("{t:.decimals$}"));
    }
    // Latency: decades, with faint lines at 2..9 times each.
    let decades = s.log_top.floor() as i32;
    for d in 0..=decades {
        let base = 10f64.powi(d);
        for m in 1..10 {
            let ms = base * m as f64;
            if ms.log10() > s.log_top {
                break;
            }
            let y = s.y(ms);
            let labelled = m == 1 || (decades < 2 && (m == 2 || m == 5));
            let class = if m == 1 { "grid" } else { "grid minor" };
            svg.line(class, LEFT, y, RIGHT, y);
            if labelled {
                svg.line("tick", LEFT - 5.0, y, LEFT, y);
                svg.text_anchored(LEFT - 8.0, y + 4.0, "", "end", &fmt_ms(ms));
            }
        }
    }
    svg.raw(format_args!(
        r#"<rect class="axis" x="{LEFT}" y="{top:.1}" width="{:.1}" height="{PLOT_H}"/>"#,
        RIGHT - LEFT
    ));
    let mid = (LEFT + RIGHT) / 2.0;
    svg.text_anchored(mid, bottom + 38.0, "", "middle", "seconds since start");
    let ymid = top + PLOT_H / 2.0;
    svg.raw(format_args!(
        r#"<text x="18" y="{ymid:.1}" text-anchor="middle" transform="rotate(-90 18 {ymid:.1})">latency (log scale)</text>"#
    ));
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|&v| v >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag)
}

/// A latency as a tick label: "20 ms", "1 s".
fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", ms / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

/// Which lane each fault's band (with its label) goes in.
struct FaultLayout {
    lane: Vec<usize>,
    lanes: usize,
    /// Where each label starts.
    label_x: Vec<f64>,
}

impl FaultLayout {
    fn new(faults: &[FaultSpan], s: &Scale) -> FaultLayout {
        let mut spans = Vec::with_capacity(faults.len());
        let mut label_x = Vec::with_capacity(faults.len());
        for f in faults {
            let (x0, x1) = band_px(f, s);
            let width = f.label.chars().count() as f64 * CHAR_W;
            let lx = (x0 + 3.0).min(RIGHT - width - 3.0).max(LEFT);
            label_x.push(lx);
            spans.push((x0.min(lx), x1.max(lx + width + 6.0)));
        }
        let (lane, lanes) = assign_lanes(&spans, MAX_FAULT_LANES);
        FaultLayout {
            lane,
            lanes,
            label_x,
        }
    }

    fn draw(&self, svg: &mut Svg, faults: &[FaultSpan], s: &Scale, strip_top: f64) {
        for (i, f) in faults.iter().enumerate() {
            let (x0, x1) = band_px(f, s);
            let colour = FAULT_COLOURS[i % FAULT_COLOURS.len()];
            let y = strip_top + self.lane[i] as f64 * LANE_H;
            let instant = if f.end_s > f.start_s { "" } else { " instant" };
            let (start, end) = (s.x_s(f.start_s), s.x_s(f.end_s.max(f.start_s)));
            svg.raw(format_args!(r#"<g class="fault"><title>"#));
            svg.escaped(&format!("{}: {start:.2}–{end:.2} s", f.label));
            svg.raw(format_args!(
                r#"</title><rect class="shade{instant}" fill="{colour}" x="{x0:.1}" y="{:.1}" width="{:.1}" height="{PLOT_H}"/>"#,
                s.top,
                x1 - x0
            ));
            svg.raw(format_args!(
                r#"<rect class="band" fill="{colour}" x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" rx="2"/>"#,
                x1 - x0,
                LANE_H - 3.0
            ));
            svg.text(self.label_x[i], y + LANE_H - 6.0, "", &f.label);
            svg.raw(format_args!("</g>"));
        }
    }
}

/// The pixel columns of a fault's band: at least 2 px wide.
fn band_px(f: &FaultSpan, s: &Scale) -> (f64, f64) {
    let x0 = s.x(f.start_s);
    let x1 = s.x(f.end_s).max(x0);
    if x1 - x0 >= 2.0 {
        (x0, x1)
    } else {
        (x0 - 1.0, x0 + 1.0)
    }
}

/// Which row each leader change's label goes in.
struct LeaderLayout {
    row: Vec<usize>,
    rows: usize,
}

impl LeaderLayout {
    fn new(leaders: &[(f64, Option<u64>)], s: &Scale) -> LeaderLayout {
        let spans: Vec<(f64, f64)> = leaders
            .iter()
            .map(|(t, id)| {
                let x = s.x(*t);
                (x, x + 4.0 + leader_label(*id).len() as f64 * CHAR_W)
            })
            .collect();
        let (row, rows) = assign_lanes(&spans, MAX_LEADER_ROWS);
        LeaderLayout { row, rows }
    }

    fn draw(&self, svg: &mut Svg, leaders: &[(f64, Option<u64>)], s: &Scale, rows_top: f64) {
        for (i, (t, id)) in leaders.iter().enumerate() {
            let x = s.x(*t);
            let y = rows_top + (self.row[i] as f64 + 1.0) * LEADER_ROW_H - 3.0;
            svg.line("leader", x, y - 9.0, x, s.bottom());
            svg.text(x + 2.0, y, "lbl", &leader_label(*id));
        }
    }
}

fn leader_label(id: Option<u64>) -> String {
    id.map_or_else(|| "none".to_string(), |id| id.to_string())
}

/// Greedy interval colouring: each span `(from, to)` (in pixels) goes in
/// the first lane free at its start; past `max` lanes, in the one that
/// frees first. Returns each span's lane and the number of lanes used.
fn assign_lanes(spans: &[(f64, f64)], max: usize) -> (Vec<usize>, usize) {
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by(|&a, &b| spans[a].0.total_cmp(&spans[b].0));
    let mut lane_end: Vec<f64> = Vec::new();
    let mut lane = vec![0; spans.len()];
    for i in order {
        let (from, to) = spans[i];
        let l = match lane_end.iter().position(|&end| end <= from) {
            Some(l) => l,
            None if lane_end.len() < max => {
                lane_end.push(f64::NEG_INFINITY);
                lane_end.len() - 1
            }
            None => (0..lane_end.len())
                .min_by(|&a, &b| lane_end[a].total_cmp(&lane_end[b]))
                .unwrap_or(0),
        };
        lane_end[l] = to;
        lane[i] = l;
    }
    (lane, lane_end.len())
}

/// One dot per operation: ok first, then unknown, then failed on top.
fn ops(svg: &mut Svg, ops: &[OpPoint], kinds: &[&str], s: &Scale) {
    let marker: HashMap<&str, usize> = kinds
        .iter()
        .enumerate()
        .map(|(i, k)| (*k, i % MARKERS.len()))
        .collect();
    svg.raw(format_args!(r#"<g class="ops">"#));
    if ops.is_empty() {
        let (x, y) = ((LEFT + RIGHT) / 2.0, s.top + PLOT_H / 2.0);
        svg.text_anchored(x, y, "sub", "middle", "no operations");
    }
    for (outcome, class, _) in OUTCOMES {
        for op in ops.iter().filter(|o| o.outcome == outcome) {
            let m = marker.get(op.kind.as_str()).copied().unwrap_or(0);
            svg.raw(format_args!(
                r##"<use class="op {class}" xlink:href="#m{m}" x="{:.1}" y="{:.1}"/>"##,
                s.x(op.start_s),
                s.y(op.latency_ms)
            ));
        }
    }
    svg.raw(format_args!("</g>"));
}

/// Outcomes and kinds (with counts), faults and leader changes, to the
/// right of the plot.
fn legend(svg: &mut Svg, t: &Timeline, kinds: &[&str], top: f64) {
    let x = RIGHT + 22.0;
    let mut y = top + 8.0;
    let heading = |svg: &mut Svg, y: &mut f64, text: &str| {
        svg.text(x, *y + 4.0, "head", text);
        *y += 18.0;
    };
    heading(svg, &mut y, "outcome");
    for (outcome, class, name) in OUTCOMES {
        let n = t.ops.iter().filter(|o| o.outcome == outcome).count();
        svg.raw(format_args!(
            r##"<use class="{class}" xlink:href="#m0" transform="translate({:.1} {y:.1}) scale(2.2)"/>"##,
            x + 6.0
        ));
        svg.text(x + 18.0, y + 4.0, "", &format!("{name} ({n})"));
        y += 16.0;
    }
    y += 8.0;
    heading(svg, &mut y, "operation");
    for (i, kind) in kinds.iter().enumerate() {
        let n = t.ops.iter().filter(|o| o.kind == *kind).count();
        svg.raw(format_args!(
            r##"<use class="kind" xlink:href="#m{}" transform="translate({:.1} {y:.1}) scale(2.2)"/>"##,
            i % MARKERS.len(),
            x + 6.0
        ));
        svg.text(x + 18.0, y + 4.0, "", &format!("{kind} ({n})"));
        y += 16.0;
    }
    y += 8.0;
    heading(svg, &mut y, "cluster");
    svg.raw(format_args!(
        r#"<rect fill="{}" fill-opacity=".35" x="{x}" y="{:.1}" width="12" height="10" rx="2"/>"#,
        FAULT_COLOURS[0],
        y - 5.0
    ));
    svg.text(x + 18.0, y + 4.0, "", "fault window");
    y += 16.0;
    svg.line("leader", x + 6.0, y - 7.0, x + 6.0, y + 6.0);
    svg.text(x + 18.0, y + 4.0, "", "new leader (node id)");
}
