//! The domain core stays free of I/O: no async runtime, database, web
//! framework or JSON in its non-test code. And the crates meant for edge
//! boxes and for every side of a wire ship none of the server's stacks.

#[test]
fn the_domain_core_imports_no_io_crates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/domain");
    let forbidden = [
        "tokio",
        "sqlx",
        "axum",
        "serde_json",
        "reqwest",
        "rumqttc",
        "std::fs",
        "std::net",
        "std::time",
        "std::thread",
    ];
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        // Tests may use what they like; only the code above them counts.
        let code = text.split("#[cfg(test)]").next().unwrap();
        for f in forbidden {
            let used = code.contains(&format!("{f}::"))
                || code.contains(&format!("use {f}"))
                || code.contains(&format!("{f}!"));
            assert!(!used, "{} uses {f}", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 4, "expected the domain modules, found {checked}");
}

/// The crates a `Cargo.toml` ships (its `[dependencies]` and
/// target-specific variants, not `[dev-dependencies]`), whether written as
/// `name = …` lines or as `[dependencies.name]` headers.
fn shipped_dependencies(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut section = "";
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
            if let Some((head, name)) = line.trim_matches(['[', ']']).rsplit_once("dependencies.") {
                if !head.ends_with("dev-") {
                    names.push(name.to_string());
                }
            }
            continue;
        }
        let shipped = section.contains("dependencies") && !section.contains("dev-dependencies");
        let name = line
            .split(['=', '.', ' '])
            .next()
            .unwrap_or("")
            .trim_matches('"');
        if shipped && !name.is_empty() && !name.starts_with('#') {
            names.push(name.to_string());
        }
    }
    names
}

#[test]
fn shared_and_edge_crates_ship_none_of_the_server_stacks() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (krate, why, forbidden) in [
        (
            "firmware-bridges/protocol",
            "it is bytes in, values out",
            &[
                "tokio",
                "axum",
                "sqlx",
                "hyper",
                "reqwest",
                "rumqttc",
                "rumqttd",
                "async-std",
                "tokio-serial",
            ][..],
        ),
        (
            "firmware-bridges/relay-io",
            "device I/O for the server and the edge boxes alike",
            &["bondgate", "axum", "sqlx", "rumqttc", "rumqttd"][..],
        ),
        (
            "firmware-bridges/edge",
            "what every edge box shares ships neither the server nor its web and database stacks",
            &["bondgate", "axum", "sqlx", "rumqttd"][..],
        ),
        (
            "firmware-bridges/gate-bridge",
            "the edge box ships neither the server nor its web and database stacks",
            &["bondgate", "axum", "sqlx", "rumqttd"][..],
        ),
        (
            "firmware-bridges/scale-bridge",
            "the edge box ships neither the server nor its web and database stacks",
            &["bondgate", "axum", "sqlx", "rumqttd"][..],
        ),
        (
            "firmware-bridges/printer-bridge",
            "the edge box ships neither the server nor its web and database stacks",
            &["bondgate", "axum", "sqlx", "rumqttd"][..],
        ),
        (
            "firmware-bridges/scanner-bridge",
            "the edge box ships neither the server nor its web and database stacks",
            &["bondgate", "axum", "sqlx", "rumqttd"][..],
        ),
    ] {
        let manifest = std::fs::read_to_string(root.join(krate).join("Cargo.toml")).unwrap();
        let shipped = shipped_dependencies(&manifest);
        assert!(!shipped.is_empty(), "{krate}: no dependencies read");
        for name in &shipped {
            assert!(
                !forbidden.contains(&name.as_str()),
                "{krate} must not depend on {name}: {why}"
            );
        }
    }
}
