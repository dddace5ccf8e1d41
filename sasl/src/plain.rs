//! SASL PLAIN (RFC 4616): `authzid NUL authcid NUL password`.

use crate::error::{Result, SaslError};

/// A PLAIN message's user and password.
#[derive(PartialEq, Eq)]
pub struct PlainMessage<'a> {
    pub user: &'a str,
    pub password: &'a str,
}

/// Names the user only.
impl std::fmt::Debug for PlainMessage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainMessage")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

fn malformed(reason: &str) -> SaslError {
    SaslError::Malformed {
        mechanism: "PLAIN",
        reason: reason.to_owned(),
    }
}

impl<'a> PlainMessage<'a> {
    /// Reads a client's message; an authorization id other than the user is refused, since
    /// nobody may act as someone else.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut parts = bytes.split(|b| *b == 0);
        let (Some(authzid), Some(user), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("not three NUL-separated fields"));
        };
        let (Ok(authzid), Ok(user), Ok(password)) = (
            std::str::from_utf8(authzid),
            std::str::from_utf8(user),
            std::str::from_utf8(password),
        ) else {
            return Err(malformed("not UTF-8"));
        };
        if user.is_empty() {
            return Err(malformed("no user name"));
        }
        if !authzid.is_empty() && authzid != user {
            return Err(malformed("an authorization id other than the user"));
        }
        Ok(Self { user, password })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_user_and_password_and_refuses_what_is_not_plain() {
        let m = PlainMessage::parse(b"\0alice\0secret").unwrap();
        assert_eq!((m.user, m.password), ("alice", "secret"));
        assert!(PlainMessage::parse(b"alice\0alice\0secret").is_ok());
        assert!(!format!("{m:?}").contains("secret"));
        for bad in [
            &b"alice\0secret"[..],
            b"\0alice\0secret\0more",
            b"bob\0alice\0secret",
            b"\0\0secret",
            b"\0\xff\0secret",
        ] {
            assert!(PlainMessage::parse(bad).is_err(), "{bad:?}");
        }
    }
}
