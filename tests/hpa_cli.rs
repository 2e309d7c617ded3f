//! `tickscale hpa FILE` through the binary: the reference cases, and a bad case file.

use std::process::{Command, Output};

fn hpa(file: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tickscale"))
        .arg("hpa")
        .arg(file)
        .output()
        .expect("the binary runs")
}

#[test]
fn the_reference_cases_print_one_line_each_with_the_controllers_answers() {
    let file = tickscale::data::shared_reference_file("hpa-cases.json");
    let output = hpa(&file);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let expected: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a JSON object"))
        .collect();
    assert_eq!(lines.len(), expected.len());
    for (line, case) in lines.iter().zip(&expected) {
        assert_eq!(line["name"], case["name"]);
        assert_eq!(
            line["replicas"], case["expect"]["replicas"],
            "{}",
            case["name"]
        );
        let resource = case["metric"]["type"] == "resource";
        assert_eq!(
            line.get("utilization_percent").is_some(),
            resource,
            "{}: utilization_percent only for resource metrics",
            case["name"]
        );
        if resource {
            assert_eq!(
                line["utilization_percent"],
                case["expect"]["utilization_percent"]
            );
        }
        assert_eq!(line["matches_expect"], true, "{}", case["name"]);
    }
}

#[test]
fn a_case_with_an_unknown_field_fails_naming_the_file_case_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("mine.json");
    let text = r#"[
  {"name": "fine", "kind": "normalize", "current_replicas": 5, "desired_replicas": 7,
   "min_replicas": 3, "max_replicas": 8, "recommendations": [], "scale_events": [],
   "behavior": null},
  {"name": "typo", "kind": "normalize", "current_replicas": 5, "desired_replicas": 7,
   "min_replica": 3, "max_replicas": 8, "recommendations": [], "scale_events": [],
   "behavior": null}
]"#;
    std::fs::write(&file, text).expect("write");
    let output = hpa(&file);
    assert!(!output.status.success());
    assert!(
        output.stdout.is_empty(),
        "no case is evaluated from a bad file"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(r#"case 1 ("typo")"#), "{stderr}");
    assert!(stderr.contains("mine.json"), "{stderr}");
    assert!(stderr.contains("unknown field `min_replica`"), "{stderr}");
    assert!(stderr.contains("at line 5 column 3"), "{stderr}");
}
