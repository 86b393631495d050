//! The HTML page every report shares: one self-contained file (styles, the tiny check
//! script and every chart inline), with a Content-Security-Policy that forbids any
//! fetch, so a page that tried to load anything would say so instead of silently
//! depending on the network.

use std::fmt::Write as _;

use super::svg::esc;

/// Collects a page's sections and what its charts should show, for the render check.
#[derive(Debug, Default)]
pub struct Page {
    body: String,
    /// (chart id, series with data) in page order.
    expected: Vec<(String, usize)>,
}

impl Page {
    pub fn push(&mut self, html: &str) {
        self.body.push_str(html);
    }

    /// A chart's markup (from `svg::chart` or `svg::timeline_chart`), counted for the
    /// render check by its series with data.
    pub fn chart(&mut self, id: &str, html: String) {
        let series = html.matches("class=\"series").count();
        self.expected.push((id.to_string(), series));
        self.body.push_str(&html);
    }

    pub fn section(&mut self, id: &str, title: &str) {
        let _ = write!(self.body, "<h2 id=\"{}\">{}</h2>", esc(id), esc(title));
    }

    pub fn expected(&self) -> &[(String, usize)] {
        &self.expected
    }

    /// The whole document.
    pub fn finish(self, title: &str) -> String {
        let expected: Vec<String> = self
            .expected
            .iter()
            .map(|(id, n)| format!("{id}:{n}"))
            .collect();
        let mut out = String::with_capacity(self.body.len() + 8192);
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{}</title><style>{CSS}</style><script>{SCRIPT}</script></head><body>\
             <div id=\"js-errors\" hidden></div><div id=\"tip\" hidden></div>{}\
             <div id=\"render-check\" hidden data-expected-charts=\"{}\" data-expected-series=\"{}\"></div>\
             </body></html>\n",
            esc(title),
            self.body,
            self.expected.len(),
            expected.join(","),
        );
        out
    }
}

/// An HTML table: a header row and rows of cells (already escaped HTML); cells after
/// the first are numbers, right-aligned.
pub fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<div class=\"scroll\"><table><thead><tr>");
    for h in header {
        let _ = write!(out, "<th>{h}</th>");
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            if i == 0 {
                let _ = write!(out, "<th>{c}</th>");
            } else {
                let _ = write!(out, "<td>{c}</td>");
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// A number for a table: 4 significant figures or so, no exponent.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        "-".into()
    } else if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 || a == 0.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

pub fn opt_num(v: Option<f64>) -> String {
    v.map_or("-".into(), num)
}

const CSS: &str = "\
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d1d1f;margin:0 auto;padding:16px 24px 48px;max-width:1500px}\
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}\
h3{font-size:15px;margin:20px 0 6px}\
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0}dl.meta dt{color:#666}dl.meta dd{margin:0;word-break:break-all}\
code,pre{font-family:ui-monospace,'DejaVu Sans Mono',Menlo,Consolas,monospace}\
pre{font-size:12px;line-height:1.25;background:#f7f7f8;padding:8px 10px;overflow-x:auto;border-radius:4px}\
.scroll{overflow-x:auto}table{border-collapse:collapse;font-size:13px;margin:6px 0}\
th,td{border:1px solid #ddd;padding:3px 8px;white-space:nowrap}td{text-align:right;font-variant-numeric:tabular-nums}\
thead th{background:#f2f2f4;text-align:center}tbody th{text-align:left;font-weight:normal;color:#333}\
.v{padding:1px 6px;border-radius:3px}.v.better{background:#d9f2d5;color:#17612a}.v.worse{background:#fbdcdc;color:#9b1c1c}.v.noise{color:#666}\
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:12px 20px}\
figure.fig{margin:0;padding:6px 0;max-width:780px}figure.wide{grid-column:1/-1;max-width:1100px}\
figcaption{font-weight:600;font-size:14px;margin-bottom:2px}\
svg.chart{width:100%;height:auto;display:block;overflow:visible}\
svg .grid line{stroke:#e6e6e6}svg .box{fill:none;stroke:#888}\
svg text{font-family:system-ui,sans-serif;fill:#333}svg .xt,svg .yt{font-size:11px}\
svg .xt{text-anchor:middle}svg .yt{text-anchor:end}svg .xl,svg .yl{font-size:12.5px;text-anchor:middle;fill:#111}\
ul.legend{list-style:none;padding:0;margin:2px 0 0 66px;display:flex;flex-wrap:wrap;gap:2px 14px;font-size:12.5px}\
ul.legend .sw{display:inline-block;width:18px;height:0;vertical-align:middle;margin-right:5px}\
ul.legend .sw.box{height:10px;border:0}\
p.note{font-size:12.5px;color:#555;margin:4px 0 0 66px}.muted{color:#666}\
#tip{position:absolute;pointer-events:none;background:rgba(255,255,255,.94);border:1px solid #999;border-radius:3px;\
padding:2px 6px;font-size:12px;white-space:nowrap;box-shadow:0 1px 3px rgba(0,0,0,.2)}\
#js-errors{background:#fbe3e3;border:1px solid #e15759;padding:8px;white-space:pre-wrap}\
p.incomplete{background:#fbe3e3;border:1px solid #e15759;padding:6px 8px}\
div.validity{background:#fff4d6;border:1px solid #f28e2b;padding:6px 8px;margin:6px 0}div.validity ul{margin:4px 0 0 0}\
nav a{margin-right:12px}\
";

/// Catches errors and blocked loads into the page; shows the cursor's position in a
/// chart's data units (inverting its `data-map`); and once loaded writes what was drawn
/// (charts laid out, series with a non-empty box per chart) and the time the page took
/// to load into #render-check, for the headless-browser test.
const SCRIPT: &str = "\
(function(){var errs=[];\
function note(m){errs.push(String(m));var e=document.getElementById('js-errors');if(e){e.textContent=errs.join('\\n');e.hidden=false;}}\
window.addEventListener('error',function(e){note('error: '+e.message);});\
window.addEventListener('unhandledrejection',function(e){note('unhandled rejection: '+e.reason);});\
document.addEventListener('securitypolicyviolation',function(e){note('blocked: '+e.blockedURI+' ('+e.violatedDirective+')');});\
function inv(v,a){var t=(v-a[0])/(a[1]-a[0]);if(a[5])t=1-t;if(!(t>=0&&t<=1))return null;\
return a[4]?Math.pow(10,Math.log10(a[2])+t*(Math.log10(a[3])-Math.log10(a[2]))):a[2]+t*(a[3]-a[2]);}\
function fmt(v){var a=Math.abs(v);return a>=1000?v.toFixed(0):a>=1?v.toFixed(2):v.toPrecision(3);}\
document.addEventListener('mousemove',function(e){var tip=document.getElementById('tip');if(!tip)return;\
var svg=e.target.closest?e.target.closest('svg.chart'):null;if(!svg||!svg.dataset.map){tip.hidden=true;return;}\
var pt=svg.createSVGPoint();pt.x=e.clientX;pt.y=e.clientY;var p=pt.matrixTransform(svg.getScreenCTM().inverse());\
var m=svg.dataset.map.split('|').map(function(s){return s.split(' ').map(Number);});\
var x=inv(p.x,m[0]),y=inv(p.y,m[1]);if(x===null||y===null){tip.hidden=true;return;}\
tip.textContent=svg.dataset.xl+': '+fmt(x)+'  ·  '+svg.dataset.yl+': '+fmt(y);\
tip.style.left=(e.pageX+14)+'px';tip.style.top=(e.pageY+14)+'px';tip.hidden=false;});\
window.addEventListener('load',function(){var out=[],drawn=0,charts=document.querySelectorAll('svg.chart');\
charts.forEach(function(svg){var r=svg.getBoundingClientRect();if(r.width>0&&r.height>0)drawn++;var n=0;\
svg.querySelectorAll('.series').forEach(function(s){var b=s.getBBox();if(b.width>0||b.height>0)n++;});out.push(svg.id+':'+n);});\
var c=document.getElementById('render-check');c.setAttribute('data-charts',charts.length);c.setAttribute('data-drawn',drawn);\
c.setAttribute('data-series',out.join(','));c.setAttribute('data-errors',errs.length);c.setAttribute('data-load-ms',Math.round(performance.now()));c.setAttribute('data-done','1');});})();";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_counts_charts_and_forbids_fetches() {
        let mut p = Page::default();
        p.section("s", "Section <1>");
        p.chart(
            "c1",
            "<svg class=\"chart\"><g class=\"series\"></g><g class=\"series\"></g></svg>".into(),
        );
        p.chart(
            "c2",
            "<svg class=\"chart\"><path class=\"series bar-decode\"/></svg>".into(),
        );
        assert_eq!(p.expected(), [("c1".to_string(), 2), ("c2".to_string(), 1)]);
        let html = p.finish("t & u");
        assert!(html.contains("data-expected-series=\"c1:2,c2:1\""));
        assert!(html.contains("default-src 'none'"));
        assert!(html.contains("<title>t &amp; u</title>"));
        assert!(html.contains("Section &lt;1&gt;"));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "nothing to fetch"
        );
    }

    #[test]
    fn numbers_and_tables() {
        assert_eq!(num(12345.6), "12346");
        assert_eq!(num(123.45), "123.5");
        assert_eq!(num(1.2345), "1.23");
        assert_eq!(num(0.01234), "0.012");
        assert_eq!(opt_num(None), "-");
        let t = table(&["".into(), "a".into()], &[vec!["x".into(), "1".into()]]);
        assert!(t.contains("<th>x</th><td>1</td>"));
    }
}
