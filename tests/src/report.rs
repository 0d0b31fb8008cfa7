//! The report of a differential run: `report.md` and `report.json` in the
//! output directory (`target/difftest/`), ending with the line
//! `N passed, M failed`.

use serde::Serialize;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// Counts for one pair of oracles (or one self-check such as coverage).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PairStats {
    /// Addresses (or scenarios, for per-scenario checks) compared.
    pub compared: u64,
    /// Compared and agreeing.
    pub agreed: u64,
    /// Disagreements that count as failures.
    pub disagreed: u64,
    /// Disagreements explained by a known limit of the pair (R's uid sees
    /// less than qmail-local's), listed but not counted as failures.
    pub excused: u64,
    /// Not compared: the scenario is R vs C only (its conf-break is not
    /// the `-` the pair's qmail programs were built with, or it has an
    /// errno fault the pair's processes do not get).
    pub skipped_conf_break: u64,
}

/// One disagreement, with the directory that replays it.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The pair (`R-C`, `R-P`, `R-G`, `U:R-G`, `R-S`, `R-Q`, `R-S/tls`,
    /// `R-S/auth`, `R-B`, `R-L`, `coverage`, `known`).
    pub pair: String,
    /// Scenario index (for `R-B` and `R-L`: the `.qmail` program index).
    pub scenario: u64,
    /// The address (escaped), when the check is per address.
    pub address: Option<String>,
    /// What the first oracle said.
    pub left: String,
    /// What the second oracle said.
    pub right: String,
    /// The failure directory (reproduces it on its own).
    pub dir: Option<PathBuf>,
    /// The command that re-runs it.
    pub replay: Option<String>,
    /// Whether the case was shrunk to the one address.
    pub shrunk: bool,
}

/// An excused disagreement (not a failure; see [`PairStats::excused`]).
#[derive(Debug, Clone, Serialize)]
pub struct Excused {
    /// The pair.
    pub pair: String,
    /// Scenario index.
    pub scenario: u64,
    /// The address.
    pub address: String,
    /// Why it is excused.
    pub why: String,
    /// The resolver stages that were uncertain (`getpw`, `home`, `qmail`).
    pub stages: Vec<String>,
}

/// Everything a run found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// The third-party patches S, Q and L ran on (`--with-patch`), in
    /// order, each as `NAME (sha256 HEX, -pN)`; empty for pristine
    /// netqmail-1.06.
    pub stack: Vec<String>,
    /// The qmail release of the run: the one R models and, with a tree,
    /// G, S, Q and L run (`netqmail-1.06` or `notqmail-1.09`).
    pub release: String,
    /// Scenarios run.
    pub scenarios: u64,
    /// Addresses resolved (over all scenarios).
    pub addresses: u64,
    /// Scenarios with a conf-break other than `-` (R vs C only).
    pub other_break_scenarios: u64,
    /// Scenarios with an errno fault (R vs C only).
    pub errno_fault_scenarios: u64,
    /// Scenarios that leave out an account notqmail's qmail-lspawn looks
    /// up ([`crate::scenario::Scenario::lspawn_missing`]).
    pub lspawn_missing_scenarios: u64,
    /// R's answers that are qmail-lspawn's start failure (`fatal: unable
    /// to find …`, notqmail-1.09 only).
    pub lspawn_defers: u64,
    /// Generated `.qmail` programs compared R vs B (pair `R-B`, each with
    /// `-N` and `-n`).
    pub programs_b: u64,
    /// Generated `.qmail` programs compared R vs L (pair `R-L`, each with
    /// `-N` and `-n`).
    pub programs_l: u64,
    /// Wall time of the `.qmail` program comparisons in seconds (part of
    /// [`Report::seconds`]; informational).
    pub programs_seconds: f64,
    /// Per pair.
    pub pairs: BTreeMap<String, PairStats>,
    /// Outcome classes seen, per oracle (`R`, `G`): class → count.
    pub classes: BTreeMap<String, BTreeMap<String, u64>>,
    /// Kinds of `.qmail` object created: kind → count.
    pub qmail_kinds: BTreeMap<String, u64>,
    /// Verdicts of R: verdict → count.
    pub verdicts: BTreeMap<String, u64>,
    /// Verdicts of C: verdict → count.
    pub c_verdicts: BTreeMap<String, u64>,
    /// Tiers not run, with the reason.
    pub skipped: Vec<String>,
    /// Failures.
    pub failures: Vec<Failure>,
    /// Excused disagreements (first 200).
    pub excused: Vec<Excused>,
    /// Excused disagreements per uncertain resolver stage (all of them;
    /// one disagreement counts under each stage it had).
    pub excused_stages: BTreeMap<String, u64>,
    /// Checks passed.
    pub passed: u64,
    /// Checks failed.
    pub failed: u64,
    /// Wall time in seconds (informational).
    pub seconds: f64,
    /// The known differences from the original realrcptto
    /// ([`crate::known`]): one row per address of `tests/known/`.
    pub known: Vec<crate::known::KnownRow>,
}

impl Report {
    /// Records one comparison.
    pub fn check(&mut self, pair: &str, ok: bool) {
        let s = self.pairs.entry(pair.to_string()).or_default();
        s.compared += 1;
        if ok {
            s.agreed += 1;
            self.passed += 1;
        } else {
            s.disagreed += 1;
            self.failed += 1;
        }
    }

    /// Records `n` comparisons of `pair` not made because the scenario is
    /// R vs C only (conf-break or errno fault).
    pub fn skip(&mut self, pair: &str, n: u64) {
        self.pairs
            .entry(pair.to_string())
            .or_default()
            .skipped_conf_break += n;
    }

    /// Records an excused disagreement.
    pub fn excuse(&mut self, e: Excused) {
        let s = self.pairs.entry(e.pair.clone()).or_default();
        s.compared += 1;
        s.excused += 1;
        self.passed += 1;
        let mut stages = e.stages.clone();
        stages.sort();
        stages.dedup();
        for st in stages {
            *self.excused_stages.entry(st).or_default() += 1;
        }
        if self.excused.len() < 200 {
            self.excused.push(e);
        }
    }

    /// Counts a class seen by an oracle.
    pub fn class(&mut self, oracle: &str, class: &str) {
        *self
            .classes
            .entry(oracle.to_string())
            .or_default()
            .entry(class.to_string())
            .or_default() += 1;
    }

    /// The final line.
    pub fn summary_line(&self) -> String {
        format!("{} passed, {} failed", self.passed, self.failed)
    }

    /// The Markdown text.
    pub fn markdown(&self) -> String {
        let mut m = String::new();
        self.md_intro(&mut m);
        self.md_pairs_and_classes(&mut m);
        self.md_counts(&mut m);
        if !self.known.is_empty() {
            m.push('\n');
            m.push_str(&crate::known::render_markdown(&self.known));
        }
        self.md_disagreements(&mut m);
        m.push('\n');
        m.push_str(&self.summary_line());
        m.push('\n');
        m
    }

    /// The title, the run's numbers, what was compared R vs C only, and
    /// the skipped tiers.
    fn md_intro(&self, m: &mut String) {
        m.push_str("# Differential test report\n\n");
        m.push_str(&format!(
            "* seed: `{}`\n* qmail release: `{}` (R models it; G, S, Q and L run it when its tree is given)\n* scenarios: {}\n* addresses: {}\n* wall time: {:.1} s\n\n",
            self.seed, self.release, self.scenarios, self.addresses, self.seconds
        ));
        if !self.stack.is_empty() {
            m.push_str(&format!(
                "Stack proved (S, Q and L run on it; G is pristine {0}): {0}",
                self.release
            ));
            for p in &self.stack {
                m.push_str(&format!(" + `{p}`"));
            }
            m.push_str(", then our patches.\n\n");
        }
        if self.other_break_scenarios > 0 {
            m.push_str(&format!(
                "{} scenarios use a conf-break other than `-`: the resolver and the realrcptto core get it, the qmail programs (G, S/Q) are built with `-`, so those scenarios are compared R vs C only (column \"skipped\").\n\n",
                self.other_break_scenarios
            ));
        }
        if self.errno_fault_scenarios > 0 {
            m.push_str(&format!(
                "{} scenarios have an errno fault (getpwnam ETXTBSY or stat EIO of a passwd home, injected by tests/c/rrt-errno-shim.c into the resolver and the realrcptto core only), so those scenarios are compared R vs C only (column \"skipped\").\n\n",
                self.errno_fault_scenarios
            ));
        }
        if self.lspawn_missing_scenarios > 0 {
            m.push_str(&format!(
                "{} scenarios leave out qmailp, qmailq or the group nofiles, which notqmail-1.09's qmail-lspawn looks up when it starts (netqmail-1.06 compiles the ids in): {} of R's answers are that start failure (`fatal: unable to find …`, a deferral).\n\n",
                self.lspawn_missing_scenarios, self.lspawn_defers
            ));
        }
        if self.programs_b + self.programs_l > 0 {
            m.push_str(&format!(
                "{} generated `.qmail` programs were compared with the resolver's `.qmail` model, each with `-N` and `-n` ({:.1} s): {} through oracle B (the branch C core in its driver, pair R-B), {} through oracle L (patched qmail-local doing real deliveries, pair R-L).\n\n",
                self.programs_b.max(self.programs_l),
                self.programs_seconds,
                self.programs_b,
                self.programs_l
            ));
        }
        let sessions: Vec<&str> = [
            ("R-S/tls", "R-S/tls inside a STARTTLS session (a certificate made for the run, verified by the client)"),
            ("R-S/auth", "R-S/auth after AUTH PLAIN with a checkpassword stub (relaying allowed, as for RELAYCLIENT)"),
        ]
        .into_iter()
        .filter(|(p, _)| self.pairs.contains_key(*p))
        .map(|(_, what)| what)
        .collect();
        if !sessions.is_empty() {
            m.push_str(&format!(
                "Every {}th scenario's SMTP-safe addresses were also sent to qmail-smtpd inside sessions of the tree's third-party patches: {}.\n\n",
                crate::options::SESSION_EVERY,
                sessions.join("; ")
            ));
        }
        if !self.skipped.is_empty() {
            m.push_str("## Skipped tiers\n\n");
            for s in &self.skipped {
                m.push_str(&format!("* SKIPPED: {s}\n"));
            }
            m.push('\n');
        }
    }

    /// The table of pairs and the O4 classes covered per oracle.
    fn md_pairs_and_classes(&self, m: &mut String) {
        m.push_str("## Comparisons per pair of oracles\n\n");
        m.push_str(
            "| pair | compared | agreed | disagreed | excused | skipped (R vs C only) |\n|---|---:|---:|---:|---:|---:|\n",
        );
        for (k, s) in &self.pairs {
            m.push_str(&format!(
                "| {k} | {} | {} | {} | {} | {} |\n",
                s.compared, s.agreed, s.disagreed, s.excused, s.skipped_conf_break
            ));
        }
        m.push_str("\n## Outcome classes covered (resolution.md O4)\n\n");
        let oracles: Vec<&String> = self.classes.keys().collect();
        m.push_str("| class |");
        for o in &oracles {
            m.push_str(&format!(" {o} |"));
        }
        m.push_str("\n|---|");
        for _ in &oracles {
            m.push_str("---:|");
        }
        m.push('\n');
        let mut all: Vec<String> = crate::options::O4_CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect();
        for c in self.classes.values().flat_map(|x| x.keys()) {
            if !all.contains(c) {
                all.push(c.clone());
            }
        }
        for c in &all {
            m.push_str(&format!("| {c} |"));
            for o in &oracles {
                let n = self
                    .classes
                    .get(*o)
                    .and_then(|x| x.get(c))
                    .copied()
                    .unwrap_or(0);
                m.push_str(&format!(" {n} |"));
            }
            m.push('\n');
        }
    }

    /// The verdicts of R and C and the `.qmail` objects generated.
    fn md_counts(&self, m: &mut String) {
        if !self.verdicts.is_empty() {
            m.push_str("\n## Verdicts of R\n\n| verdict | count |\n|---|---:|\n");
            for (k, v) in &self.verdicts {
                m.push_str(&format!("| {k} | {v} |\n"));
            }
        }
        if !self.c_verdicts.is_empty() {
            m.push_str("\n## Verdicts of C\n\n| verdict | count |\n|---|---:|\n");
            for (k, v) in &self.c_verdicts {
                m.push_str(&format!("| {k} | {v} |\n"));
            }
        }
        if !self.qmail_kinds.is_empty() {
            m.push_str("\n## .qmail objects generated\n\n| kind | count |\n|---|---:|\n");
            for (k, v) in &self.qmail_kinds {
                m.push_str(&format!("| {k} | {v} |\n"));
            }
        }
    }

    /// The disagreements (with their replay commands) and the excused ones.
    fn md_disagreements(&self, m: &mut String) {
        m.push_str("\n## Disagreements\n\n");
        if self.failures.is_empty() {
            m.push_str("None.\n");
        }
        for f in &self.failures {
            m.push_str(&format!(
                "* **{}**, scenario {}{}: {} vs {}\n",
                f.pair,
                f.scenario,
                f.address
                    .as_ref()
                    .map(|a| format!(", address `{a}`"))
                    .unwrap_or_default(),
                f.left,
                f.right
            ));
            if let Some(r) = &f.replay {
                m.push_str(&format!(
                    "  * replay{}: `{r}`\n",
                    if f.shrunk {
                        " (shrunk to this address)"
                    } else {
                        ""
                    }
                ));
            }
        }
        if !self.excused.is_empty() {
            m.push_str("\n## Excused disagreements (first 200)\n\n");
            let by: Vec<String> = self
                .excused_stages
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            m.push_str(&format!(
                "R recorded an uncertain step (EACCES/EPERM with qmaild's uid) in each; by stage: {}\n\n",
                by.join(", ")
            ));
            for e in &self.excused {
                m.push_str(&format!(
                    "* {} scenario {} `{}`: {}\n",
                    e.pair, e.scenario, e.address, e.why
                ));
            }
        }
    }

    /// Writes `report.md` and `report.json` into `dir` (temp + rename).
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let md = dir.join("report.md");
        let js = dir.join("report.json");
        write_atomic(&md, self.markdown().as_bytes())?;
        let json = serde_json::to_string_pretty(self).map_err(io::Error::other)?;
        write_atomic(&js, json.as_bytes())
    }
}

/// Writes `data` to `path` through a temp name and a rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, data)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot write {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot rename to {}: {e}", path.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_last_line() {
        let mut r = Report::default();
        r.check("R-C", true);
        r.check("R-C", false);
        r.excuse(Excused {
            pair: "R-G".into(),
            scenario: 1,
            address: "a".into(),
            why: "w".into(),
            stages: vec!["home".into(), "home".into()],
        });
        assert_eq!(r.summary_line(), "2 passed, 1 failed");
        let md = r.markdown();
        assert!(md.ends_with("2 passed, 1 failed\n"));
        assert!(md.contains("| R-C | 2 | 1 | 1 | 0 |"));
        assert!(md.contains("| R-G | 1 | 0 | 0 | 1 |"), "{md}");
        assert!(md.contains("by stage: home 1\n"), "{md}");
        r.other_break_scenarios = 1;
        r.skip("R-G", 5);
        r.skip("R-G", 2);
        let md = r.markdown();
        assert!(md.contains("| R-G | 1 | 0 | 0 | 1 | 7 |"), "{md}");
        assert!(
            md.contains("1 scenarios use a conf-break other than"),
            "{md}"
        );
        r.errno_fault_scenarios = 2;
        let md = r.markdown();
        assert!(md.contains("2 scenarios have an errno fault"), "{md}");
        assert_eq!(
            r.summary_line(),
            "2 passed, 1 failed",
            "skips are not checks"
        );
        assert!(!md.contains("inside sessions"), "{md}");
        r.check("R-S/tls", true);
        let md = r.markdown();
        assert!(md.contains("| R-S/tls | 1 | 1 | 0 | 0 | 0 |"), "{md}");
        assert!(
            md.contains("third-party patches: R-S/tls inside a STARTTLS session"),
            "{md}"
        );
        assert!(!md.contains("R-S/auth after"), "{md}");
    }
}
