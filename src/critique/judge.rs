//! Whether a model may judge (move the rules' statuses), and calibration.
//!
//! A model judges only where it helps. Agreement with the labelled set
//! (`tests/data/critique/labelled.jsonl`, built into the binary) is measured with the
//! rules alone and with the model judging; the model may judge only when it does not
//! lower agreement. Catalogue models carry the measured decision (`judge` in
//! `models.toml`); any other file (a path, a future remote entry) judges only after
//! `upward critique --calibrate` has measured it. The result is stored per model file
//! in the cache folder (`calibration/<key>.json`, the key hashing the file's path, size
//! and modification time, so a replaced file is measured again).

use super::model::{model_verdicts, CritiqueModel};
use super::{assess, Criterion, CritiqueError, DraftKind, Status};
use crate::catalogue::Entry;
use crate::lang::Lang;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The labelled set, as shipped.
const LABELLED: &str = include_str!("../../tests/data/critique/labelled.jsonl");

/// One labelled draft: 1 = met or partial, 0 = missing, per criterion.
#[derive(Clone, Debug, Deserialize)]
pub struct Labelled {
    /// Stable id.
    pub id: String,
    /// Help request or thank-you note.
    pub kind: DraftKind,
    /// The draft's language.
    pub lang: Lang,
    /// The draft.
    pub text: String,
    /// One 0/1 label per criterion of the kind's rubric.
    pub labels: BTreeMap<String, u8>,
}

/// Parses a labelled set in JSON Lines (blank lines skipped).
pub fn parse_labelled(text: &str) -> Result<Vec<Labelled>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// The labelled set built into upward.
pub fn labelled_set() -> Vec<Labelled> {
    parse_labelled(LABELLED).expect("the built-in labelled set parses (checked by tests)")
}

/// SHA-256 of the built-in labelled set: a calibration holds only for the set it used.
pub fn labelled_set_digest() -> String {
    hex(&Sha256::digest(LABELLED.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Agreement with the labels: per criterion and macro-averaged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// Mean of the per-criterion agreements.
    pub macro_agreement: f64,
    /// Share of drafts where `status != missing` matches the label, per criterion.
    pub per_criterion: BTreeMap<String, f64>,
    /// Drafts measured.
    pub drafts: usize,
}

/// Measures agreement of `verdicts` (one call per draft) with the labels of `set`.
pub fn agreement<E>(
    set: &[Labelled],
    mut verdicts: impl FnMut(&Labelled) -> Result<Vec<(Criterion, Status)>, E>,
) -> Result<Agreement, E> {
    let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for d in set {
        for (id, status) in verdicts(d)? {
            let Some(&want) = d.labels.get(id.as_str()) else {
                continue;
            };
            let e = per.entry(id.to_string()).or_default();
            e.0 += ((status != Status::Missing) == (want == 1)) as usize;
            e.1 += 1;
        }
    }
    // Four decimals: enough to compare, and exact through JSON.
    let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
    let per_criterion: BTreeMap<String, f64> =
        per.into_iter().map(|(id, (ok, n))| (id, round(ok as f64 / n.max(1) as f64))).collect();
    let macro_agreement = if per_criterion.is_empty() {
        0.0
    } else {
        round(per_criterion.values().sum::<f64>() / per_criterion.len() as f64)
    };
    Ok(Agreement { macro_agreement, per_criterion, drafts: set.len() })
}

/// The rules' agreement on `set`.
pub fn rules_agreement(set: &[Labelled]) -> Agreement {
    let r: Result<_, std::convert::Infallible> = agreement(set, |d| {
        Ok(assess(&d.text, d.kind, d.lang).into_iter().map(|(id, s, _)| (id, s)).collect())
    });
    r.unwrap_or_else(|e| match e {})
}

/// The outcome of `upward critique --calibrate` for one model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Agreement with the rules alone.
    pub rules: Agreement,
    /// Agreement with the model judging (under the combination rule).
    pub model: Agreement,
    /// Whether the model may judge: it does not lower macro agreement.
    pub judge: bool,
    /// SHA-256 of the labelled set measured on.
    pub labelled_set: String,
}

/// The set in round-robin order over its (kind, language) groups, so that any prefix is
/// a balanced sample (what a progress report on a partial run needs).
pub fn interleaved(set: Vec<Labelled>) -> Vec<Labelled> {
    let mut groups: Vec<((DraftKind, Lang), Vec<Labelled>)> = Vec::new();
    for d in set {
        let key = (d.kind, d.lang);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, g)) => g.push(d),
            None => groups.push((key, vec![d])),
        }
    }
    let mut iters: Vec<_> = groups.into_iter().map(|(_, g)| g.into_iter()).collect();
    let mut out = Vec::new();
    loop {
        let before = out.len();
        for it in iters.iter_mut() {
            out.extend(it.next());
        }
        if out.len() == before {
            return out;
        }
    }
}

/// Progress of a calibration: drafts done, of how many, and agreement so far.
pub struct Progress<'a> {
    /// Drafts measured.
    pub done: usize,
    /// Drafts in the set.
    pub total: usize,
    /// The rules' agreement on the drafts measured so far.
    pub rules: &'a Agreement,
    /// The model's agreement on the drafts measured so far.
    pub model: &'a Agreement,
}

/// Measures a model on the built-in labelled set (interleaved by kind and language),
/// with the rules alone and with the model judging. `progress` is called after each
/// draft with the agreement so far.
pub fn calibrate(
    model: &mut dyn CritiqueModel,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Calibration, CritiqueError> {
    let set = interleaved(labelled_set());
    let total = set.len();
    let mut rules_v: Vec<Vec<(Criterion, Status)>> = Vec::with_capacity(total);
    let mut model_v: Vec<Vec<(Criterion, Status)>> = Vec::with_capacity(total);
    for (i, d) in set.iter().enumerate() {
        rules_v
            .push(assess(&d.text, d.kind, d.lang).into_iter().map(|(id, s, _)| (id, s)).collect());
        let v = model_verdicts(&d.text, d.kind, model)?;
        model_v.push(v.into_iter().map(|(id, s, _)| (id, s)).collect());
        let so_far = |vs: &[Vec<(Criterion, Status)>]| {
            let mut k = 0;
            let r: Result<_, std::convert::Infallible> = agreement(&set[..=i], |_| {
                k += 1;
                Ok(vs[k - 1].clone())
            });
            r.unwrap_or_else(|e| match e {})
        };
        progress(&Progress {
            done: i + 1,
            total,
            rules: &so_far(&rules_v),
            model: &so_far(&model_v),
        });
    }
    let rules = rules_agreement(&set);
    let mut k = 0;
    let model: Result<_, std::convert::Infallible> = agreement(&set, |_| {
        k += 1;
        Ok(model_v[k - 1].clone())
    });
    let model = model.unwrap_or_else(|e| match e {});
    let judge = model.macro_agreement >= rules.macro_agreement;
    Ok(Calibration { rules, model, judge, labelled_set: labelled_set_digest() })
}

/// Why a model may or may not judge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum JudgeBasis {
    /// `upward critique --calibrate` measured this file.
    Calibration,
    /// The catalogue entry's `judge` flag.
    Catalogue {
        /// The entry's name.
        entry: String,
    },
    /// Nothing known about this model: it does not judge until calibrated.
    Unmeasured,
}

/// Whether a model file may judge, and on what basis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JudgePolicy {
    /// The model may move statuses.
    pub judge: bool,
    /// Why (flattened in JSON: `"by": "catalogue" | "calibration" | "unmeasured"`).
    #[serde(flatten)]
    pub basis: JudgeBasis,
}

/// Decides whether the model in `path` may judge: its stored calibration when there is
/// one for this very file (and the current labelled set); else its catalogue entry's
/// `judge` flag, when `entry` is given, has one and the file's size matches the entry's;
/// else no.
pub fn policy(path: &Path, entry: Option<&Entry>, store: Option<&CalibrationStore>) -> JudgePolicy {
    if let Some(c) = store.and_then(|s| s.load(path)) {
        return JudgePolicy { judge: c.judge, basis: JudgeBasis::Calibration };
    }
    if let Some(e) = entry {
        let size_ok = match (e.size, std::fs::metadata(path)) {
            (Some(want), Ok(m)) => m.len() == want,
            (Some(_), Err(_)) => false,
            (None, _) => true,
        };
        if let (Some(judge), true) = (e.judge, size_ok) {
            return JudgePolicy { judge, basis: JudgeBasis::Catalogue { entry: e.name.clone() } };
        }
    }
    JudgePolicy { judge: false, basis: JudgeBasis::Unmeasured }
}

/// [`policy`] for a model already loaded from `path`, its entry looked up by file name
/// in the built-in catalogue (the REPL's `/critique`).
pub fn policy_for_loaded(path: &Path) -> JudgePolicy {
    let cat = crate::catalogue::Catalogue::builtin();
    let entry = path.file_name().and_then(|f| cat.entry_for_file(&f.to_string_lossy()).cloned());
    policy(path, entry.as_ref(), CalibrationStore::from_env().as_ref())
}

/// Stored calibrations: one JSON file per model file under `<cache>/calibration/`.
#[derive(Clone, Debug)]
pub struct CalibrationStore {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    model_file: PathBuf,
    size: u64,
    modified_ns: u128,
    calibration: Calibration,
}

impl CalibrationStore {
    /// A store in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CalibrationStore { dir: dir.into() }
    }

    /// `$UPWARD_CACHE_DIR/calibration`, else the platform cache folder's
    /// (`~/.cache/upward/calibration` on Linux); `None` when there is no cache folder.
    pub fn from_env() -> Option<Self> {
        let models = crate::catalogue::ModelCache::from_env().ok()?;
        let root = models.root().parent()?.to_path_buf();
        Some(Self::new(root.join("calibration")))
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn identity(path: &Path) -> Option<(PathBuf, u64, u128)> {
        let canon = std::fs::canonicalize(path).ok()?;
        let meta = std::fs::metadata(&canon).ok()?;
        let modified = meta.modified().ok()?;
        let ns = modified.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
        Some((canon, meta.len(), ns))
    }

    /// Where the calibration of the model file `path` is kept (`None`: the file cannot
    /// be read).
    pub fn file_for(&self, path: &Path) -> Option<PathBuf> {
        let (canon, size, ns) = Self::identity(path)?;
        let mut h = Sha256::new();
        h.update(canon.to_string_lossy().as_bytes());
        h.update(size.to_le_bytes());
        h.update(ns.to_le_bytes());
        Some(self.dir.join(format!("{}.json", &hex(&h.finalize())[..32])))
    }

    /// The stored calibration of `path`, if it was measured in this very state of the
    /// file and on the current labelled set.
    pub fn load(&self, path: &Path) -> Option<Calibration> {
        let (canon, size, ns) = Self::identity(path)?;
        let text = std::fs::read_to_string(self.file_for(path)?).ok()?;
        let s: Stored = serde_json::from_str(&text).ok()?;
        let fresh = s.model_file == canon
            && s.size == size
            && s.modified_ns == ns
            && s.calibration.labelled_set == labelled_set_digest();
        fresh.then_some(s.calibration)
    }

    /// Stores the calibration of `path` (folder 0700, file 0600: it names the user's
    /// files); returns where.
    pub fn save(&self, path: &Path, c: &Calibration) -> std::io::Result<PathBuf> {
        let (canon, size, ns) = Self::identity(path)
            .ok_or_else(|| std::io::Error::other(format!("cannot read {}", path.display())))?;
        let file = self.file_for(path).expect("identity was just read");
        create_private_dir(&self.dir)?;
        let stored = Stored { model_file: canon, size, modified_ns: ns, calibration: c.clone() };
        let json = serde_json::to_string_pretty(&stored).map_err(std::io::Error::other)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        std::io::Write::write_all(&mut tmp, json.as_bytes())?;
        tmp.as_file().sync_all()?;
        tmp.persist(&file).map_err(|e| e.error)?;
        Ok(file)
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_set_parses_and_rules_agree() {
        let set = labelled_set();
        assert!(set.len() >= 80);
        let a = rules_agreement(&set);
        assert_eq!(a.drafts, set.len());
        assert!(a.macro_agreement >= 0.9, "{a:?}");
    }

    /// A model that always says `missing` drags agreement down: it may not judge.
    #[test]
    fn a_model_worse_than_the_rules_may_not_judge() {
        struct Nay;
        impl CritiqueModel for Nay {
            fn choose(&mut self, _: &str, _: &str, c: &[&str]) -> Result<usize, String> {
                Ok(c.iter().position(|s| *s == "missing").unwrap())
            }
            fn generate(&mut self, _: &str, _: &str, _: usize) -> Result<String, String> {
                Err("unused".into())
            }
        }
        let mut calls = 0;
        let c = calibrate(&mut Nay, &mut |p| {
            calls += 1;
            assert_eq!(p.done, calls);
            assert!(p.model.macro_agreement <= p.rules.macro_agreement);
        })
        .unwrap();
        assert_eq!(calls, labelled_set().len());
        assert!(c.model.macro_agreement < c.rules.macro_agreement, "{c:?}");
        assert!(!c.judge);
    }

    #[test]
    fn interleaving_balances_every_prefix() {
        let set = interleaved(labelled_set());
        assert_eq!(set.len(), labelled_set().len());
        let first: Vec<_> = set.iter().take(4).map(|d| (d.kind, d.lang)).collect();
        let mut distinct = first.clone();
        distinct.sort_by_key(|(k, l)| (k.code(), l.code()));
        distinct.dedup();
        assert_eq!(distinct.len(), 4, "{first:?}");
    }

    #[test]
    fn calibrations_persist_per_file_state() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.gguf");
        std::fs::write(&model, b"GGUF v1").unwrap();
        let store = CalibrationStore::new(dir.path().join("calibration"));
        assert_eq!(policy(&model, None, Some(&store)).basis, JudgeBasis::Unmeasured);
        let set = labelled_set();
        let rules = rules_agreement(&set);
        let c = Calibration {
            model: rules.clone(),
            rules,
            judge: true,
            labelled_set: labelled_set_digest(),
        };
        let file = store.save(&model, &c).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&file), 0o600);
            assert_eq!(mode(store.dir()), 0o700);
        }
        assert_eq!(store.load(&model), Some(c));
        let p = policy(&model, None, Some(&store));
        assert!(p.judge && p.basis == JudgeBasis::Calibration);
        // A changed file is a different model until measured again.
        std::fs::write(&model, b"GGUF v2, longer").unwrap();
        assert_eq!(store.load(&model), None);
        assert!(!policy(&model, None, Some(&store)).judge);
    }
}
