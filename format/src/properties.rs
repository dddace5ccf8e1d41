//! SQL-92 property filters, as RocketMQ's `MessageSelector.bySql` has them: a consumer takes
//! the records whose headers satisfy a condition such as `region = 'eu' AND amount > 100`.
//!
//! A property is a record header, looked up by its exact name; its value is the header's
//! UTF-8 text, read as a number when compared with one. Logic is SQL's three-valued one: a
//! comparison with a missing or unreadable property is unknown, `NOT` of unknown is unknown,
//! and a record is taken only when the whole condition is true, so `amount > 100` never takes
//! a record without an `amount` header, and neither does `NOT amount > 100`.

mod parse;

use bytes::Bytes;
use strata_proto::{Coded, ErrorCode};

/// The longest condition accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 8192;

/// A parsed condition on record headers.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyFilter {
    root: Expr,
}

/// A condition that does not parse, with where, why and what a valid one looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "property filter `{expression}` does not parse at character {position}: {reason}; write \
     SQL-92 conditions on headers such as `region = 'eu' AND amount > 100` (=, <>, <, <=, >, \
     >=, [NOT] BETWEEN, [NOT] IN, IS [NOT] NULL, AND, OR, NOT, parentheses; 'text' in single \
     quotes, a header name that is not a plain word in double quotes)"
)]
pub struct PropertyFilterError {
    pub expression: String,
    /// 1-based character position of the problem.
    pub position: usize,
    pub reason: String,
}

impl Coded for PropertyFilterError {
    fn code(&self) -> ErrorCode {
        ErrorCode::InvalidArgument
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Constant(bool),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare {
        property: String,
        op: CompareOp,
        value: Literal,
    },
    Between {
        property: String,
        negated: bool,
        low: f64,
        high: f64,
    },
    In {
        property: String,
        negated: bool,
        values: Vec<String>,
    },
    IsNull {
        property: String,
        negated: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Number(f64),
    Text(String),
    Bool(bool),
}

impl PropertyFilter {
    /// Parses a condition.
    pub fn parse(expression: &str) -> Result<Self, PropertyFilterError> {
        parse::parse(expression).map(|root| Self { root })
    }

    /// Whether a record with `headers` is taken: only when the condition is true.
    pub fn matches(&self, headers: &[(String, Option<Bytes>)]) -> bool {
        let lookup = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| std::str::from_utf8(v.as_deref()?).ok())
        };
        self.root.eval(&lookup) == Some(true)
    }
}

impl Expr {
    /// SQL's three-valued logic: `None` is unknown.
    fn eval<'a>(&self, lookup: &impl Fn(&str) -> Option<&'a str>) -> Option<bool> {
        match self {
            Self::Constant(b) => Some(*b),
            Self::Not(e) => e.eval(lookup).map(|b| !b),
            Self::And(a, b) => match (a.eval(lookup), b.eval(lookup)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            Self::Or(a, b) => match (a.eval(lookup), b.eval(lookup)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            Self::Compare {
                property,
                op,
                value,
            } => {
                let found = lookup(property)?;
                match value {
                    Literal::Number(n) => {
                        let v = number(found)?;
                        Some(op.holds(v.partial_cmp(n)?))
                    }
                    Literal::Text(t) => Some(op.holds(found.cmp(t.as_str()))),
                    Literal::Bool(b) => {
                        let v = boolean(found)?;
                        Some(op.holds(v.cmp(b)))
                    }
                }
            }
            Self::Between {
                property,
                negated,
                low,
                high,
            } => {
                let v = number(lookup(property)?)?;
                Some((*low <= v && v <= *high) != *negated)
            }
            Self::In {
                property,
                negated,
                values,
            } => {
                let found = lookup(property)?;
                Some(values.iter().any(|v| v == found) != *negated)
            }
            Self::IsNull { property, negated } => Some(lookup(property).is_none() != *negated),
        }
    }
}

impl CompareOp {
    fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            Self::Eq => ordering == Equal,
            Self::Ne => ordering != Equal,
            Self::Lt => ordering == Less,
            Self::Le => ordering != Greater,
            Self::Gt => ordering == Greater,
            Self::Ge => ordering != Less,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "<>",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

/// A header's text as a number, when it is one.
fn number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

fn boolean(text: &str) -> Option<bool> {
    match text.trim() {
        t if t.eq_ignore_ascii_case("true") => Some(true),
        t if t.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Prints the condition with the parentheses it needs, in a form that parses back to the
/// same filter.
impl std::fmt::Display for PropertyFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.root.write_at(f, Binding::Or)
    }
}

/// How tightly an expression binds, to print only the parentheses it needs: a chain of
/// `AND`s prints as it was written and parses back to the same depth.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Binding {
    Or,
    And,
    Not,
}

impl Expr {
    fn binding(&self) -> Binding {
        match self {
            Self::Or(..) => Binding::Or,
            Self::And(..) => Binding::And,
            _ => Binding::Not,
        }
    }

    /// Prints `self` where an expression binding at least `at` is expected.
    fn write_at(&self, f: &mut std::fmt::Formatter<'_>, at: Binding) -> std::fmt::Result {
        if self.binding() < at {
            f.write_str("(")?;
            self.write_at(f, Binding::Or)?;
            return f.write_str(")");
        }
        let not = |negated: &bool| if *negated { "NOT " } else { "" };
        match self {
            Self::Constant(b) => f.write_str(if *b { "TRUE" } else { "FALSE" }),
            Self::Not(e) => {
                f.write_str("NOT ")?;
                e.write_at(f, Binding::Not)
            }
            Self::And(a, b) => {
                a.write_at(f, Binding::And)?;
                f.write_str(" AND ")?;
                b.write_at(f, Binding::Not)
            }
            Self::Or(a, b) => {
                a.write_at(f, Binding::Or)?;
                f.write_str(" OR ")?;
                b.write_at(f, Binding::And)
            }
            Self::Compare {
                property,
                op,
                value,
            } => write!(f, "{} {} {value}", Name(property), op.symbol()),
            Self::Between {
                property,
                negated,
                low,
                high,
            } => write!(
                f,
                "{} {}BETWEEN {low:?} AND {high:?}",
                Name(property),
                not(negated)
            ),
            Self::In {
                property,
                negated,
                values,
            } => {
                let quoted: Vec<String> = values.iter().map(|v| quote(v, '\'')).collect();
                write!(
                    f,
                    "{} {}IN ({})",
                    Name(property),
                    not(negated),
                    quoted.join(", ")
                )
            }
            Self::IsNull { property, negated } => {
                write!(f, "{} IS {}NULL", Name(property), not(negated))
            }
        }
    }
}

impl std::fmt::Display for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n:?}"),
            Self::Text(t) => f.write_str(&quote(t, '\'')),
            Self::Bool(b) => f.write_str(if *b { "TRUE" } else { "FALSE" }),
        }
    }
}

/// A header name, bare when it reads as one and in double quotes otherwise.
struct Name<'a>(&'a str);

impl std::fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if parse::is_bare_name(self.0) {
            f.write_str(self.0)
        } else {
            f.write_str(&quote(self.0, '"'))
        }
    }
}

/// `text` in `mark`s, a `mark` inside doubled, as SQL writes it.
fn quote(text: &str, mark: char) -> String {
    let doubled = format!("{mark}{mark}");
    format!("{mark}{}{mark}", text.replace(mark, &doubled))
}

#[cfg(test)]
mod tests;
