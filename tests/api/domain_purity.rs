//! The domain core stays free of I/O: no async runtime, database, web
//! framework or JSON in its non-test code.

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
