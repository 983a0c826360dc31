//! The subset of Python's pickle machine that PyTorch checkpoints use.
//!
//! Written here rather than taken from `candle_core::pickle` because that one reads from a stream and trusts
//! lengths and integer widths in the file (a corrupt file can make it allocate gigabytes or overflow a
//! shift); this one works on an in-memory slice, so every length is checked against what is really there.
//!
//! Objects are only what a state dict needs: numbers, strings, tuples, lists, dicts, globals, persistent
//! ids, and calls (`REDUCE`) kept as data for the caller to interpret ([`Value::Call`]).

use std::collections::HashMap;
use std::rc::Rc;

/// A Python object as far as a checkpoint needs one.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer wider than 64 bits, as its little-endian two's-complement bytes (the magic number).
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Rc<Vec<Value>>),
    List(Vec<Value>),
    /// Insertion-ordered, like `OrderedDict`.
    Dict(Vec<(Value, Value)>),
    /// `module.name`, as pushed by `GLOBAL`.
    Global(String, String),
    /// `callable(*args)` from `REDUCE` / `NEWOBJ`, left for the caller to interpret.
    Call(Rc<(Value, Value)>),
    /// The object a `persistent_load(id)` call would return; the id is kept.
    Persistent(Rc<Value>),
    /// The stack marker of `MARK`; never part of a finished object.
    Mark,
}

/// Why a pickle could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PickleError {
    #[error("pickle ends early at byte {0}")]
    Truncated(usize),
    #[error("unsupported pickle opcode 0x{op:02x} at byte {at}")]
    Opcode { op: u8, at: usize },
    #[error("malformed pickle at byte {at}: {what}")]
    Malformed { at: usize, what: &'static str },
    #[error("pickle copies more objects than a file of its size can hold (at byte {0})")]
    TooLarge(usize),
}

/// Reads one pickle starting at `bytes[pos..]`; returns the object and the position after its `STOP`.
pub fn load(bytes: &[u8], pos: usize) -> Result<(Value, usize), PickleError> {
    let mut m = Machine {
        r: Reader { bytes, pos },
        stack: Vec::new(),
        memo: HashMap::new(),
        budget: COPY_BUDGET_BASE + COPY_BUDGET_PER_BYTE * bytes.len(),
    };
    let v = m.run()?;
    Ok((v, m.r.pos))
}

/// Memo fetches deep-copy lists and dicts; a crafted file could double a list with every few bytes. The
/// number of copied objects is capped far above what a real checkpoint needs (a few per byte).
const COPY_BUDGET_BASE: usize = 1 << 20;
const COPY_BUDGET_PER_BYTE: usize = 16;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(PickleError::Truncated(self.bytes.len()))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, PickleError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, PickleError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// Bytes up to (not including) the next newline; for `GLOBAL`'s text arguments.
    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.bytes[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(PickleError::Truncated(self.bytes.len()))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }
    fn utf8(&mut self, n: usize) -> Result<String, PickleError> {
        let at = self.pos;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| PickleError::Malformed {
            at,
            what: "string is not UTF-8",
        })
    }
}

struct Machine<'a> {
    r: Reader<'a>,
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
    /// Objects that memo fetches may still copy.
    budget: usize,
}

/// How many objects cloning `v` copies (tuples, calls and persistent ids are shared, not copied).
fn copy_cost(v: &Value) -> usize {
    match v {
        Value::List(items) => 1 + items.iter().map(copy_cost).sum::<usize>(),
        Value::Dict(items) => {
            1 + items
                .iter()
                .map(|(k, v)| copy_cost(k) + copy_cost(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

impl Machine<'_> {
    fn bad(&self, what: &'static str) -> PickleError {
        PickleError::Malformed {
            at: self.r.pos,
            what,
        }
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        match self.stack.pop() {
            Some(Value::Mark) | None => Err(self.bad("stack underflow")),
            Some(v) => Ok(v),
        }
    }

    fn top(&mut self) -> Result<&mut Value, PickleError> {
        let at = self.r.pos;
        self.stack.last_mut().ok_or(PickleError::Malformed {
            at,
            what: "stack underflow",
        })
    }

    /// Everything above the newest mark, with the mark removed.
    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let i = self
            .stack
            .iter()
            .rposition(|v| *v == Value::Mark)
            .ok_or_else(|| self.bad("no mark on the stack"))?;
        let items = self.stack.split_off(i + 1);
        self.stack.pop();
        Ok(items)
    }

    fn memo_get(&mut self, key: u32) -> Result<(), PickleError> {
        let v = self
            .memo
            .get(&key)
            .ok_or_else(|| self.bad("memo key not set"))?;
        self.budget = self
            .budget
            .checked_sub(copy_cost(v))
            .ok_or(PickleError::TooLarge(self.r.pos))?;
        let v = v.clone();
        self.stack.push(v);
        Ok(())
    }

    fn memo_put(&mut self, key: u32) -> Result<(), PickleError> {
        let cost = copy_cost(self.top()?);
        self.budget = self
            .budget
            .checked_sub(cost)
            .ok_or(PickleError::TooLarge(self.r.pos))?;
        let v = self.top()?.clone();
        self.memo.insert(key, v);
        Ok(())
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<(), PickleError> {
        if items.len() % 2 != 0 {
            return Err(self.bad("odd number of dict items"));
        }
        let at = self.r.pos;
        let Value::Dict(d) = self.top()? else {
            return Err(PickleError::Malformed {
                at,
                what: "SETITEM(S) on a non-dict",
            });
        };
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.push((k, v));
        }
        Ok(())
    }

    fn append(&mut self, items: Vec<Value>) -> Result<(), PickleError> {
        let at = self.r.pos;
        let Value::List(l) = self.top()? else {
            return Err(PickleError::Malformed {
                at,
                what: "APPEND(S) on a non-list",
            });
        };
        l.extend(items);
        Ok(())
    }

    fn tuple(&mut self, n: usize) -> Result<(), PickleError> {
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.pop()?);
        }
        items.reverse();
        self.stack.push(Value::Tuple(Rc::new(items)));
        Ok(())
    }

    fn run(&mut self) -> Result<Value, PickleError> {
        loop {
            let at = self.r.pos;
            let op = self.r.u8()?;
            match op {
                0x80 => {
                    self.r.u8()?; // PROTO n: nothing to do
                }
                0x95 => {
                    self.r.u64()?; // FRAME length: framing is only a read-ahead hint
                }
                b'.' => return self.pop(),
                b'(' => self.stack.push(Value::Mark),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'K' => {
                    let v = self.r.u8()?;
                    self.stack.push(Value::Int(v.into()))
                }
                b'M' => {
                    let v = self.r.u16()?;
                    self.stack.push(Value::Int(v.into()))
                }
                b'J' => {
                    let v = self.r.u32()? as i32;
                    self.stack.push(Value::Int(v.into()))
                }
                0x8a => {
                    let n = self.r.u8()? as usize;
                    let b = self.r.take(n)?;
                    self.stack.push(long_le(b));
                }
                b'G' => {
                    let b = self.r.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.stack.push(Value::Float(f64::from_be_bytes(a)))
                }
                b'X' => {
                    let n = self.r.u32()? as usize;
                    let s = self.r.utf8(n)?;
                    self.stack.push(Value::Str(s))
                }
                0x8c => {
                    let n = self.r.u8()? as usize;
                    let s = self.r.utf8(n)?;
                    self.stack.push(Value::Str(s))
                }
                b'C' => {
                    let n = self.r.u8()? as usize;
                    let b = self.r.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b))
                }
                b'B' => {
                    let n = self.r.u32()? as usize;
                    let b = self.r.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b))
                }
                b')' => self.stack.push(Value::Tuple(Rc::new(Vec::new()))),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(Rc::new(items)))
                }
                0x85 => self.tuple(1)?,
                0x86 => self.tuple(2)?,
                0x87 => self.tuple(3)?,
                b']' => self.stack.push(Value::List(Vec::new())),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(items))
                }
                b'a' => {
                    let v = self.pop()?;
                    self.append(vec![v])?
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?
                }
                b'}' => self.stack.push(Value::Dict(Vec::new())),
                b'd' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Dict(Vec::new()));
                    self.set_items(items)?
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?
                }
                b'q' => {
                    let k = self.r.u8()?;
                    self.memo_put(k.into())?
                }
                b'r' => {
                    let k = self.r.u32()?;
                    self.memo_put(k)?
                }
                0x94 => {
                    let k = self.memo.len() as u32;
                    self.memo_put(k)?
                }
                b'h' => {
                    let k = self.r.u8()?;
                    self.memo_get(k.into())?
                }
                b'j' => {
                    let k = self.r.u32()?;
                    self.memo_get(k)?
                }
                b'c' => {
                    let module = self.r.line()?;
                    let name = self.r.line()?;
                    self.stack.push(Value::Global(module, name))
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(module), Value::Str(name)) = (module, name) else {
                        return Err(self.bad("STACK_GLOBAL needs two strings"));
                    };
                    self.stack.push(Value::Global(module, name))
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let f = self.pop()?;
                    self.stack.push(call(f, args))
                }
                b'b' => {
                    // BUILD sets an object's state (`OrderedDict._metadata` here); a state dict does not need it.
                    self.pop()?;
                    self.top()?;
                }
                b'Q' => {
                    let id = self.pop()?;
                    self.stack.push(Value::Persistent(Rc::new(id)))
                }
                op => return Err(PickleError::Opcode { op, at }),
            }
        }
    }
}

/// `LONG1` bytes: an `Int` when it fits in 64 bits, else kept as bytes.
fn long_le(b: &[u8]) -> Value {
    if b.len() > 8 {
        return Value::BigInt(b.to_vec());
    }
    if b.is_empty() {
        return Value::Int(0);
    }
    let fill = if b[b.len() - 1] & 0x80 != 0 { 0xff } else { 0 };
    let mut a = [fill; 8];
    a[..b.len()].copy_from_slice(b);
    Value::Int(i64::from_le_bytes(a))
}

/// `REDUCE`: an empty `OrderedDict()` becomes a dict (items follow); any other call is kept as data.
fn call(f: Value, args: Value) -> Value {
    if let Value::Global(m, n) = &f {
        if m == "collections" && n == "OrderedDict" {
            return Value::Dict(Vec::new());
        }
    }
    Value::Call(Rc::new((f, args)))
}

/// Unit tests of the pickle machine on hand-assembled pickles (checked against Python's `pickle.loads`).
#[cfg(test)]
mod tests {
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
}
