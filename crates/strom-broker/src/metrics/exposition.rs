//! The Prometheus text exposition format, version 0.0.4: `# HELP` and `# TYPE` lines
//! once per metric family, then its samples, one per line, as
//! `name{label="value",...} value`. Label values escape `\`, `"` and newlines; HELP
//! text escapes `\` and newlines. A histogram is written as cumulative
//! `_bucket{le="..."}` samples ending with `le="+Inf"`, then `_sum` and `_count`.

use std::fmt::Write;

use super::histogram::HistogramSnapshot;

/// The `Content-Type` of a scrape answer in this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type, as its `# TYPE` line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Builds one scrape answer. Call [`family`](Self::family) before a family's samples;
/// each family must be written in one piece (the format requires its samples to be
/// together).
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        debug_assert!(valid_name(name), "bad metric name {name}");
        let _ = writeln!(
            self.out,
            "# HELP {name} {}\n# TYPE {name} {}",
            escape_help(help),
            kind.name()
        );
    }

    /// One sample of an integer-valued counter or gauge.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: i64) {
        self.series(name, labels, None);
        let _ = writeln!(self.out, " {value}");
    }

    /// One sample with a floating-point value.
    pub fn sample_f64(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.series(name, labels, None);
        self.out.push(' ');
        push_f64(&mut self.out, value);
        self.out.push('\n');
    }

    /// The samples of one histogram series: every bucket (cumulative), +Inf, sum, count.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
        let bucket = format!("{name}_bucket");
        let mut le = String::new();
        for (bound, count) in &h.buckets {
            le.clear();
            push_f64(&mut le, *bound);
            self.series(&bucket, labels, Some(&le));
            let _ = writeln!(self.out, " {count}");
        }
        self.series(&bucket, labels, Some("+Inf"));
        let _ = writeln!(self.out, " {}", h.count);
        self.sample_f64(&format!("{name}_sum"), labels, h.sum_seconds);
        self.sample(&format!("{name}_count"), labels, h.count as i64);
    }

    pub fn finish(self) -> String {
        self.out
    }

    fn series(&mut self, name: &str, labels: &[(&str, &str)], le: Option<&str>) {
        self.out.push_str(name);
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let mut first = true;
        for (key, value) in labels.iter().copied().chain(le.map(|v| ("le", v))) {
            debug_assert!(valid_label_name(key), "bad label name {key}");
            if !first {
                self.out.push(',');
            }
            first = false;
            self.out.push_str(key);
            self.out.push_str("=\"");
            escape_label_value(&mut self.out, value);
            self.out.push('"');
        }
        self.out.push('}');
    }
}

/// Floats as Go's `strconv.ParseFloat` reads them; Rust's shortest round-trip form is
/// one (`0.00025`, `10`, `1e-7` is written `0.0000001`).
fn push_f64(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
    }
}

fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::histogram::Histogram;
    use super::*;

    #[test]
    fn help_type_and_samples() {
        let mut e = Exposition::new();
        e.family("strom_x_total", Kind::Counter, "Things.\nCounted \\ here.");
        e.sample("strom_x_total", &[("api", "Produce"), ("error", "NONE")], 7);
        e.family("strom_open", Kind::Gauge, "Open things.");
        e.sample("strom_open", &[], -1);
        assert_eq!(
            e.finish(),
            "# HELP strom_x_total Things.\\nCounted \\\\ here.\n\
             # TYPE strom_x_total counter\n\
             strom_x_total{api=\"Produce\",error=\"NONE\"} 7\n\
             # HELP strom_open Open things.\n\
             # TYPE strom_open gauge\n\
             strom_open -1\n"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut e = Exposition::new();
        e.family("g", Kind::Gauge, "h");
        e.sample("g", &[("group", "a\"b\\c\nd}e,f=g")], 1);
        let text = e.finish();
        assert!(
            text.ends_with("g{group=\"a\\\"b\\\\c\\nd}e,f=g\"} 1\n"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 3, "the newline was escaped");
    }

    #[test]
    fn histograms_are_cumulative_and_end_with_inf() {
        static BOUNDS: &[f64] = &[0.001, 0.01, 0.1];
        let h = Histogram::new(BOUNDS);
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_millis(7));
        h.observe(Duration::from_secs(2));
        let mut e = Exposition::new();
        e.family("lat_seconds", Kind::Histogram, "Latency.");
        e.histogram("lat_seconds", &[("api", "Fetch")], &h.snapshot());
        let text = e.finish();
        let expected = "# HELP lat_seconds Latency.\n\
             # TYPE lat_seconds histogram\n\
             lat_seconds_bucket{api=\"Fetch\",le=\"0.001\"} 1\n\
             lat_seconds_bucket{api=\"Fetch\",le=\"0.01\"} 3\n\
             lat_seconds_bucket{api=\"Fetch\",le=\"0.1\"} 3\n\
             lat_seconds_bucket{api=\"Fetch\",le=\"+Inf\"} 4\n\
             lat_seconds_sum{api=\"Fetch\"} 2.0125\n\
             lat_seconds_count{api=\"Fetch\"} 4\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn floats_are_written_as_prometheus_reads_them() {
        let mut s = String::new();
        for v in [0.00025, 10.0, 1e-7, f64::INFINITY, f64::NAN, -2.5] {
            push_f64(&mut s, v);
            s.push(' ');
        }
        assert_eq!(s, "0.00025 10 0.0000001 +Inf NaN -2.5 ");
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("strom_requests_total"));
        assert!(!valid_name("9lives"));
        assert!(!valid_name("a-b"));
        assert!(valid_label_name("le"));
        assert!(!valid_label_name("__name"));
    }
}
