//! A small writer of SVG text.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// A string of SVG being written.
#[derive(Default)]
pub(super) struct Svg {
    pub(super) out: String,
}

impl Svg {
    pub(super) fn raw(&mut self, args: fmt::Arguments<'_>) {
        // Writing to a String cannot fail.
        let _ = self.out.write_fmt(args);
    }

    pub(super) fn escaped(&mut self, text: &str) {
        self.out.push_str(&escape(text));
    }

    pub(super) fn line(&mut self, class: &str, x1: f64, y1: f64, x2: f64, y2: f64) {
        self.raw(format_args!(
            r#"<line class="{class}" x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}"/>"#
        ));
    }

    pub(super) fn text(&mut self, x: f64, y: f64, class: &str, text: &str) {
        self.text_anchored(x, y, class, "start", text);
    }

    pub(super) fn text_anchored(&mut self, x: f64, y: f64, class: &str, anchor: &str, text: &str) {
        self.raw(format_args!(r#"<text x="{x:.1}" y="{y:.1}""#));
        if !class.is_empty() {
            self.raw(format_args!(r#" class="{class}""#));
        }
        if anchor != "start" {
            self.raw(format_args!(r#" text-anchor="{anchor}""#));
        }
        self.raw(format_args!(">"));
        self.escaped(text);
        self.raw(format_args!("</text>"));
    }
}

/// `text` with XML's special characters replaced by entities, and the
/// control characters XML cannot hold by U+FFFD.
fn escape(text: &str) -> Cow<'_, str> {
    let plain = |c: char| !matches!(c, '<' | '>' | '&' | '"' | '\'') && !forbidden(c);
    if text.chars().all(plain) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if forbidden(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether XML 1.0 forbids `c` in text.
fn forbidden(c: char) -> bool {
    (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{fffe}' | '\u{ffff}')
}
