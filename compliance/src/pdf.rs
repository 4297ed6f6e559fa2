//! The report as a PDF: A4 pages set in the PDF standard fonts (nothing to
//! embed), one block per control, and the report's JSON in the document
//! information under `StockadeReport`, so the PDF itself can be verified
//! later.

use printpdf::{
    BuiltinFont, Color, IndirectFontRef, Mm, OffsetDateTime, PdfDocument, PdfDocumentReference,
    PdfLayerReference, Rgb,
};

use crate::report::{HipaaReport, ReportError, Status};

/// The document information key that holds the report's JSON.
const EMBEDDED_KEY: &[u8] = b"StockadeReport";

const PAGE_WIDTH: f32 = 210.0;
const PAGE_HEIGHT: f32 = 297.0;
const MARGIN: f32 = 16.0;
/// Millimetres per point.
const MM_PER_PT: f32 = 0.3528;
/// Helvetica's widest common glyphs are about 0.56 em: wrapping at this
/// average keeps lines inside the margin.
const AVERAGE_GLYPH_EM: f32 = 0.52;

/// Why a PDF cannot be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the PDF: {0}")]
pub struct PdfError(String);

impl HipaaReport {
    /// The report as a PDF document.
    pub fn to_pdf(&self) -> Result<Vec<u8>, PdfError> {
        let created = OffsetDateTime::from_unix_timestamp((self.generated_at_ms / 1000) as i64)
            .map_err(|e| PdfError(format!("the report's date: {e}")))?;
        let title = format!("HIPAA / NIST CSF report - {}", self.cluster);
        let (doc, page, layer) =
            PdfDocument::new(&title, Mm(PAGE_WIDTH), Mm(PAGE_HEIGHT), "report");
        let doc = doc
            .with_author("Stockade")
            .with_creator("stockade report hipaa")
            .with_creation_date(created)
            .with_mod_date(created)
            .with_metadata_date(created)
            .with_document_id(self.digest.chars().take(32).collect());
        let mut pen = Pen::new(&doc, doc.get_page(page).get_layer(layer))?;
        self.write_pages(&mut pen);
        let bytes = doc.save_to_bytes().map_err(|e| PdfError(e.to_string()))?;
        embed_json(&bytes, self)
    }

    fn write_pages(&self, pen: &mut Pen<'_>) {
        pen.line(
            "HIPAA Security Rule / NIST CSF compliance report",
            17.0,
            Style::Bold,
        );
        pen.space(1.0);
        pen.wrapped(
            &format!(
                "Evidence from the live Stockade cluster {}, for each NIST Cybersecurity Framework subcategory of the HIPAA crosswalk that it answers.",
                self.cluster
            ),
            9.5,
            Style::Muted,
        );
        pen.space(2.0);
        for (label, value) in [
            ("Cluster", self.cluster.clone()),
            (
                "Generated",
                format!("{} by node {}", self.generated_at, self.generated_by),
            ),
            (
                "Policy version",
                format!(
                    "{} (state at log index {})",
                    self.policy_version, self.applied_index
                ),
            ),
            ("Nodes", self.nodes.to_string()),
            (
                "Summary",
                format!(
                    "{} met, {} partly met, {} not met",
                    self.summary.met, self.summary.partly_met, self.summary.not_met
                ),
            ),
        ] {
            pen.line(&format!("{label}: {value}"), 10.0, Style::Regular);
        }
        pen.space(3.0);
        for control in &self.controls {
            pen.keep_room(30.0);
            pen.rule();
            pen.line(
                &format!(
                    "{}   [{}]   {}",
                    control.id,
                    control.finding.status.label().to_uppercase(),
                    control.category
                ),
                11.0,
                Style::Status(control.finding.status),
            );
            pen.wrapped(&control.outcome, 9.5, Style::Bold);
            pen.wrapped(
                &format!("HIPAA: {}", control.hipaa.join(", ")),
                8.5,
                Style::Muted,
            );
            pen.wrapped(&control.answer, 8.5, Style::Muted);
            for fact in &control.finding.evidence {
                pen.wrapped(&format!("- {fact}"), 9.0, Style::Regular);
            }
            for gap in &control.finding.gaps {
                pen.wrapped(&format!("> {gap}"), 9.0, Style::Gap);
            }
            pen.space(2.0);
        }
        pen.keep_room(30.0);
        pen.rule();
        pen.wrapped(
            &format!("Digest (SHA-256 of the report's contents): {}", self.digest),
            8.0,
            Style::Muted,
        );
        pen.wrapped(
            &format!("Cluster signature (HMAC-SHA256): {}", self.signature),
            8.0,
            Style::Muted,
        );
        pen.wrapped(
            &format!("CA fingerprint: {}", self.ca_fingerprint),
            8.0,
            Style::Muted,
        );
        pen.wrapped(
            "To check this report later: stockade report verify FILE against the same cluster. The report's data is embedded in this document.",
            8.0,
            Style::Muted,
        );
    }

    /// Reads a report back from a PDF made by [`HipaaReport::to_pdf`].
    pub fn parse_pdf(bytes: &[u8]) -> Result<Self, ReportError> {
        let not = |why: String| ReportError::NotAReport(why);
        let doc = lopdf::Document::load_mem(bytes).map_err(|e| not(format!("not a PDF: {e}")))?;
        let info = doc
            .trailer
            .get(b"Info")
            .and_then(|o| o.as_reference())
            .and_then(|id| doc.get_dictionary(id))
            .map_err(|_| not("the PDF has no document information".into()))?;
        let json = info
            .get(EMBEDDED_KEY)
            .and_then(|o| o.as_str())
            .map_err(|_| not("the PDF holds no report data".into()))?;
        let text = std::str::from_utf8(json).map_err(|e| not(e.to_string()))?;
        Self::parse(text)
    }
}

/// Adds the report's JSON to the document information of `pdf`.
fn embed_json(pdf: &[u8], report: &HipaaReport) -> Result<Vec<u8>, PdfError> {
    let mut doc = lopdf::Document::load_mem(pdf).map_err(|e| PdfError(e.to_string()))?;
    let info_id = doc
        .trailer
        .get(b"Info")
        .and_then(|o| o.as_reference())
        .map_err(|e| PdfError(format!("no document information: {e}")))?;
    let json = serde_json::to_vec(report)
        .unwrap_or_else(|e| unreachable!("a report is always valid JSON: {e}"));
    doc.get_dictionary_mut(info_id)
        .map_err(|e| PdfError(e.to_string()))?
        .set(
            EMBEDDED_KEY,
            lopdf::Object::String(json, lopdf::StringFormat::Literal),
        );
    let mut out = Vec::new();
    doc.save_to(&mut out).map_err(|e| PdfError(e.to_string()))?;
    Ok(out)
}

#[derive(Clone, Copy)]
enum Style {
    Regular,
    Bold,
    Muted,
    Gap,
    Status(Status),
}

/// Writes lines down the pages, starting a new page when one is full.
struct Pen<'a> {
    doc: &'a PdfDocumentReference,
    layer: PdfLayerReference,
    /// The baseline of the next line, from the bottom (mm).
    y: f32,
    regular: IndirectFontRef,
    bold: IndirectFontRef,
}

impl<'a> Pen<'a> {
    fn new(doc: &'a PdfDocumentReference, layer: PdfLayerReference) -> Result<Self, PdfError> {
        let font = |f| doc.add_builtin_font(f).map_err(|e| PdfError(e.to_string()));
        Ok(Pen {
            doc,
            layer,
            y: PAGE_HEIGHT - MARGIN,
            regular: font(BuiltinFont::Helvetica)?,
            bold: font(BuiltinFont::HelveticaBold)?,
        })
    }

    fn new_page(&mut self) {
        let (page, layer) = self.doc.add_page(Mm(PAGE_WIDTH), Mm(PAGE_HEIGHT), "report");
        self.layer = self.doc.get_page(page).get_layer(layer);
        self.y = PAGE_HEIGHT - MARGIN;
    }

    /// Starts a new page unless `mm` are left on this one.
    fn keep_room(&mut self, mm: f32) {
        if self.y - mm < MARGIN {
            self.new_page();
        }
    }

    fn space(&mut self, mm: f32) {
        self.y -= mm;
    }

    /// A thin line across the text width.
    fn rule(&mut self) {
        let line = printpdf::Line {
            points: vec![
                (printpdf::Point::new(Mm(MARGIN), Mm(self.y)), false),
                (
                    printpdf::Point::new(Mm(PAGE_WIDTH - MARGIN), Mm(self.y)),
                    false,
                ),
            ],
            is_closed: false,
        };
        self.layer
            .set_outline_color(Color::Rgb(Rgb::new(0.85, 0.87, 0.9, None)));
        self.layer.set_outline_thickness(0.5);
        self.layer.add_line(line);
        self.y -= 5.0;
    }

    /// One line of text (cut to the page's width by the caller).
    fn line(&mut self, text: &str, size: f32, style: Style) {
        let height = size * MM_PER_PT * 1.35;
        if self.y - height < MARGIN {
            self.new_page();
        }
        let (r, g, b) = match style {
            Style::Regular | Style::Bold => (0.11, 0.14, 0.19),
            Style::Muted => (0.36, 0.4, 0.46),
            Style::Gap => (0.48, 0.29, 0.0),
            Style::Status(Status::Met) => (0.09, 0.41, 0.18),
            Style::Status(Status::PartlyMet) => (0.55, 0.38, 0.0),
            Style::Status(Status::NotMet) => (0.61, 0.11, 0.11),
        };
        let font = match style {
            Style::Bold | Style::Status(_) => &self.bold,
            _ => &self.regular,
        };
        self.layer
            .set_fill_color(Color::Rgb(Rgb::new(r, g, b, None)));
        self.layer.use_text(
            latin1(text),
            size,
            Mm(MARGIN),
            Mm(self.y - size * MM_PER_PT),
            font,
        );
        self.y -= height;
    }

    /// Text wrapped at word boundaries to the page's width.
    fn wrapped(&mut self, text: &str, size: f32, style: Style) {
        let width = PAGE_WIDTH - 2.0 * MARGIN;
        let per_line = (width / (size * MM_PER_PT * AVERAGE_GLYPH_EM)) as usize;
        for line in wrap(text, per_line.max(20)) {
            self.line(&line, size, style);
        }
    }
}

/// Splits `text` into lines of at most `width` characters, at spaces
/// where it can (a longer word, like a digest, is cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        let mut word: Vec<char> = word.chars().collect();
        while word.len() > width {
            if !current.is_empty() {
                lines.push(std::mem::take(&mut current));
            }
            lines.push(word.drain(..width).collect());
        }
        let word: String = word.into_iter().collect();
        let needed =
            current.chars().count() + word.chars().count() + usize::from(!current.is_empty());
        if needed > width && !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&word);
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

/// The standard fonts cover Latin-1: other characters become `?`, and the
/// few this report uses have ASCII spellings.
fn latin1(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '→' => '>',
            '…' => '.',
            '’' | '‘' => '\'',
            '“' | '”' => '"',
            '–' | '—' => '-',
            c if (c as u32) < 0x100 => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_words_and_cuts_only_what_is_too_long() {
        assert_eq!(wrap("one two three", 7), ["one two", "three"]);
        assert_eq!(wrap("", 7), [""]);
        assert_eq!(wrap("abcdefghij k", 4), ["abcd", "efgh", "ij k"]);
        for line in wrap(&"word ".repeat(100), 23) {
            assert!(line.chars().count() <= 23, "{line:?}");
        }
    }

    #[test]
    fn text_outside_latin1_is_spelt_in_ascii() {
        assert_eq!(latin1("a → b … “x” — é ☃"), "a > b . \"x\" - é ?");
    }
}
