//! Reads a CHECK expression as PostgreSQL prints it back (`pg_get_expr`) well enough to
//! derive values it is evidently written to reject (outside an `IN` list, past a length or
//! range bound) and values it accepts (to build valid rows). Anything it does not understand
//! becomes [`Expr::Opaque`], which simply yields no values: the engine then says it could not
//! derive one instead of guessing.
//!
//! The reading is two-valued on purpose: SQL's NULL semantics (a `NULL` in an `IN` list makes
//! every other value pass) are exactly the mistakes the probes exist to expose.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    Str(String),
    Num(String),
    Null,
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Cmp(Box<Expr>, String, Box<Expr>),
    IsNull(Box<Expr>, bool),
    /// `e op ANY/ALL (ARRAY[...])`; `all` for ALL.
    Any(Box<Expr>, String, Vec<Expr>, bool),
    Col(String),
    Lit(Lit),
    Func(String, Vec<Expr>),
    Opaque,
}

/// A value a probe or the row builder assigns to a column, before it is rendered for the
/// column's type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Null,
    /// Some non-NULL value the type allows.
    Any,
    /// This literal (text form, cast to the column type).
    Literal(String),
    /// A non-NULL value different from all of these.
    NotIn(Vec<String>),
    /// A value of this length, as measured by the named function.
    Length(u64, String),
    /// A number within these inclusive bounds (text form).
    Range(Option<String>, Option<String>),
    /// A value whose length is within these inclusive bounds.
    LengthRange(u64, Option<u64>),
}

/// Both constraints at once, or `None` where they contradict.
pub(crate) fn merge_val(a: &Val, b: &Val) -> Option<Val> {
    use Val::*;
    let f = |s: &String| s.parse::<f64>().ok();
    Some(match (a, b) {
        _ if a == b => a.clone(),
        (Any, v) | (v, Any) if *v != Null => v.clone(),
        (Range(l1, h1), Range(l2, h2)) => {
            let lo = match (l1, l2) {
                (Some(x), Some(y)) => Some(if f(x)? >= f(y)? { x.clone() } else { y.clone() }),
                (x, y) => x.clone().or(y.clone()),
            };
            let hi = match (h1, h2) {
                (Some(x), Some(y)) => Some(if f(x)? <= f(y)? { x.clone() } else { y.clone() }),
                (x, y) => x.clone().or(y.clone()),
            };
            if let (Some(l), Some(h)) = (&lo, &hi) {
                if f(l)? > f(h)? {
                    return None;
                }
            }
            Range(lo, hi)
        }
        (Range(lo, hi), Literal(v)) | (Literal(v), Range(lo, hi)) => {
            let x = f(v)?;
            if lo.as_ref().is_some_and(|l| f(l).is_some_and(|l| x < l))
                || hi.as_ref().is_some_and(|h| f(h).is_some_and(|h| x > h))
            {
                return None;
            }
            Literal(v.clone())
        }
        (LengthRange(l1, h1), LengthRange(l2, h2)) => {
            let lo = (*l1).max(*l2);
            let hi = match (h1, h2) {
                (Some(x), Some(y)) => Some((*x).min(*y)),
                (x, y) => x.or(*y),
            };
            if hi.is_some_and(|h| h < lo) {
                return None;
            }
            LengthRange(lo, hi)
        }
        _ => return None,
    })
}

pub(crate) type Assign = BTreeMap<String, Val>;

const MAX_ALTERNATIVES: usize = 8;

// ---------------------------------------------------------------- tokens

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Str(String),
    Num(String),
    Op(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Cast,
    Dot,
}

// Long by nature: one scanner loop, a branch per token kind, all sharing the cursor.
fn tokenize(s: &str) -> Option<Vec<Tok>> {
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '\'' || ((ch == 'E' || ch == 'e') && c.get(i + 1) == Some(&'\'')) {
            let escapes = ch != '\'';
            if escapes {
                i += 1;
            }
            i += 1;
            let mut v = String::new();
            loop {
                let x = *c.get(i)?;
                if escapes && x == '\\' {
                    v.push(*c.get(i + 1)?);
                    i += 2;
                } else if x == '\'' {
                    if c.get(i + 1) == Some(&'\'') {
                        v.push('\'');
                        i += 2;
                    } else {
                        i += 1;
                        break;
                    }
                } else {
                    v.push(x);
                    i += 1;
                }
            }
            out.push(Tok::Str(v));
        } else if ch == '"' {
            i += 1;
            let mut v = String::new();
            loop {
                let x = *c.get(i)?;
                if x == '"' {
                    if c.get(i + 1) == Some(&'"') {
                        v.push('"');
                        i += 2;
                    } else {
                        i += 1;
                        break;
                    }
                } else {
                    v.push(x);
                    i += 1;
                }
            }
            out.push(Tok::Quoted(v));
        } else if ch.is_ascii_digit()
            || (ch == '.' && c.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            while i < c.len()
                && (c[i].is_ascii_digit() || c[i] == '.' || c[i] == 'e' || c[i] == 'E')
            {
                i += 1;
            }
            out.push(Tok::Num(c[start..i].iter().collect()));
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_' || c[i] == '$') {
                i += 1;
            }
            out.push(Tok::Word(
                c[start..i].iter().collect::<String>().to_lowercase(),
            ));
        } else {
            match ch {
                '(' => out.push(Tok::LParen),
                ')' => out.push(Tok::RParen),
                '[' => out.push(Tok::LBracket),
                ']' => out.push(Tok::RBracket),
                ',' => out.push(Tok::Comma),
                '.' => out.push(Tok::Dot),
                ':' if c.get(i + 1) == Some(&':') => {
                    out.push(Tok::Cast);
                    i += 1;
                }
                _ => {
                    let start = i;
                    while i < c.len() && "+-*/<>=~!@#%^&|`?".contains(c[i]) {
                        i += 1;
                    }
                    if i == start {
                        return None;
                    }
                    out.push(Tok::Op(c[start..i].iter().collect()));
                    continue;
                }
            }
            i += 1;
        }
    }
    Some(out)
}

// ---------------------------------------------------------------- parser

struct Parser {
    t: Vec<Tok>,
    i: usize,
}

const TYPE_CONTINUATIONS: &[&str] = &["varying", "precision", "with", "without", "time", "zone"];

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.i)
    }
    fn word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x == w)
    }
    fn eat_word(&mut self, w: &str) -> bool {
        if self.word(w) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == Some(t) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Option<Expr> {
        let mut parts = vec![self.and()?];
        while self.eat_word("or") {
            parts.push(self.and()?);
        }
        Some(if parts.len() == 1 {
            parts.pop()?
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self) -> Option<Expr> {
        let mut parts = vec![self.not()?];
        while self.eat_word("and") {
            parts.push(self.not()?);
        }
        Some(if parts.len() == 1 {
            parts.pop()?
        } else {
            Expr::And(parts)
        })
    }

    fn not(&mut self) -> Option<Expr> {
        if self.eat_word("not") {
            return Some(Expr::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Option<Expr> {
        let left = self.add()?;
        if self.eat_word("is") {
            return self.is_test(left);
        }
        if self.word_maybe_negated("between") {
            return self.between(left);
        }
        if self.word_maybe_negated("in") {
            return self.in_list(left);
        }
        if self.word("like") || self.word("ilike") || self.word("similar") {
            self.i += 1;
            self.eat_word("to");
            self.add()?;
            return Some(Expr::Opaque);
        }
        if let Some(Tok::Op(op)) = self.peek().cloned() {
            if ["=", "<>", "!=", "<", "<=", ">", ">="].contains(&op.as_str())
                || op.starts_with('~')
                || op.starts_with("!~")
            {
                self.i += 1;
                return self.comparison(left, op);
            }
        }
        Some(left)
    }

    /// `w` or `NOT w` is next.
    fn word_maybe_negated(&self, w: &str) -> bool {
        self.word(w)
            || (self.word("not") && matches!(self.t.get(self.i + 1), Some(Tok::Word(x)) if x == w))
    }

    /// After `left IS`: `[NOT] NULL`; other tests are opaque.
    fn is_test(&mut self, left: Expr) -> Option<Expr> {
        let neg = self.eat_word("not");
        if self.eat_word("null") {
            return Some(Expr::IsNull(Box::new(left), neg));
        }
        if self.eat_word("true") || self.eat_word("false") || self.eat_word("unknown") {
            return Some(Expr::Opaque);
        }
        if self.eat_word("distinct") && self.eat_word("from") {
            self.add()?;
            return Some(Expr::Opaque);
        }
        None
    }

    /// `left [NOT] BETWEEN lo AND hi`, as two comparisons.
    fn between(&mut self, left: Expr) -> Option<Expr> {
        let neg = self.eat_word("not");
        self.eat_word("between");
        let lo = self.add()?;
        if !self.eat_word("and") {
            return None;
        }
        let hi = self.add()?;
        let e = Expr::And(vec![
            Expr::Cmp(Box::new(left.clone()), ">=".into(), Box::new(lo)),
            Expr::Cmp(Box::new(left), "<=".into(), Box::new(hi)),
        ]);
        Some(if neg { Expr::Not(Box::new(e)) } else { e })
    }

    /// `left [NOT] IN (…)`, as `= ANY` or `<> ALL`.
    fn in_list(&mut self, left: Expr) -> Option<Expr> {
        let neg = self.eat_word("not");
        self.eat_word("in");
        if !self.eat(&Tok::LParen) {
            return None;
        }
        let list = self.list(&Tok::RParen)?;
        let (op, all) = if neg { ("<>", true) } else { ("=", false) };
        Some(Expr::Any(Box::new(left), op.into(), list, all))
    }

    /// After `left op`: `ANY/ALL/SOME (ARRAY[…])` or a right operand; regex matches are
    /// opaque.
    fn comparison(&mut self, left: Expr, op: String) -> Option<Expr> {
        let op = if op == "!=" { "<>".to_string() } else { op };
        if self.word("any") || self.word("all") || self.word("some") {
            let all = self.word("all");
            self.i += 1;
            if !self.eat(&Tok::LParen) {
                return None;
            }
            let inner = self.or()?;
            if !self.eat(&Tok::RParen) {
                return None;
            }
            let list = match inner {
                Expr::Func(name, items) if name == "array" => items,
                _ => return Some(Expr::Opaque),
            };
            return Some(Expr::Any(Box::new(left), op, list, all));
        }
        let right = self.add()?;
        if op.contains('~') {
            return Some(Expr::Opaque);
        }
        Some(Expr::Cmp(Box::new(left), op, Box::new(right)))
    }

    fn add(&mut self) -> Option<Expr> {
        let mut left = self.unary()?;
        while let Some(Tok::Op(op)) = self.peek().cloned() {
            if ["+", "-", "*", "/", "||", "%"].contains(&op.as_str()) {
                self.i += 1;
                self.unary()?;
                left = Expr::Opaque;
            } else {
                break;
            }
        }
        Some(left)
    }

    fn unary(&mut self) -> Option<Expr> {
        if self.peek() == Some(&Tok::Op("-".into())) {
            self.i += 1;
            let e = self.unary()?;
            return Some(match e {
                Expr::Lit(Lit::Num(n)) => Expr::Lit(Lit::Num(format!("-{n}"))),
                _ => Expr::Opaque,
            });
        }
        let mut e = self.primary()?;
        loop {
            if self.eat(&Tok::Cast) {
                self.type_name()?;
                e = match e {
                    Expr::Lit(Lit::Str(s)) if s.parse::<f64>().is_ok() => Expr::Lit(Lit::Num(s)),
                    other => other,
                };
            } else if self.eat(&Tok::LBracket) {
                let mut depth = 1;
                while depth > 0 {
                    match self.peek()? {
                        Tok::LBracket => depth += 1,
                        Tok::RBracket => depth -= 1,
                        _ => {}
                    }
                    self.i += 1;
                }
                e = Expr::Opaque;
            } else {
                break;
            }
        }
        Some(e)
    }

    fn type_name(&mut self) -> Option<()> {
        match self.peek()? {
            Tok::Word(_) | Tok::Quoted(_) => self.i += 1,
            _ => return None,
        }
        if self.eat(&Tok::Dot) {
            self.i += 1;
        }
        while let Some(Tok::Word(w)) = self.peek() {
            if TYPE_CONTINUATIONS.contains(&w.as_str()) {
                self.i += 1;
            } else {
                break;
            }
        }
        if self.eat(&Tok::LParen) {
            self.list(&Tok::RParen)?;
        }
        while self.eat(&Tok::LBracket) {
            if !self.eat(&Tok::RBracket) {
                return None;
            }
        }
        Some(())
    }

    fn list(&mut self, close: &Tok) -> Option<Vec<Expr>> {
        let mut items = Vec::new();
        if self.eat(close) {
            return Some(items);
        }
        loop {
            items.push(self.or()?);
            if self.eat(close) {
                return Some(items);
            }
            if !self.eat(&Tok::Comma) {
                return None;
            }
        }
    }

    fn primary(&mut self) -> Option<Expr> {
        match self.peek()?.clone() {
            Tok::LParen => {
                self.i += 1;
                let e = self.or()?;
                if !self.eat(&Tok::RParen) {
                    // a row constructor `(a, b)` or something else: not ours to read
                    return None;
                }
                Some(e)
            }
            Tok::Str(s) => {
                self.i += 1;
                Some(Expr::Lit(Lit::Str(s)))
            }
            Tok::Num(n) => {
                self.i += 1;
                Some(Expr::Lit(Lit::Num(n)))
            }
            Tok::Quoted(q) => {
                self.i += 1;
                self.after_name(q)
            }
            Tok::Word(w) => {
                self.i += 1;
                match w.as_str() {
                    "null" => Some(Expr::Lit(Lit::Null)),
                    "true" => Some(Expr::Lit(Lit::Bool(true))),
                    "false" => Some(Expr::Lit(Lit::Bool(false))),
                    "array" if self.peek() == Some(&Tok::LBracket) => {
                        self.i += 1;
                        Some(Expr::Func("array".into(), self.list(&Tok::RBracket)?))
                    }
                    "case" => {
                        let mut depth = 1;
                        while depth > 0 {
                            match self.peek()? {
                                Tok::Word(x) if x == "case" => depth += 1,
                                Tok::Word(x) if x == "end" => depth -= 1,
                                _ => {}
                            }
                            self.i += 1;
                        }
                        Some(Expr::Opaque)
                    }
                    _ => self.after_name(w),
                }
            }
            _ => None,
        }
    }

    fn after_name(&mut self, mut name: String) -> Option<Expr> {
        while self.peek() == Some(&Tok::Dot) {
            self.i += 1;
            match self.peek()?.clone() {
                Tok::Word(w) | Tok::Quoted(w) => {
                    self.i += 1;
                    name = w; // the last part names the column or function
                }
                _ => return None,
            }
        }
        if self.eat(&Tok::LParen) {
            self.eat_word("distinct");
            let args = self.list(&Tok::RParen)?;
            return Some(Expr::Func(name, args));
        }
        Some(Expr::Col(name))
    }
}

/// Parses an expression; `None` if it is not one this reader handles at all.
pub(crate) fn parse(expr: &str) -> Option<Expr> {
    let mut p = Parser {
        t: tokenize(expr)?,
        i: 0,
    };
    let e = p.or()?;
    (p.i == p.t.len()).then_some(e)
}

// ---------------------------------------------------------------- values

/// The column a value expression names, seeing through casts.
fn column(e: &Expr) -> Option<&str> {
    match e {
        Expr::Col(c) => Some(c),
        _ => None,
    }
}

/// `length(c)`, `octet_length(c)`, `char_length(c)`, `cardinality(c)`, `array_length(c, 1)`.
fn length_of(e: &Expr) -> Option<(&str, &str)> {
    match e {
        Expr::Func(f, args)
            if [
                "length",
                "char_length",
                "character_length",
                "octet_length",
                "cardinality",
                "array_length",
            ]
            .contains(&f.as_str()) =>
        {
            let col = column(args.first()?)?;
            Some((col, f.as_str()))
        }
        _ => None,
    }
}

fn lit_text(e: &Expr) -> Option<Option<String>> {
    match e {
        Expr::Lit(Lit::Str(s)) | Expr::Lit(Lit::Num(s)) => Some(Some(s.clone())),
        Expr::Lit(Lit::Bool(b)) => Some(Some(if *b { "true".into() } else { "false".into() })),
        Expr::Lit(Lit::Null) => Some(None),
        _ => None,
    }
}

fn num(e: &Expr) -> Option<f64> {
    match e {
        Expr::Lit(Lit::Num(n)) => n.parse().ok(),
        _ => None,
    }
}

/// `n ± 1`, kept integral when `n` is.
fn step(n: &str, up: bool) -> String {
    if let Ok(i) = n.parse::<i128>() {
        return (if up { i + 1 } else { i - 1 }).to_string();
    }
    let f: f64 = n.parse().unwrap_or(0.0);
    (if up { f + 1.0 } else { f - 1.0 }).to_string()
}

fn flip(op: &str) -> &str {
    match op {
        "<" => ">",
        "<=" => ">=",
        ">" => "<",
        ">=" => "<=",
        other => other,
    }
}

fn single(col: &str, v: Val) -> Vec<Assign> {
    vec![Assign::from([(col.to_string(), v)])]
}

/// Combines one alternative from each side; `None` where they contradict.
fn merge(a: &Assign, b: &Assign) -> Option<Assign> {
    let mut out = a.clone();
    for (k, v) in b {
        let m = match out.get(k) {
            None => v.clone(),
            Some(w) => merge_val(w, v)?,
        };
        out.insert(k.clone(), m);
    }
    Some(out)
}

fn product(sets: Vec<Vec<Assign>>) -> Vec<Assign> {
    let mut acc: Vec<Assign> = vec![Assign::new()];
    for set in sets {
        let mut next = Vec::new();
        for a in &acc {
            for b in &set {
                if let Some(m) = merge(a, b) {
                    if next.len() < MAX_ALTERNATIVES {
                        next.push(m);
                    }
                }
            }
        }
        acc = next;
        if acc.is_empty() {
            break;
        }
    }
    acc
}

fn union(sets: Vec<Vec<Assign>>) -> Vec<Assign> {
    sets.into_iter().flatten().take(MAX_ALTERNATIVES).collect()
}

/// Assignments under which `e` is (two-valued) false: what the expression was written to reject.
pub(crate) fn violations(e: &Expr) -> Vec<Assign> {
    match e {
        Expr::Or(parts) => {
            let sets: Vec<Vec<Assign>> = parts.iter().map(violations).collect();
            if sets.iter().any(|s| s.is_empty()) {
                return Vec::new();
            }
            product(sets)
        }
        Expr::And(parts) => union(parts.iter().map(violations).collect()),
        Expr::Not(inner) => satisfactions(inner),
        _ => atom(e, false),
    }
}

/// Assignments under which `e` is true: hints for building a valid row.
pub(crate) fn satisfactions(e: &Expr) -> Vec<Assign> {
    match e {
        Expr::Or(parts) => union(
            parts
                .iter()
                .map(satisfactions)
                .filter(|s| !s.is_empty())
                .collect(),
        ),
        Expr::And(parts) => {
            let sets: Vec<Vec<Assign>> = parts
                .iter()
                .map(satisfactions)
                .filter(|s| !s.is_empty())
                .collect();
            if sets.is_empty() {
                return Vec::new();
            }
            product(sets)
        }
        Expr::Not(inner) => violations(inner),
        _ => atom(e, true),
    }
}

/// Values for one comparison: `want` true = make it hold, false = make it fail.
fn atom(e: &Expr, want: bool) -> Vec<Assign> {
    match e {
        Expr::Col(c) => single(c, Val::Literal(if want { "true" } else { "false" }.into())),
        Expr::IsNull(inner, negated) => {
            let Some(c) = column(inner) else {
                return Vec::new();
            };
            // `c IS NULL` holds for NULL; `c IS NOT NULL` for any value.
            let null_holds = !negated;
            single(
                c,
                if want == null_holds {
                    Val::Null
                } else {
                    Val::Any
                },
            )
        }
        Expr::Any(left, op, list, all) => any_atom(left, op, list, *all, want),
        Expr::Cmp(l, op, r) => {
            let (l, op, r) = if lit_text(l).is_some() {
                (r, flip(op), l)
            } else {
                (l, op.as_str(), r)
            };
            if let Some(c) = column(l) {
                column_cmp(c, op, r, want)
            } else if let Some((c, f)) = length_of(l) {
                length_cmp(c, f, op, r, want)
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    }
}

/// `c = ANY (list)` (IN) or `c <> ALL (list)` (NOT IN) over literals.
fn any_atom(left: &Expr, op: &str, list: &[Expr], all: bool, want: bool) -> Vec<Assign> {
    let Some(c) = column(left) else {
        return Vec::new();
    };
    let items: Option<Vec<Option<String>>> = list.iter().map(lit_text).collect();
    let Some(items) = items else {
        return Vec::new();
    };
    let non_null: Vec<String> = items.iter().flatten().cloned().collect();
    let inside = match (op, all) {
        ("=", false) => true,
        ("<>", true) => false,
        _ => return Vec::new(),
    };
    if want == inside {
        non_null
            .into_iter()
            .map(|v| Assign::from([(c.to_string(), Val::Literal(v))]))
            .take(4)
            .collect()
    } else {
        single(c, Val::NotIn(non_null))
    }
}

/// `c op r`, with the column on the left and a literal `r`.
fn column_cmp(c: &str, op: &str, r: &Expr, want: bool) -> Vec<Assign> {
    let Some(Some(v)) = lit_text(r) else {
        return Vec::new();
    };
    let numeric = num(r).is_some();
    let holds_eq = match op {
        "=" => Some(true),
        "<>" => Some(false),
        _ => None,
    };
    if let Some(eq) = holds_eq {
        return if want == eq {
            single(c, Val::Literal(v))
        } else {
            single(c, Val::NotIn(vec![v]))
        };
    }
    if !numeric {
        return Vec::new();
    }
    if want {
        // A range, so that `x >= 1 AND x <= 10` can meet in the middle.
        return single(
            c,
            match op {
                "<" => Val::Range(None, Some(step(&v, false))),
                "<=" => Val::Range(None, Some(v)),
                ">" => Val::Range(Some(step(&v, true)), None),
                ">=" => Val::Range(Some(v), None),
                _ => return Vec::new(),
            },
        );
    }
    // The value at, or just past, the bound it rejects.
    let val = match (op, want) {
        ("<", true) | (">=", false) => step(&v, false),
        ("<=", false) | (">", true) => step(&v, true),
        ("<", false) | ("<=", true) | (">", false) | (">=", true) => v.clone(),
        _ => return Vec::new(),
    };
    single(c, Val::Literal(val))
}

/// `f(c) op r`: the length of `c` as measured by `f`, compared with an integer `r`.
fn length_cmp(c: &str, f: &str, op: &str, r: &Expr, want: bool) -> Vec<Assign> {
    let Some(k) = num(r) else { return Vec::new() };
    if k.fract() != 0.0 {
        return Vec::new();
    }
    let k = k as i64;
    if want {
        let (lo, hi) = match op {
            "=" => (k, Some(k)),
            "<=" => (0, Some(k)),
            "<" => (0, Some(k - 1)),
            ">=" => (k, None),
            ">" => (k + 1, None),
            _ => return Vec::new(),
        };
        return match hi {
            Some(h) if h < lo.max(0) => Vec::new(),
            _ => single(c, Val::LengthRange(lo.max(0) as u64, hi.map(|h| h as u64))),
        };
    }
    let target: Option<i64> = match (op, want) {
        ("=", true) | ("<=", true) | (">=", true) | ("<>", false) => Some(k),
        ("=", false) | ("<=", false) | (">", true) | ("<>", true) => Some(k + 1),
        ("<", true) | (">=", false) => Some(k - 1),
        ("<", false) | (">", false) => Some(k),
        _ => None,
    };
    match target {
        Some(t) if t >= 0 => single(c, Val::Length(t as u64, f.to_string())),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(expr: &str) -> Vec<Assign> {
        violations(&parse(expr).unwrap_or_else(|| panic!("parse {expr}")))
    }

    #[test]
    fn in_list_with_null_yields_an_unlisted_value() {
        let a =
            v("(verification_method = ANY (ARRAY['manual'::text, 'qr_code'::text, NULL::text]))");
        assert_eq!(
            a,
            vec![Assign::from([(
                "verification_method".into(),
                Val::NotIn(vec!["manual".into(), "qr_code".into()])
            )])]
        );
    }

    #[test]
    fn ranges_and_lengths_give_values_just_past_the_bound() {
        let a = v("((registration_id >= 1) AND (registration_id <= 16380))");
        assert_eq!(
            a,
            vec![
                Assign::from([("registration_id".into(), Val::Literal("0".into()))]),
                Assign::from([("registration_id".into(), Val::Literal("16381".into()))]),
            ]
        );
        assert_eq!(
            v("(octet_length(identity_key) = 32)"),
            vec![Assign::from([(
                "identity_key".into(),
                Val::Length(33, "octet_length".into())
            )])]
        );
        assert_eq!(
            v("(length((name)::text) <= 64)"),
            vec![Assign::from([(
                "name".into(),
                Val::Length(65, "length".into())
            )])]
        );
        assert_eq!(v("encryption_version BETWEEN 1 AND 2").len(), 2);
        assert_eq!(
            v("(x > '-1'::integer)"),
            vec![Assign::from([("x".into(), Val::Literal("-1".into()))])]
        );
    }

    #[test]
    fn or_needs_every_branch_false() {
        let a = v("((email IS NOT NULL) OR (phone IS NOT NULL))");
        assert_eq!(
            a,
            vec![Assign::from([
                ("email".into(), Val::Null),
                ("phone".into(), Val::Null)
            ])]
        );
        // Contradictory branches give nothing rather than a wrong value.
        assert!(v("((x IS NULL) OR (x IS NOT NULL))").is_empty());
        // An unreadable branch makes the OR unreadable.
        assert!(v("((x ~ '^a'::text) OR (y = 1))").is_empty());
    }

    #[test]
    fn shape_checks_with_and_inside_or() {
        let e = "(((chat_type = 'direct'::text) AND (name IS NULL)) OR ((chat_type = 'group'::text) AND (name IS NOT NULL)))";
        let a = v(e);
        assert!(!a.is_empty());
        let s = satisfactions(&parse(e).unwrap());
        assert_eq!(
            s[0],
            Assign::from([
                ("chat_type".into(), Val::Literal("direct".into())),
                ("name".into(), Val::Null)
            ])
        );
    }

    #[test]
    fn bounds_on_one_column_meet() {
        let s = satisfactions(
            &parse("((registration_id >= 1) AND (registration_id <= 16380))").unwrap(),
        );
        assert_eq!(
            s,
            vec![Assign::from([(
                "registration_id".into(),
                Val::Range(Some("1".into()), Some("16380".into()))
            )])]
        );
        let s = satisfactions(&parse("((length(name) >= 1) AND (length(name) <= 64))").unwrap());
        assert_eq!(
            s,
            vec![Assign::from([(
                "name".into(),
                Val::LengthRange(1, Some(64))
            )])]
        );
        assert!(satisfactions(&parse("((x > 5) AND (x < 3))").unwrap()).is_empty());
    }

    #[test]
    fn unreadable_expressions_are_opaque_not_wrong() {
        assert!(v("(lower(email) = email)").is_empty());
        assert!(v("(a < b)").is_empty());
        assert!(parse("((a)::text ~~ 'x%'::text)").is_some());
    }
}
