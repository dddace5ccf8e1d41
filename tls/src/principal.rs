//! Names read from certificates: the principal of a client certificate, and expiry.

use rustls_pki_types::CertificateDer;
use strata_config::PrincipalRule;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer as _, X509Certificate};

/// The principal `User:<name>` a client certificate names under `rule`, or `None` when it
/// has no such name (the connection is then served as anonymous).
pub(crate) fn principal(cert: &CertificateDer<'_>, rule: PrincipalRule) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(cert.as_ref()).ok()?;
    let name = match rule {
        PrincipalRule::Cn => cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned),
        PrincipalRule::San => san(&cert),
    }?;
    (!name.is_empty()).then(|| format!("User:{name}"))
}

fn san(cert: &X509Certificate<'_>) -> Option<String> {
    let names = cert
        .subject_alternative_name()
        .ok()??
        .value
        .general_names
        .clone();
    let first = |pick: fn(&GeneralName<'_>) -> Option<String>| names.iter().find_map(pick);
    first(|n| match n {
        GeneralName::DNSName(d) => Some((*d).to_owned()),
        _ => None,
    })
    .or_else(|| {
        first(|n| match n {
            GeneralName::RFC822Name(m) => Some((*m).to_owned()),
            _ => None,
        })
    })
    .or_else(|| {
        first(|n| match n {
            GeneralName::URI(u) => Some((*u).to_owned()),
            _ => None,
        })
    })
}

/// The certificate's expiry in seconds since the Unix epoch.
pub(crate) fn not_after(cert: &CertificateDer<'_>) -> Option<i64> {
    let (_, cert) = X509Certificate::from_der(cert.as_ref()).ok()?;
    Some(cert.validity().not_after.timestamp())
}
