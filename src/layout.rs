//! The layout rules of the crate doc, checked on the source itself:
//! - a door (`src/doors/<door>`) never imports another door;
//! - only the router (`src/router`) and the doors themselves name a door;
//! - no module imports form a circle;
//! - each module imports only modules of its own step of [`LAYERS`] or of the steps before
//!   it (the crate doc's "Layers").
//!
//! An import is any path that starts with `crate::` or `super::` outside comments and test
//! modules, resolved to the longest module it names. A module's use of its own ancestors
//! (a child reading its parent's types) is not counted: a parent is the face of its
//! children, not a layer of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// Every `.rs` file under `src/` (but the binary's `main.rs`) and its source.
fn modules() -> BTreeMap<Module, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && let Some(module) = module_of(&root, &path)
            {
                let text = std::fs::read_to_string(&path).expect("a source file");
                out.insert(module, text);
            }
        }
    }
    out
}

fn module_of(root: &Path, path: &Path) -> Option<Module> {
    let relative = path.strip_prefix(root).ok()?.with_extension("");
    let mut parts: Module = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.last().map(String::as_str) {
        Some("main") if parts.len() == 1 => return None,
        Some("lib") if parts.len() == 1 => parts.clear(),
        Some("mod") => {
            parts.pop();
        }
        _ => {}
    }
    Some(parts)
}

/// The code of a file without comments and without its test module.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]")
            && lines.peek().is_some_and(|next| {
                let next = next.trim();
                next.starts_with("mod ") && next.ends_with('{')
            })
        {
            break; // the test module, at the end of the file
        }
        let line = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Expands `a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e`.
fn expand(path: &str) -> Vec<String> {
    let path: String = path.split_whitespace().collect();
    let Some(open) = path.find('{') else {
        return vec![path];
    };
    let (prefix, rest) = path.split_at(open);
    let inner = &rest[1..rest.rfind('}').unwrap_or(rest.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand(&format!("{prefix}{p}")))
        .collect()
}

/// The paths a file names: its `use` trees, expanded; every inline `crate::…` or
/// `super::…` path; and every path that starts with a name a `use` or a `mod` brought in
/// (`doors::ntfy::route` after `use crate::doors;`).
fn paths(me: &Module, code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let before = rest[..i].chars().last();
        rest = &rest[i + 4..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(end) = rest.find(';') {
            let tree = &rest[..end];
            if tree.starts_with("crate::") || tree.starts_with("super::") {
                out.extend(expand(tree));
            }
        }
    }
    let mut aliases: Vec<(String, String)> = Vec::new();
    for path in &out {
        let (path, alias) = match path.split_once(" as ") {
            Some((path, alias)) => (path.trim(), alias.trim()),
            None => (path.as_str(), path.rsplit("::").next().unwrap_or("")),
        };
        let path = path.trim_end_matches("::self");
        let alias = if alias == "self" {
            path.rsplit("::").next().unwrap_or("")
        } else {
            alias
        };
        aliases.push((alias.to_owned(), path.to_owned()));
    }
    for line in code.lines() {
        let declared = line.trim_start().trim_start_matches("pub ");
        if let Some(child) = declared
            .strip_prefix("mod ")
            .and_then(|d| d.strip_suffix(';'))
        {
            let mut path = vec!["crate".to_owned()];
            path.extend(me.iter().cloned());
            path.push(child.trim().to_owned());
            aliases.push((child.trim().to_owned(), path.join("::")));
        }
    }
    let starts: Vec<(String, String)> = [("crate", "crate"), ("super", "super")]
        .iter()
        .map(|(a, p)| ((*a).to_owned(), (*p).to_owned()))
        .chain(
            aliases
                .into_iter()
                .filter(|(a, _)| !a.is_empty() && a != "*"),
        )
        .collect();
    for (alias, full) in starts {
        let start = format!("{alias}::");
        for (i, _) in code.match_indices(&start) {
            if code[..i]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
            {
                continue;
            }
            let path: String = code[i + alias.len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            out.push(format!("{full}{path}"));
        }
    }
    out
}

/// The module a path names: the longest known prefix of it.
fn resolve(modules: &BTreeMap<Module, String>, me: &Module, path: &str) -> Option<Module> {
    let mut segments = path
        .split("::")
        .map(|s| s.split(" as ").next().unwrap_or(s));
    let mut full = match segments.next()? {
        "crate" => Vec::new(),
        "super" => me[..me.len().saturating_sub(1)].to_vec(),
        _ => return None,
    };
    for segment in segments {
        if segment == "super" {
            full.pop();
        } else if !segment.is_empty() {
            full.push(segment.to_owned());
        }
    }
    (0..=full.len())
        .rev()
        .map(|n| full[..n].to_vec())
        .find(|m| modules.contains_key(m))
}

/// Module → the modules it imports (not itself, not its ancestors).
fn imports() -> BTreeMap<Module, BTreeSet<Module>> {
    let modules = modules();
    modules
        .iter()
        .map(|(me, text)| {
            let code = code(text);
            let deps = paths(me, &code)
                .iter()
                .filter_map(|p| resolve(&modules, me, p))
                .filter(|dep| !me.starts_with(dep))
                .collect();
            (me.clone(), deps)
        })
        .collect()
}

/// The door a module belongs to, if it is in one.
fn door(module: &Module) -> Option<&str> {
    match module.as_slice() {
        [doors, door, ..] if doors == "doors" => Some(door),
        _ => None,
    }
}

fn name(module: &Module) -> String {
    if module.is_empty() {
        "crate".into()
    } else {
        module.join("::")
    }
}

/// The crate doc's layers, in order: each top-level module is in one step.
const LAYERS: &[&[&str]] = &[
    &[
        "clock",
        "json",
        "names",
        "secret",
        "logger",
        "metrics",
        "locations",
        "reconnects",
        "sse",
        "sd_notify",
        "vapid",
        "tls",
        "transport",
    ],
    &["store", "limits"],
    &["config", "hub", "signers"],
    &["http", "ws", "auth", "upstream", "error"],
    &["state", "stream", "csrf"],
    &["delivery"],
    &["route"],
    &["doors"],
    &["router", "server", "commands", "control", "cli"],
];

fn step(module: &str) -> Option<usize> {
    LAYERS.iter().position(|step| step.contains(&module))
}

#[test]
fn each_module_imports_only_its_own_layer_and_those_below() {
    let mut wrong = Vec::new();
    for (module, deps) in imports() {
        let Some(top) = module.first() else {
            continue; // the crate root declares the modules
        };
        if top == "layout" {
            continue;
        }
        let Some(mine) = step(top) else {
            wrong.push(format!(
                "{top} is in no step of LAYERS (src/layout.rs, the crate doc)"
            ));
            continue;
        };
        for dep in deps.iter().filter_map(|d| d.first()).filter(|d| *d != top) {
            match step(dep) {
                Some(theirs) if theirs <= mine => {}
                _ => wrong.push(format!("{} imports {dep}, a later layer", name(&module))),
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(wrong.is_empty(), "layers broken: {wrong:#?}");
}

#[test]
fn a_door_never_imports_another_door() {
    let mut wrong = Vec::new();
    for (module, deps) in imports() {
        for dep in deps.iter().filter(|d| door(d).is_some()) {
            let allowed = match door(&module) {
                Some(mine) => door(dep) == Some(mine),
                None => module.first().is_some_and(|m| m == "router"),
            };
            if !allowed {
                wrong.push(format!("{} imports {}", name(&module), name(dep)));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "doors named outside the router: {wrong:#?}"
    );
}

#[test]
fn no_module_imports_form_a_circle() {
    let imports = imports();
    // Depth-first search; a module met again while on the path closes a circle.
    fn visit<'a>(
        module: &'a Module,
        imports: &'a BTreeMap<Module, BTreeSet<Module>>,
        path: &mut Vec<&'a Module>,
        done: &mut BTreeSet<&'a Module>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| *m == module) {
            let mut circle: Vec<String> = path[at..].iter().map(|m| name(m)).collect();
            circle.push(name(module));
            return Some(circle);
        }
        if !done.insert(module) {
            return None;
        }
        path.push(module);
        for dep in imports.get(module).into_iter().flatten() {
            if let Some(circle) = visit(dep, imports, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in imports.keys() {
        let circle = visit(module, &imports, &mut Vec::new(), &mut done);
        assert!(
            circle.is_none(),
            "an import circle: {}",
            circle.unwrap().join(" → ")
        );
    }
}

#[test]
fn the_checks_see_imports() {
    let imports = imports();
    let router = imports.get(&vec!["router".to_owned()]).expect("src/router");
    assert!(router.contains(&vec!["doors".to_owned(), "ntfy".to_owned()]));
    let matrix = &imports[&vec!["doors".to_owned(), "matrix".to_owned()]];
    assert!(matrix.contains(&vec!["delivery".to_owned(), "endpoints".to_owned()]));
    assert_eq!(
        expand("crate::store::{self, queue::{A, B}}"),
        [
            "crate::store::self",
            "crate::store::queue::A",
            "crate::store::queue::B"
        ]
    );
}
