//! Unit tests of the pickle machine on hand-assembled pickles (checked against Python's `pickle.loads`).

use super::*;

#[test]
fn reads_a_protocol_2_dict() {
    // pickle.dumps({'a': (1, 'x'), 'b': [2.5, None]}, protocol=2)
    let p = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01X\x01\x00\x00\x00xq\x02\x86q\x03X\x01\x00\x00\x00bq\x04]q\x05(G@\x04\x00\x00\x00\x00\x00\x00Neu.";
    let (v, end) = load(p, 0).unwrap();
    assert_eq!(end, p.len());
    let Value::Dict(d) = v else {
        panic!("not a dict")
    };
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].0, Value::Str("a".into()));
    assert_eq!(
        d[0].1,
        Value::Tuple(Rc::new(vec![Value::Int(1), Value::Str("x".into())]))
    );
    assert_eq!(d[1].1, Value::List(vec![Value::Float(2.5), Value::None]));
}

#[test]
fn truncation_and_garbage_are_errors() {
    let p = b"\x80\x02X\xff\xff\xff\x7fabc";
    assert!(matches!(load(p, 0), Err(PickleError::Truncated(_))));
    assert!(matches!(
        load(b"\xfe", 0),
        Err(PickleError::Opcode { op: 0xfe, .. })
    ));
    assert!(matches!(load(b"a", 0), Err(PickleError::Malformed { .. })));
    assert!(matches!(load(b"", 0), Err(PickleError::Truncated(_))));
}

#[test]
fn self_doubling_lists_hit_the_copy_budget() {
    // L = [] memoised as 0; 64 times: L = [L, L] memoised as 0. Deep copies would double each round.
    let mut p = b"\x80\x02]q\x00".to_vec();
    for _ in 0..64 {
        p.extend_from_slice(b"](h\x00h\x00eq\x00");
    }
    p.push(b'.');
    assert!(matches!(load(&p, 0), Err(PickleError::TooLarge(_))));
}

#[test]
fn wide_longs_are_kept_as_bytes() {
    let (v, _) = load(b"\x8a\x02\xe9\x03.", 0).unwrap();
    assert_eq!(v, Value::Int(1001));
    let (v, _) = load(b"\x8a\x01\xff.", 0).unwrap();
    assert_eq!(v, Value::Int(-1));
    let (v, _) = load(b"\x8a\x09\x01\x00\x00\x00\x00\x00\x00\x00\x01.", 0).unwrap();
    assert!(matches!(v, Value::BigInt(b) if b.len() == 9));
}
