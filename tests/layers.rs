//! The crate's layering, checked from its source: every `crate::` and `super::` path in
//! src/ is read, and an import that goes up a floor, or closes a circle among the
//! files of one folder, fails this test. The floors are the ones src/README.md draws.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The floors, top to bottom. A module may use its own items and those of any module
/// on a lower floor; modules on one floor may not use each other.
const FLOORS: &[&[&str]] = &[
    &["cluster"],
    &["runtime"],
    &["schedule"],
    &["array", "report"],
    &["device"],
    &["cost"],
    &["kernel", "transfer"],
    &["cache", "error", "placement", "sync"],
];

fn floor(module: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.contains(&module))
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The file's module path under src/: `src/kernel/eval/plan.rs` is
/// `["kernel", "eval", "plan"]`, `src/kernel/mod.rs` is `["kernel"]`.
fn module_path(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).unwrap_or(file);
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.last_mut() {
        *last = last.trim_end_matches(".rs").to_string();
    }
    if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
        parts.pop();
    }
    parts
}

/// The code of a file without comments (doc comments name other modules in links,
/// which are not imports) and without string literals.
fn code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut s = String::new();
        let mut in_str = false;
        let mut prev = ' ';
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if !in_str && c == '/' && chars.get(i + 1) == Some(&'/') {
                break;
            }
            if c == '"' && prev != '\\' {
                in_str = !in_str;
            } else if !in_str {
                s.push(c);
            }
            prev = c;
            i += 1;
        }
        out.push_str(&s);
        out.push('\n');
    }
    out
}

/// Every path that starts with `crate::` or `super::` in `code`, as its segments
/// (`super` kept), with `{a, b::c}` groups expanded to their first segments.
fn paths(code: &str) -> Vec<Vec<String>> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        let start_ok = i == 0 || !is_ident(b[i - 1]) && b[i - 1] != b':';
        let rest = &code[i..];
        if start_ok && (rest.starts_with("crate::") || rest.starts_with("super::")) {
            let mut segs = Vec::new();
            let mut j = i;
            loop {
                let k = j + code[j..].bytes().take_while(|&c| is_ident(c)).count();
                if k == j {
                    break;
                }
                segs.push(code[j..k].to_string());
                if code[k..].starts_with("::{") {
                    // a group: one path per item, each its first segment
                    let close = code[k..].find('}').map_or(code.len(), |e| k + e);
                    for item in code[k + 3..close].split(',') {
                        let first: String = item
                            .trim()
                            .bytes()
                            .take_while(|&c| is_ident(c))
                            .map(char::from)
                            .collect();
                        if !first.is_empty() {
                            let mut p = segs.clone();
                            p.push(first);
                            out.push(p);
                        }
                    }
                    j = close;
                    segs.clear();
                    break;
                }
                if code[k..].starts_with("::") {
                    j = k + 2;
                } else {
                    j = k;
                    break;
                }
            }
            if !segs.is_empty() {
                out.push(segs);
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// Resolves a path used in the module at `from` to the module path it names (as far
/// as files go): `super::` climbs, `crate::` starts at the root.
fn resolve(from: &[String], path: &[String]) -> Vec<String> {
    let mut base: Vec<String> = from.to_vec();
    let mut rest = path;
    if rest.first().is_some_and(|s| s == "crate") {
        base.clear();
        rest = &rest[1..];
    } else {
        // `super` of module a::b (file a/b.rs or a/b/mod.rs) is a
        while rest.first().is_some_and(|s| s == "super") {
            base.pop();
            rest = &rest[1..];
        }
    }
    base.extend(rest.iter().cloned());
    base
}

/// The longest prefix of `path` that is a module with a file in src/.
fn known_module(path: &[String], modules: &BTreeSet<Vec<String>>) -> Vec<String> {
    (0..=path.len())
        .rev()
        .map(|k| path[..k].to_vec())
        .find(|p| modules.contains(p))
        .unwrap_or_default()
}

/// Names the crate root re-exports (`pub use module::...`), to the module they come
/// from: `crate::Error` is the error module's.
fn root_exports(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let code = code(lib);
    for stmt in code.split(';') {
        let s = stmt.trim();
        let Some(rest) = s.strip_prefix("pub use ") else {
            continue;
        };
        let module: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let names: Vec<&str> = match (rest.find('{'), rest.rfind('}')) {
            (Some(a), Some(b)) => rest[a + 1..b].split(',').collect(),
            _ => rest.rsplit("::").take(1).collect(),
        };
        for n in names {
            let n = n.trim();
            if !n.is_empty() {
                map.insert(n.to_string(), module.clone());
            }
        }
    }
    map
}

struct Crate {
    /// Per file (module path): the module paths it uses, besides its own.
    uses: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
}

fn read_crate() -> Crate {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    assert!(files.len() > 20, "src/ not found: {:?}", src());
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_path(f)).collect();
    let lib = fs::read_to_string(src().join("lib.rs")).unwrap_or_default();
    let exports = root_exports(&lib);
    let mut uses = BTreeMap::new();
    for f in &files {
        let from = module_path(f);
        if from.is_empty() {
            continue; // lib.rs: the root declares and re-exports every floor
        }
        let text = fs::read_to_string(f).unwrap_or_default();
        let mut set = BTreeSet::new();
        for p in paths(&code(&text)) {
            let mut target = resolve(&from, &p);
            if !target.is_empty() && !modules.contains(&target[..1]) {
                // a root re-export (`crate::Error`) or a root function
                match exports.get(&target[0]) {
                    Some(m) => target = vec![m.clone()],
                    None => continue,
                }
            }
            let m = known_module(&target, &modules);
            if !m.is_empty() && m != from {
                set.insert(m);
            }
        }
        uses.insert(from, set);
    }
    Crate { uses }
}

#[test]
fn every_module_is_on_a_declared_floor() {
    let c = read_crate();
    let tops: BTreeSet<&String> = c.uses.keys().filter_map(|m| m.first()).collect();
    let missing: Vec<&&String> = tops.iter().filter(|t| floor(t).is_none()).collect();
    assert!(
        missing.is_empty(),
        "modules with no floor in FLOORS (add them, and to src/README.md): {missing:?}"
    );
}

#[test]
fn imports_only_go_down() {
    let c = read_crate();
    let mut bad = Vec::new();
    for (from, targets) in &c.uses {
        let top = &from[0];
        let Some(f) = floor(top) else { continue };
        for t in targets {
            let tt = &t[0];
            if tt == top {
                continue;
            }
            match floor(tt) {
                Some(g) if g > f => {}
                _ => bad.push(format!("{} uses {}", from.join("::"), t.join("::"))),
            }
        }
    }
    assert!(
        bad.is_empty(),
        "imports that go up a floor or across one:\n{}",
        bad.join("\n")
    );
}

/// Within each folder, the files other than mod.rs (and the subfolders) must not
/// import each other in a circle; mod.rs may declare what they share.
#[test]
fn no_circle_among_the_files_of_a_folder() {
    let c = read_crate();
    // edges between siblings: (parent, from child, to child)
    let mut edges: BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (from, targets) in &c.uses {
        for t in targets {
            // the deepest common parent, and the children of it on each side
            let common = from.iter().zip(t).take_while(|(a, b)| a == b).count();
            if common >= from.len() || common >= t.len() {
                continue; // one is inside the other: a folder's mod.rs and its files
            }
            let parent = from[..common].to_vec();
            edges
                .entry(parent)
                .or_default()
                .entry(from[common].clone())
                .or_default()
                .insert(t[common].clone());
        }
    }
    let mut circles = Vec::new();
    for (parent, g) in &edges {
        if parent.is_empty() {
            continue; // the floors' own test covers the top level
        }
        if let Some(cycle) = find_cycle(g) {
            circles.push(format!(
                "in src/{}: {}",
                parent.join("/"),
                cycle.join(" -> ")
            ));
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut c = stack[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, g, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in g.keys() {
        if let Some(c) = visit(n, g, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

/// The checker itself: it sees an upward import, a circle and a root re-export.
#[test]
fn the_checker_finds_what_it_looks_for() {
    let code = code("use crate::{schedule::auto, report::Report};\n// crate::runtime\nlet e = crate::Error::X; super::super::kernel::expr::Expr::new();");
    let p = paths(&code);
    assert!(
        p.contains(&vec!["crate".into(), "schedule".into()]),
        "{p:?}"
    );
    assert!(p.contains(&vec!["crate".into(), "report".into()]), "{p:?}");
    assert!(
        !p.iter().any(|x| x.contains(&"runtime".to_string())),
        "comments are not code"
    );
    assert!(p.contains(&vec!["crate".into(), "Error".into(), "X".into()]));
    let from: Vec<String> = vec!["device".into(), "gpu".into(), "launch".into()];
    let up = resolve(&from, &["super".into(), "super".into(), "kernel".into()]);
    assert_eq!(up, ["device", "kernel"]);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("expr".into()).or_default().insert("param".into());
    assert_eq!(find_cycle(&g), None);
    g.entry("param".into()).or_default().insert("expr".into());
    assert!(find_cycle(&g).is_some());
    let ex = root_exports("pub use error::{Error, Result};\npub use device::sim::SimDevice;");
    assert_eq!(ex.get("Error").map(String::as_str), Some("error"));
    assert_eq!(ex.get("SimDevice").map(String::as_str), Some("device"));
    assert!(floor("schedule") < floor("device"));
}
