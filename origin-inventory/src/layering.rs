//! The origin's modules form no import circle: domain modules never reach
//! into the HTTP layer (`api`), and no module depends, however indirectly,
//! on one that depends on it. Read from the source, so a new `use` that
//! closes a circle fails here with the circle named.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every module of the crate (by path, `api::checkout`) with its source.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, prefix: &[String], found: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            if path.is_dir() {
                walk(&path, &[prefix, &[name]].concat(), found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let module = match name.as_str() {
                    "lib" | "main" => continue,
                    "mod" => prefix.to_vec(),
                    _ => [prefix, &[name]].concat(),
                };
                found.insert(module.join("::"), std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut found = BTreeMap::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &[], &mut found);
    found
}

/// The modules `source` (of `module`) names: its child modules and every
/// `crate::…` path, each resolved to the longest module it starts with.
/// Comments do not count.
fn dependencies(module: &str, source: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let code: String = source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .map(|line| format!("{line}\n"))
        .collect();
    let mut named = BTreeSet::new();
    for line in code.lines() {
        let declared = line.trim_start().trim_start_matches("pub ").strip_prefix("mod ");
        if let Some(child) = declared.and_then(|rest| rest.strip_suffix(';')) {
            named.insert(if module.is_empty() { child.to_owned() } else { format!("{module}::{child}") });
        }
    }
    for (at, _) in code.match_indices("crate::") {
        let path: String = code[at + "crate::".len()..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        let longest =
            (1..=segments.len()).rev().map(|n| segments[..n].join("::")).find(|m| known.contains(m));
        named.extend(longest);
    }
    named.remove(module);
    named
}

/// A circle in `graph`, as the modules along it, if there is one.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            return Some([&path[start..], &[module.to_owned()]].concat());
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for next in graph.get(module).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|module| visit(module, graph, &mut Vec::new(), &mut done))
}

fn graph_of(sources: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let known: BTreeSet<String> = sources.keys().cloned().collect();
    sources.iter().map(|(module, source)| (module.clone(), dependencies(module, source, &known))).collect()
}

#[test]
fn no_module_depends_on_itself_through_others() {
    let graph = graph_of(&modules());
    assert!(graph.len() > 30, "the modules were found: {:?}", graph.keys());
    assert_eq!(circle(&graph), None, "an import circle");
}

#[test]
fn domain_modules_do_not_reach_into_the_http_layer() {
    for (module, uses) in graph_of(&modules()) {
        let outer = ["api", "app", "state", "test_support"];
        if outer.iter().any(|layer| module == *layer || module.starts_with(&format!("{layer}::"))) {
            continue;
        }
        let reached: Vec<_> =
            uses.iter().filter(|m| *m == "api" || m.starts_with("api::") || *m == "state").collect();
        assert!(reached.is_empty(), "{module} uses {reached:?}");
    }
}

#[test]
fn a_circle_is_found_and_named() {
    let sources = BTreeMap::from([
        ("a".to_owned(), "use crate::b::thing;\n// crate::c in a comment\n".to_owned()),
        ("b".to_owned(), "pub mod inner;\nfn f() { crate::c::go() }\n".to_owned()),
        ("b::inner".to_owned(), String::new()),
        ("c".to_owned(), "use crate::a::X;\n".to_owned()),
    ]);
    let graph = graph_of(&sources);
    assert_eq!(graph["b"], BTreeSet::from(["b::inner".to_owned(), "c".to_owned()]));
    assert_eq!(graph["a"], BTreeSet::from(["b".to_owned()]), "comments do not count");
    assert_eq!(circle(&graph), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
    let mut open = sources;
    open.insert("c".to_owned(), "use crate::b::inner::Y;\n".to_owned());
    assert_eq!(circle(&graph_of(&open)), None);
}
