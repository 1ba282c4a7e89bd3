//! The benchmark report: a CSV of every row and a Markdown table, with the machine they ran on.

use std::{fmt::Write as _, fs, path::Path};

pub struct Row {
    pub size: usize,
    pub class: String,
    pub ns_above_empty: f64,
}

fn machine() -> String {
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_default();
    format!("kernel {}, CPU {cpu}", kernel.trim())
}

pub fn write(dir: &Path, rows: &[Row]) -> anyhow::Result<()> {
    fs::create_dir_all(dir)?;
    let mut csv = String::from("list_size,class,ns_above_empty\n");
    for r in rows {
        writeln!(csv, "{},{},{:.1}", r.size, r.class, r.ns_above_empty)?;
    }
    fs::write(dir.join("micro.csv"), csv)?;
    let mut md = format!("# Micro benchmark\n\n{}\n\nns per packet above an empty XDP program, median of rounds.\n\n", machine());
    md += "| list size (prefixes + names) | class | ns above empty |\n|---:|---|---:|\n";
    for r in rows {
        writeln!(md, "| {} | {} | {:.1} |", r.size, r.class, r.ns_above_empty)?;
    }
    fs::write(dir.join("micro.md"), md)?;
    eprintln!("wrote {}", dir.join("micro.md").display());
    Ok(())
}
