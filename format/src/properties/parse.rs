//! The lexer and recursive-descent parser of property filters. Precedence, loosest first:
//! `OR`, `AND`, `NOT`, then a predicate or a parenthesised condition.

use super::{CompareOp, Expr, Literal, MAX_FILTER_LEN, PropertyFilterError};

/// Deepest nesting of parentheses and `NOT`s, so untrusted text cannot exhaust the stack.
const MAX_DEPTH: usize = 64;
/// Most values in one `IN (...)` list.
const MAX_IN_VALUES: usize = 1024;

const KEYWORDS: [&str; 9] = [
    "AND", "OR", "NOT", "BETWEEN", "IN", "IS", "NULL", "TRUE", "FALSE",
];

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A header name, bare or from double quotes.
    Name(String),
    Keyword(&'static str),
    Text(String),
    Number(f64),
    Op(CompareOp),
    Open,
    Close,
    Comma,
}

/// A token and the 1-based character position it starts at.
type Spanned = (Token, usize);

/// Whether `name` can be written without quotes: a letter or `_`, then letters, digits, `_`
/// or `.`, and not a keyword.
pub(super) fn is_bare_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(name))
}

pub(super) fn parse(expression: &str) -> Result<Expr, PropertyFilterError> {
    let fail = |position: usize, reason: String| PropertyFilterError {
        expression: expression.to_owned(),
        position,
        reason,
    };
    if expression.len() > MAX_FILTER_LEN {
        // The first character that starts past the limit.
        let at = expression
            .char_indices()
            .take_while(|(i, _)| *i < MAX_FILTER_LEN)
            .count()
            + 1;
        return Err(fail(
            at,
            format!("it is longer than {MAX_FILTER_LEN} bytes"),
        ));
    }
    let tokens = lex(expression).map_err(|(position, reason)| fail(position, reason))?;
    if tokens.is_empty() {
        return Err(fail(1, "it is empty".into()));
    }
    let end = expression.chars().count() + 1;
    let mut parser = Parser {
        tokens,
        next: 0,
        end,
    };
    let root = parser
        .or(0)
        .map_err(|(position, reason)| fail(position, reason))?;
    match parser.peek() {
        None => Ok(root),
        Some((token, position)) => Err(fail(
            position,
            format!("{} follows a whole condition", describe(&token)),
        )),
    }
}

fn lex(text: &str) -> Result<Vec<Spanned>, (usize, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let at = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let token = match c {
            '(' => Token::Open,
            ')' => Token::Close,
            ',' => Token::Comma,
            '=' => Token::Op(CompareOp::Eq),
            '<' | '>' | '!' => {
                let next = chars.get(i + 1).copied();
                let (op, width) = match (c, next) {
                    ('<', Some('=')) => (CompareOp::Le, 2),
                    ('<', Some('>')) => (CompareOp::Ne, 2),
                    ('>', Some('=')) => (CompareOp::Ge, 2),
                    ('!', Some('=')) => (CompareOp::Ne, 2),
                    ('<', _) => (CompareOp::Lt, 1),
                    ('>', _) => (CompareOp::Gt, 1),
                    _ => return Err((at, "`!` stands only in `!=`".into())),
                };
                i += width;
                tokens.push((Token::Op(op), at));
                continue;
            }
            '\'' | '"' => {
                let (content, width) = quoted(&chars[i..], c).ok_or_else(|| {
                    let what = if c == '\'' { "text" } else { "name" };
                    (at, format!("the quoted {what} is not closed by {c}"))
                })?;
                i += width;
                tokens.push((
                    if c == '\'' {
                        Token::Text(content)
                    } else {
                        Token::Name(content)
                    },
                    at,
                ));
                continue;
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => {
                let len = number_len(&chars[i..]);
                let literal: String = chars[i..i + len].iter().collect();
                let n = literal
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| (at, format!("`{literal}` is not a number")))?;
                i += len;
                tokens.push((Token::Number(n), at));
                continue;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let len = chars[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_' || **c == '.')
                    .count();
                let word: String = chars[i..i + len].iter().collect();
                i += len;
                let token = match KEYWORDS.iter().find(|k| k.eq_ignore_ascii_case(&word)) {
                    Some(k) => Token::Keyword(k),
                    None => Token::Name(word),
                };
                tokens.push((token, at));
                continue;
            }
            other => return Err((at, format!("`{other}` has no meaning here"))),
        };
        tokens.push((token, at));
        i += 1;
    }
    Ok(tokens)
}

/// The content of a quoted token starting at `chars[0]`, with doubled marks undone, and the
/// characters it spans; `None` when it is not closed.
fn quoted(chars: &[char], mark: char) -> Option<(String, usize)> {
    let mut content = String::new();
    let mut i = 1;
    loop {
        match chars.get(i)? {
            c if *c == mark && chars.get(i + 1) == Some(&mark) => {
                content.push(mark);
                i += 2;
            }
            c if *c == mark => return Some((content, i + 1)),
            c => {
                content.push(*c);
                i += 1;
            }
        }
    }
}

/// How many characters from `chars[0]` a number spans: sign, digits, fraction, exponent.
fn number_len(chars: &[char]) -> usize {
    let mut i = usize::from(matches!(chars.first(), Some('-' | '+')));
    let digits = |i: &mut usize| {
        while chars.get(*i).is_some_and(char::is_ascii_digit) {
            *i += 1;
        }
    };
    digits(&mut i);
    if chars.get(i) == Some(&'.') {
        i += 1;
        digits(&mut i);
    }
    if matches!(chars.get(i), Some('e' | 'E')) {
        i += 1;
        if matches!(chars.get(i), Some('-' | '+')) {
            i += 1;
        }
        digits(&mut i);
    }
    i.max(1)
}

fn describe(token: &Token) -> String {
    match token {
        Token::Name(n) => format!("name `{n}`"),
        Token::Keyword(k) => format!("`{k}`"),
        Token::Text(t) => format!("text '{t}'"),
        Token::Number(n) => format!("number {n}"),
        Token::Op(op) => format!("`{}`", op.symbol()),
        Token::Open => "`(`".into(),
        Token::Close => "`)`".into(),
        Token::Comma => "`,`".into(),
    }
}

type Parsed<T> = Result<T, (usize, String)>;

struct Parser {
    tokens: Vec<Spanned>,
    next: usize,
    /// The position just past the text, for "ends too early".
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<Spanned> {
        self.tokens.get(self.next).cloned()
    }

    fn take(&mut self) -> Option<Spanned> {
        let token = self.peek();
        self.next += usize::from(token.is_some());
        token
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = matches!(self.peek(), Some((Token::Keyword(k), _)) if k == keyword);
        self.next += usize::from(found);
        found
    }

    /// The next token, which must be there; `wanted` says what was expected.
    fn expect(&mut self, wanted: &str) -> Parsed<Spanned> {
        self.take()
            .ok_or_else(|| (self.end, format!("it ends where {wanted} should follow")))
    }

    fn or(&mut self, depth: usize) -> Parsed<Expr> {
        let mut left = self.and(depth)?;
        while self.eat_keyword("OR") {
            let right = self.and(depth)?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Parsed<Expr> {
        let mut left = self.not(depth)?;
        while self.eat_keyword("AND") {
            let right = self.not(depth)?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self, depth: usize) -> Parsed<Expr> {
        if depth >= MAX_DEPTH {
            let at = self.peek().map_or(self.end, |(_, at)| at);
            return Err((at, format!("it nests deeper than {MAX_DEPTH} levels")));
        }
        if self.eat_keyword("NOT") {
            return Ok(Expr::Not(Box::new(self.not(depth + 1)?)));
        }
        self.primary(depth + 1)
    }

    fn primary(&mut self, depth: usize) -> Parsed<Expr> {
        let (token, at) = self.expect("a condition")?;
        match token {
            Token::Open => {
                let inner = self.or(depth)?;
                match self.expect("`)`")? {
                    (Token::Close, _) => Ok(inner),
                    (other, at) => Err((at, format!("{} where `)` should be", describe(&other)))),
                }
            }
            Token::Keyword("TRUE") => Ok(Expr::Constant(true)),
            Token::Keyword("FALSE") => Ok(Expr::Constant(false)),
            Token::Name(property) => self.predicate(property),
            other => Err((
                at,
                format!(
                    "{} where a condition should start (a header name, `NOT` or `(`)",
                    describe(&other)
                ),
            )),
        }
    }

    /// What follows a header name: a comparison, `[NOT] BETWEEN`, `[NOT] IN`, `IS [NOT] NULL`.
    fn predicate(&mut self, property: String) -> Parsed<Expr> {
        if self.eat_keyword("IS") {
            let negated = self.eat_keyword("NOT");
            return match self.expect("`NULL`")? {
                (Token::Keyword("NULL"), _) => Ok(Expr::IsNull { property, negated }),
                (other, at) => Err((at, format!("{} where `NULL` should be", describe(&other)))),
            };
        }
        let negated = self.eat_keyword("NOT");
        if self.eat_keyword("BETWEEN") {
            let low = self.number("BETWEEN")?;
            match self.expect("`AND`")? {
                (Token::Keyword("AND"), _) => {}
                (other, at) => {
                    return Err((
                        at,
                        format!("{} where BETWEEN's `AND` should be", describe(&other)),
                    ));
                }
            }
            let high = self.number("BETWEEN ... AND")?;
            return Ok(Expr::Between {
                property,
                negated,
                low,
                high,
            });
        }
        if self.eat_keyword("IN") {
            let values = self.in_list()?;
            return Ok(Expr::In {
                property,
                negated,
                values,
            });
        }
        if negated {
            let at = self.peek().map_or(self.end, |(_, at)| at);
            return Err((at, "`NOT` after a name goes with BETWEEN or IN".into()));
        }
        let op = match self.expect("a comparison")? {
            (Token::Op(op), _) => op,
            (other, at) => {
                return Err((
                    at,
                    format!(
                        "{} after `{property}`, where a comparison (=, <>, <, <=, >, >=), \
                         BETWEEN, IN or IS should be",
                        describe(&other)
                    ),
                ));
            }
        };
        let (token, at) = self.expect("a value")?;
        let value = match token {
            Token::Number(n) => Literal::Number(n),
            Token::Text(t) => Literal::Text(t),
            Token::Keyword("TRUE") => Literal::Bool(true),
            Token::Keyword("FALSE") => Literal::Bool(false),
            other => {
                return Err((
                    at,
                    format!(
                        "{} where a number, 'text', TRUE or FALSE should be",
                        describe(&other)
                    ),
                ));
            }
        };
        if !matches!(value, Literal::Number(_)) && !matches!(op, CompareOp::Eq | CompareOp::Ne) {
            return Err((
                at,
                format!(
                    "text and booleans compare with = or <> only, not `{}`",
                    op.symbol()
                ),
            ));
        }
        Ok(Expr::Compare {
            property,
            op,
            value,
        })
    }

    fn number(&mut self, after: &str) -> Parsed<f64> {
        match self.expect("a number")? {
            (Token::Number(n), _) => Ok(n),
            (other, at) => Err((
                at,
                format!(
                    "{} after {after}, where a number should be",
                    describe(&other)
                ),
            )),
        }
    }

    /// `('a', 'b', ...)` after `IN`.
    fn in_list(&mut self) -> Parsed<Vec<String>> {
        match self.expect("`(`")? {
            (Token::Open, _) => {}
            (other, at) => {
                return Err((
                    at,
                    format!("{} after IN, where `(` should be", describe(&other)),
                ));
            }
        }
        let mut values = Vec::new();
        loop {
            match self.expect("'text'")? {
                (Token::Text(t), _) => values.push(t),
                (other, at) => {
                    return Err((
                        at,
                        format!(
                            "{} in an IN list, which holds 'text' only",
                            describe(&other)
                        ),
                    ));
                }
            }
            if values.len() > MAX_IN_VALUES {
                let at = self.peek().map_or(self.end, |(_, at)| at);
                return Err((
                    at,
                    format!("an IN list holds at most {MAX_IN_VALUES} values"),
                ));
            }
            match self.expect("`,` or `)`")? {
                (Token::Comma, _) => {}
                (Token::Close, _) => return Ok(values),
                (other, at) => {
                    return Err((
                        at,
                        format!(
                            "{} in an IN list, where `,` or `)` should be",
                            describe(&other)
                        ),
                    ));
                }
            }
        }
    }
}
