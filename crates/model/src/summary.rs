//! Keras-style model summaries.

use crate::Architecture;

pub struct SummaryTable {
    pub title: String,
    /// (layer (type), output shape, params)
    pub rows: Vec<(String, String, usize)>,
}

impl SummaryTable {
    pub fn autoencoder(arch: &Architecture) -> Self {
        Self::build("autoencoder", arch, arch.layers().len())
    }

    pub fn encoder(arch: &Architecture) -> Self {
        Self::build("encoder", arch, arch.encoder_layer_count())
    }

    fn build(title: &str, arch: &Architecture, layer_count: usize) -> Self {
        let mut rows = vec![(
            "input (InputLayer)".to_string(),
            format!("(None, {})", arch.input_dim),
            0,
        )];
        for l in &arch.layers()[..layer_count] {
            rows.push((
                format!("{} (Dense)", l.name),
                format!("(None, {})", l.fan_out),
                l.param_count(),
            ));
        }
        SummaryTable {
            title: title.to_string(),
            rows,
        }
    }

    pub fn total(&self) -> usize {
        self.rows.iter().map(|r| r.2).sum()
    }
}

/// Thousands separators: 222384 → "222,384".
pub fn group_digits(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn kib(params: usize) -> String {
    let bytes = params as f64 * 4.0;
    if bytes >= 1024.0 * 1024.0 {
        format!("{:.2} MB", bytes / 1024.0 / 1024.0)
    } else {
        format!("{:.2} KB", bytes / 1024.0)
    }
}

pub fn format_summary(table: &SummaryTable) -> String {
    let rule = "─".repeat(70);
    let mut s = format!("Model: \"{}\"\n{rule}\n", table.title);
    s += &format!(
        "{:<32}{:<24}{:>14}\n",
        "Layer (type)", "Output Shape", "Param #"
    );
    s += &format!("{}\n", "═".repeat(70));
    for (i, (name, shape, params)) in table.rows.iter().enumerate() {
        s += &format!("{name:<32}{shape:<24}{:>14}\n", group_digits(*params));
        if i + 1 < table.rows.len() {
            s += &format!("{rule}\n");
        }
    }
    s += &format!("{}\n", "═".repeat(70));
    let total = table.total();
    s += &format!(" Total params: {} ({})\n", group_digits(total), kib(total));
    s += &format!(
        " Trainable params: {} ({})\n",
        group_digits(total),
        kib(total)
    );
    s += " Non-trainable params: 0 (0.00 B)\n";
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_summary_totals() {
        let a = Architecture::new(784, vec![128, 64, 32]).unwrap();
        let enc = format_summary(&SummaryTable::encoder(&a));
        assert!(enc.contains("Total params: 110,816"), "{enc}");
        assert!(enc.contains("encoder_3 (Dense)") && !enc.contains("decoder_1"));
        let ae = format_summary(&SummaryTable::autoencoder(&a));
        assert!(ae.contains("Total params: 222,384 (868.69 KB)"), "{ae}");
        assert!(ae.contains("100,480") && ae.contains("8,256") && ae.contains("2,080"));
        assert_eq!(group_digits(1_000_000), "1,000,000");
        assert_eq!(group_digits(999), "999");
    }
}
