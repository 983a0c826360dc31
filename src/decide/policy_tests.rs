use super::*;
use crate::config::{BoardConfig, LiftConfig};

fn at(weekday: u8, h: u16, m: u16) -> LocalTime {
    LocalTime {
        weekday,
        minute: h * 60 + m,
    }
}

fn level(
    name: &str,
    actuate: bool,
    gates: &[&str],
    floor: Option<i32>,
    sched: &[&str],
) -> AccessLevel {
    AccessLevel {
        name: name.into(),
        actuate,
        gates: gates.iter().map(|s| s.to_string()).collect(),
        floor,
        schedule: sched.iter().map(|s| s.to_string()).collect(),
    }
}

fn board() -> Option<BoardConfig> {
    Some(BoardConfig {
        host: "b".into(),
        port: 6053,
        encryption_key: Default::default(),
    })
}

fn gates() -> Vec<GateConfig> {
    vec![
        GateConfig {
            name: "door".into(),
            board: board(),
            lock: Some("front_lock".into()),
            lift: None,
        },
        GateConfig {
            name: "lift".into(),
            board: board(),
            lock: None,
            lift: Some(LiftConfig {
                target_floor: "target".into(),
                current_floor: "current".into(),
                floors: vec![0, 1],
            }),
        },
    ]
}

#[test]
fn windows_parse_and_contain() {
    let w = Window::parse("Mon-Fri 08:00-18:00").unwrap();
    assert!(w.contains(at(0, 8, 0)));
    assert!(w.contains(at(4, 17, 59)));
    assert!(!w.contains(at(4, 18, 0)));
    assert!(!w.contains(at(5, 12, 0)));
    // Overnight, belonging to the start day; day ranges may wrap.
    let w = Window::parse("fri-sun 22:00-06:00").unwrap();
    assert!(w.contains(at(4, 23, 0)));
    assert!(w.contains(at(5, 5, 59)), "Saturday early = Friday night");
    assert!(w.contains(at(0, 3, 0)), "Monday early = Sunday night");
    assert!(!w.contains(at(0, 23, 0)));
    let w = Window::parse("Sat,Sunday 10:00-24:00").unwrap();
    assert!(w.contains(at(6, 23, 59)) && !w.contains(at(2, 12, 0)));
    assert!(Window::parse("07:00-09:00").unwrap().contains(at(3, 8, 0)));
}

#[test]
fn bad_schedules_are_config_errors_naming_the_option() {
    for bad in [
        "Mon-Fry 08:00-18:00",
        "Mon-Fri 8-18",
        "Mon 25:00-26:00",
        "Mon 08:00-08:00",
        "a b c",
    ] {
        let levels = [level("guest", true, &[], None, &["Sat 10:00-12:00", bad])];
        let errs = Policy::new(&levels, &gates()).unwrap_err();
        assert_eq!(errs.len(), 1, "{bad}");
        assert_eq!(errs[0].option, "access_levels[0].schedule[1]", "{bad}");
        assert!(
            errs[0]
                .problem
                .contains(bad.split_whitespace().next().unwrap()),
            "{errs:?}"
        );
    }
}

#[test]
fn verdicts_follow_the_rules() {
    let levels = [
        level("resident", true, &[], Some(1), &[]),
        level("guest", true, &["door"], None, &["Mon-Fri 08:00-18:00"]),
        level("notify", false, &[], None, &[]),
        level("visitor", true, &[], Some(5), &[]),
    ];
    let p = Policy::new(&levels, &gates()).unwrap();
    let noon = at(2, 12, 0);
    let unlock = Action::Unlock {
        lock: "front_lock".into(),
    };
    assert_eq!(
        p.verdict("resident", "door", noon),
        Verdict::Granted {
            actions: vec![unlock.clone()]
        }
    );
    assert_eq!(
        p.verdict("resident", "lift", noon),
        Verdict::Granted {
            actions: vec![Action::CallLift { floor: 1 }]
        }
    );
    assert_eq!(
        p.verdict("guest", "door", noon),
        Verdict::Granted {
            actions: vec![unlock]
        }
    );
    let reason = |v: Verdict| match v {
        Verdict::Denied { reason } => reason,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        reason(p.verdict("guest", "lift", noon)),
        "level 'guest' does not open lift"
    );
    assert_eq!(
        reason(p.verdict("guest", "door", at(5, 12, 0))),
        "outside the schedule of level 'guest' (Mon-Fri 08:00-18:00)"
    );
    assert_eq!(p.verdict("notify", "door", noon), Verdict::NotifyOnly);
    assert_eq!(reason(p.verdict("blocked", "door", noon)), "blocked");
    assert_eq!(
        reason(p.verdict("visitor", "lift", noon)),
        "the lift at lift does not serve floor 5"
    );
    assert_eq!(
        reason(p.verdict("staff", "door", noon)),
        "access level 'staff' is not configured"
    );
}

#[test]
fn built_in_levels_without_configuration() {
    let p = Policy::default();
    let noon = at(0, 12, 0);
    // No gate configured: granted with no actions (Home Assistant acts on the event).
    assert_eq!(
        p.verdict("resident", "front", noon),
        Verdict::Granted { actions: vec![] }
    );
    assert_eq!(p.verdict("notify", "front", noon), Verdict::NotifyOnly);
    assert!(matches!(
        p.verdict("blocked", "front", noon),
        Verdict::Denied { .. }
    ));
    assert!(matches!(
        p.verdict("guest", "front", noon),
        Verdict::Denied { .. }
    ));
}

#[test]
fn service_options_with_a_bad_schedule_are_refused_naming_it() {
    let errs = ServiceConfig::from_json(
        r#"{"access_levels": [{"name": "guest", "actuate": true, "schedule": ["Mon-Fri 08:00-18:00", "Sun 9-5"]}]}"#,
    )
    .unwrap_err();
    // (Other problems of this minimal config, such as having no camera, are reported alongside.)
    let schedule: Vec<String> = errs
        .iter()
        .filter(|e| e.option.contains("schedule"))
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        schedule,
        vec!["option access_levels[0].schedule[1]: 'Sun 9-5': '9' is not a time like 08:30"]
    );
}
