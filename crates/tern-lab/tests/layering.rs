//! The architecture's dependency rules (docs/architecture.md), checked against `cargo
//! metadata` so a change that breaks them fails here: the engine stays sans-IO, the datapath
//! crates never reach into the protocol, and `tern-rt` is the one library where they meet.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Each workspace crate's normal (non-dev) dependencies on other workspace crates.
fn workspace_deps() -> BTreeMap<String, BTreeSet<String>> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let names: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null()) // normal dependencies only
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .filter(|d| names.contains(d))
                .collect();
            (p["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

#[test]
fn dependency_rules_hold() {
    let deps = workspace_deps();
    let of = |c: &str| deps.get(c).unwrap_or_else(|| panic!("no crate {c}"));
    assert!(
        of("tern-wire").is_empty(),
        "tern-wire depends on no workspace crate: {:?}",
        of("tern-wire")
    );
    assert_eq!(
        of("tern-tcp").iter().collect::<Vec<_>>(),
        ["tern-wire"],
        "tern-tcp depends only on tern-wire"
    );
    for io in ["tern-xsk", "tern-bpf"] {
        assert!(
            !of(io).contains("tern-tcp"),
            "{io} must not depend on the engine"
        );
        assert!(
            of(io).contains("tern-netdev"),
            "{io} looks interfaces up through tern-netdev, not a copy of its own"
        );
    }
    assert!(
        of("tern-netdev").is_empty(),
        "tern-netdev is a leaf: {:?}",
        of("tern-netdev")
    );
    // Libraries that reach both the datapath and the engine: only tern-rt.
    let binaries = ["ternd", "tern-bench", "tern-benches"];
    for (name, d) in &deps {
        let io = d.contains("tern-xsk") || d.contains("tern-bpf");
        if io && d.contains("tern-tcp") && !binaries.contains(&name.as_str()) {
            assert_eq!(
                name, "tern-rt",
                "{name} joins the datapath and the engine; only tern-rt may"
            );
        }
    }
}

#[test]
fn protocol_crates_forbid_unsafe() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for krate in ["tern-wire", "tern-tcp", "tern-sim", "tern-rt", "ternd"] {
        let lib = std::fs::read_to_string(root.join(krate).join("src/lib.rs")).unwrap();
        assert!(
            lib.contains("#![forbid(unsafe_code)]"),
            "{krate} must forbid unsafe code"
        );
    }
}
