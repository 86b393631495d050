//! The terminal table's lines for the GPUs' energy and for the metrics of sources
//! other than the server's own (`--metrics-url NAME=URL`).

use crate::console::printable;
use crate::metrics::Summary;
use crate::metrics::server::energy::Energy;

/// `energy     250.0 J on 2 GPUs (energy counter), mean 25.0 W; 0.500 J per output
/// token, 2.00 output tokens per J`.
pub fn line(e: &Energy) -> String {
    let mut out = format!(
        "energy     {:.1} J on {} GPU{} ({})",
        e.joules,
        e.gpus,
        if e.gpus == 1 { "" } else { "s" },
        e.source.as_str()
    );
    if let Some(w) = e.mean_power_w {
        out.push_str(&format!(", mean {w:.1} W"));
    }
    if let (Some(j), Some(t)) = (e.j_per_output_token, e.output_tokens_per_j) {
        out.push_str(&format!(
            "; {j:.4} J per output token, {t:.2} output tokens per J"
        ));
    }
    out.push('\n');
    out
}

/// Each other source's series, led by its name instead of `server`, then the energy.
pub fn lines(
    s: &Summary,
    source_lines: impl Fn(&str, &crate::metrics::server_saved::ServerMetrics) -> String,
) -> String {
    let mut out = String::new();
    for (name, m) in s.metric_sources.iter() {
        out.push_str(&source_lines(&printable(name), m));
    }
    if let Some(e) = &s.energy {
        out.push_str(&line(e));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::server::energy::EnergySource;

    #[test]
    fn the_energy_line_gives_the_figures_and_their_source() {
        let mut e = Energy {
            source: EnergySource::EnergyCounter,
            joules: 250.0,
            gpus: 2,
            mean_power_w: Some(25.0),
            j_per_output_token: Some(0.5),
            output_tokens_per_j: Some(2.0),
        };
        assert_eq!(
            line(&e),
            "energy     250.0 J on 2 GPUs (energy counter), mean 25.0 W; 0.5000 J per output token, 2.00 output tokens per J\n"
        );
        (e.gpus, e.mean_power_w, e.j_per_output_token) = (1, None, None);
        e.source = EnergySource::PowerIntegral;
        assert_eq!(line(&e), "energy     250.0 J on 1 GPU (power samples)\n");
    }
}
