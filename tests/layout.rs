//! The crate's layout, checked: which module imports which (`use crate::...`, `crate::...`
//! and `super::...` paths, and a folder's `mod.rs` naming its own files; tests and comments
//! left out), with no cycle between the
//! top-level folders nor between the files of the crate, and the folders in the order
//! `lib.rs` gives. `cargo test --test layout -- --nocapture` prints the imports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The folders, bottom first: each may import only those before it.
const LAYERS: [&[&str]; 11] = [
    &["cloud", "http", "identity", "telemetry"],
    &["config"],
    &["state"],
    &["routing"],
    &["wake"],
    &["sleep"],
    &["ops"],
    &["serve"],
    &["app"],
    &["cli"],
    &["main"],
];

/// A module of the crate: `wake/step`, `wake` (its `mod.rs`), `lib`.
type Module = String;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/wake/step.rs` -> `wake/step`; `src/wake/mod.rs` -> `wake`.
fn module_of(path: &Path) -> Module {
    let rel = path.strip_prefix(src()).unwrap().with_extension("");
    let rel = rel.to_string_lossy().replace('\\', "/");
    rel.strip_suffix("/mod").map(str::to_string).unwrap_or(rel)
}

/// The code of a file without comments, string contents and `#[cfg(test)]` items.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<i32> = None;
    let mut depth = 0;
    let mut test_next = false;
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("");
        let trimmed = line.trim();
        if trimmed.starts_with("#[cfg(test)]") || trimmed.starts_with("#[cfg(all(test") {
            test_next = true;
            continue;
        }
        let opens = line.matches('{').count() as i32;
        let closes = line.matches('}').count() as i32;
        if test_next && !trimmed.is_empty() {
            test_next = false;
            if trimmed.ends_with(';') {
                continue; // `mod tests;`: the file is a test module, skipped by name
            }
            skip_depth = Some(depth);
        }
        depth += opens - closes;
        if let Some(d) = skip_depth {
            if depth <= d {
                skip_depth = None;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The module a `crate::a::b::c` path names: the deepest one that exists.
fn resolve(known: &BTreeSet<Module>, segments: &[&str]) -> Option<Module> {
    (1..=segments.len()).rev().map(|n| segments[..n].join("/")).find(|m| known.contains(m))
}

/// Every path after `crate::` or `super::` in the code, split into segments, with `{a, b::c}`
/// groups expanded one level.
fn paths<'a>(code: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        let before = code[..at].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[at + prefix.len()..];
        let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
        let head: Vec<&str> = rest[..end].split("::").filter(|s| !s.is_empty()).collect();
        if rest[end..].starts_with('{') && rest[..end].ends_with("::") || (end == 0 && rest.starts_with('{')) {
            let group = &rest[end + 1..rest[end..].find('}').map(|i| end + i).unwrap_or(rest.len())];
            for item in group.split(',') {
                let mut p = head.clone();
                p.extend(item.trim().split("::").filter(|s| !s.is_empty() && *s != "self"));
                out.push(p);
            }
        } else {
            out.push(head);
        }
    }
    out
}

fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let mut all = Vec::new();
    files(&src(), &mut all);
    all.retain(|p| !p.ends_with("tests.rs"));
    let known: BTreeSet<Module> = all.iter().map(|p| module_of(p)).collect();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for path in &all {
        let me = module_of(path);
        let text = code(&std::fs::read_to_string(path).unwrap());
        let parent = me.rsplit_once('/').map(|(p, _)| p.to_string());
        let is_mod = path.ends_with("mod.rs") || path.ends_with("lib.rs");
        let mut to: BTreeSet<Module> = BTreeSet::new();
        for p in paths(&text, "crate::") {
            to.extend(resolve(&known, &p));
        }
        for p in paths(&text, "super::") {
            // `super` of a file is its folder; of a folder's mod.rs, the folder above.
            let base = if is_mod { me.rsplit_once('/').map(|(p, _)| p.to_string()) } else { parent.clone() };
            let mut full: Vec<&str> = base.as_deref().map(|b| b.split('/').collect()).unwrap_or_default();
            full.extend(p.iter().copied());
            to.extend(resolve(&known, &full).or(base.clone()));
        }
        if is_mod {
            // A folder's mod.rs names its own files without a prefix: `pub use status::Status`.
            for child in known.iter().filter_map(|k| k.strip_prefix(&format!("{me}/"))).filter(|c| !c.contains('/')) {
                if text.contains(&format!("use {child}::")) || text.contains(&format!(" {child}::")) {
                    to.insert(format!("{me}/{child}"));
                }
            }
        }
        to.remove(&me);
        to.remove("lib");
        edges.insert(me, to);
    }
    edges
}

fn top(module: &str) -> &str {
    module.split('/').next().unwrap()
}

fn layer(folder: &str) -> usize {
    LAYERS.iter().position(|l| l.contains(&folder)).unwrap_or_else(|| panic!("`{folder}` is in no layer of LAYERS"))
}

/// A cycle through `start`, if there is one.
fn cycle(edges: &BTreeMap<Module, BTreeSet<Module>>, start: &str) -> Option<Vec<Module>> {
    fn walk(
        edges: &BTreeMap<Module, BTreeSet<Module>>,
        at: &str,
        start: &str,
        path: &mut Vec<Module>,
        seen: &mut BTreeSet<Module>,
    ) -> bool {
        for next in edges.get(at).into_iter().flatten() {
            if next == start {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(edges, next, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    walk(edges, start, start, &mut path, &mut BTreeSet::new()).then(|| {
        path.push(start.to_string());
        path
    })
}

#[test]
fn the_files_import_each_other_without_a_cycle() {
    let edges = graph();
    for (from, to) in &edges {
        println!("{from} -> {}", to.iter().cloned().collect::<Vec<_>>().join(", "));
    }
    let cycles: BTreeSet<String> = edges.keys().filter_map(|m| cycle(&edges, m)).map(|c| c.join(" -> ")).collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.into_iter().collect::<Vec<_>>().join("\n"));
}

#[test]
fn the_folders_depend_one_way_the_lower_never_on_the_higher() {
    let mut folders: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let edges = graph();
    for (from, to) in edges.iter() {
        for t in to.iter().filter(|t| top(t) != top(from)) {
            folders.entry(top(from)).or_default().insert(top(t));
        }
    }
    println!("folders:");
    for (from, to) in &folders {
        println!("  {from} -> {}", to.iter().copied().collect::<Vec<_>>().join(", "));
        for t in to {
            assert!(layer(t) < layer(from), "`{from}` imports `{t}`, which sits above it (or beside it) in LAYERS");
        }
    }
}

#[test]
fn the_checker_sees_imports_and_skips_tests_and_comments() {
    let text = "use crate::a::b;\n// use crate::c;\nfn f() { crate::d::e(); }\n#[cfg(test)]\nmod tests {\n    use crate::x;\n}\nuse super::{f, g::h};\n";
    let code = code(text);
    let crate_paths: Vec<Vec<&str>> = paths(&code, "crate::");
    assert_eq!(crate_paths, vec![vec!["a", "b"], vec!["d", "e"]]);
    assert_eq!(paths(&code, "super::"), vec![vec!["f"], vec!["g", "h"]]);
    let known: BTreeSet<Module> = ["a".to_string(), "d".to_string(), "d/e".to_string()].into();
    assert_eq!(resolve(&known, &["a", "b"]), Some("a".to_string()));
    assert_eq!(resolve(&known, &["d", "e", "f"]), Some("d/e".to_string()));
    let edges: BTreeMap<Module, BTreeSet<Module>> =
        [("p".to_string(), ["q".to_string()].into()), ("q".to_string(), ["p".to_string()].into())].into();
    assert_eq!(cycle(&edges, "p"), Some(vec!["p".to_string(), "q".to_string(), "p".to_string()]));
}
