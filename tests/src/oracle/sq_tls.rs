//! Oracle S inside a STARTTLS session: on a tree with the STARTTLS patch,
//! qmail-smtpd is driven through EHLO, STARTTLS, a real TLS handshake
//! (rustls, verifying the server's certificate) and EHLO again before the
//! RCPTs, over the same stdin/stdout pipes as the plain tier
//! ([`SmtpSession::layer`]).
//!
//! Decisions:
//! * The certificates are made at test time ([`TlsCerts::generate`]): a
//!   CA (ECDSA P-256, rcgen) and a server certificate for
//!   [`SERVER_NAME`] signed by it. The patch reads the server's key with
//!   OpenSSL's `SSL_use_RSAPrivateKey_file`, so that key is RSA-2048;
//!   ring cannot generate RSA keys, so `openssl genpkey` makes it (the
//!   TLS stack needs OpenSSL anyway). `control/servercert.pem` (the
//!   certificate, then the key) is what the patch reads, from the qmail
//!   home (qmail-smtpd's cwd); `clientca.pem`, `clientcrl.pem`,
//!   `tlsclients` and `dh2048.pem` are optional and left out.
//! * The client trusts exactly that CA ([`TlsCerts::roots`]): a handshake
//!   with any other trust root fails (the verification is real).
//! * The tier is on when the built qmail-smtpd offers STARTTLS with a
//!   certificate in place ([`offers_starttls`], [`probe`]), not by a flag.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::sq::{
    ask_smtp_by, io, Duplex, Pipes, Reply, SmtpAnswer, SmtpSession, SqBuild, SqError, SqOptions,
    SENDER_SMTP,
};

/// The name the server certificate is for (and the client asks for).
pub const SERVER_NAME: &str = "difftest.invalid";

/// The reply the patch gives to STARTTLS before the handshake.
pub const READY: &str = "220 ready for tls\r\n";

fn tls(what: &str) -> impl FnOnce(rcgen::Error) -> SqError + '_ {
    move |e| SqError::Tls(format!("{what}: {e}"))
}

/// A CA and a server certificate signed by it, made at test time.
#[derive(Debug, Clone)]
pub struct TlsCerts {
    ca: CertificateDer<'static>,
    /// control/servercert.pem: the certificate, then its RSA key.
    servercert: String,
}

impl TlsCerts {
    /// Makes a fresh CA and a server certificate for [`SERVER_NAME`].
    pub fn generate() -> Result<Self, SqError> {
        let (ca, ca_key) = make_ca("qmail-difftest CA")?;
        let key_pem = rsa_key_pem()?;
        let key = rcgen::KeyPair::from_pem(&key_pem).map_err(tls("loading the RSA key"))?;
        let mut p = rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()])
            .map_err(tls("server certificate parameters"))?;
        p.distinguished_name
            .push(rcgen::DnType::CommonName, SERVER_NAME);
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = p
            .signed_by(&key, &ca, &ca_key)
            .map_err(tls("signing the server certificate"))?;
        Ok(TlsCerts {
            ca: ca.der().clone(),
            servercert: format!("{}{key_pem}", cert.pem()),
        })
    }

    /// A trust store with only this CA.
    pub fn roots(&self) -> RootCertStore {
        let mut r = RootCertStore::empty();
        // The CA was just made by rcgen: it parses.
        let _ = r.add(self.ca.clone());
        r
    }

    /// A trust store with a CA that did not sign the server certificate
    /// (for showing that the handshake fails).
    pub fn other_roots() -> Result<RootCertStore, SqError> {
        let (ca, _) = make_ca("some other CA")?;
        let mut r = RootCertStore::empty();
        r.add(ca.der().clone())
            .map_err(|e| SqError::Tls(format!("adding a CA: {e}")))?;
        Ok(r)
    }

    /// Writes `home/control/servercert.pem` (mode 0644: qmail-smtpd runs
    /// as qmaild), through a temporary name.
    pub fn install(&self, home: &Path) -> Result<(), SqError> {
        use std::os::unix::fs::PermissionsExt;
        let dir = home.join("control");
        let tmp = dir.join(".servercert.pem.tmp");
        let dst = dir.join("servercert.pem");
        let _ = std::fs::remove_file(&tmp);
        std::fs::write(&tmp, &self.servercert).map_err(io(format!("writing {}", tmp.display())))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))
            .map_err(io(format!("chmod {}", tmp.display())))?;
        std::fs::rename(&tmp, &dst).map_err(io(format!("renaming to {}", dst.display())))
    }
}

/// A self-signed CA certificate and its key (ECDSA P-256).
fn make_ca(name: &str) -> Result<(rcgen::Certificate, rcgen::KeyPair), SqError> {
    let key = rcgen::KeyPair::generate().map_err(tls("generating a CA key"))?;
    let mut p =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(tls("CA parameters"))?;
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let cert = p.self_signed(&key).map_err(tls("self-signing the CA"))?;
    Ok((cert, key))
}

/// A fresh RSA-2048 key in PKCS#8 PEM, from `openssl genpkey`.
fn rsa_key_pem() -> Result<String, SqError> {
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .map_err(io(
            "running openssl genpkey (the RSA key of servercert.pem)",
        ))?;
    let pem = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() || !pem.contains("-----BEGIN PRIVATE KEY-----") {
        return Err(SqError::Tls(format!(
            "openssl genpkey failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        )));
    }
    Ok(pem)
}

/// Whether an EHLO reply offers STARTTLS.
pub fn offers_starttls(ehlo: &Reply) -> bool {
    ehlo.text
        .lines()
        .any(|l| l.len() > 4 && l[4..].eq_ignore_ascii_case("STARTTLS"))
}

/// The TLS client side over the plain pipes: handshake to the end (so a
/// failed verification is an error here), trusting `roots`.
fn handshake(mut pipes: Pipes, roots: RootCertStore) -> Result<Box<dyn Duplex>, SqError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SqError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(SERVER_NAME).map_err(|e| SqError::Tls(e.to_string()))?;
    let mut conn =
        ClientConnection::new(Arc::new(cfg), name).map_err(|e| SqError::Tls(e.to_string()))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut pipes)
            .map_err(|e| SqError::Tls(format!("handshake with qmail-smtpd failed: {e}")))?;
    }
    Ok(Box::new(StreamOwned::new(conn, pipes)))
}

/// The replies of [`starttls`].
#[derive(Debug)]
pub struct Started {
    /// EHLO before STARTTLS (offers it).
    pub ehlo: Reply,
    /// The reply to STARTTLS ([`READY`]).
    pub ready: Reply,
    /// EHLO inside the TLS session.
    pub ehlo_tls: Reply,
}

/// EHLO, STARTTLS, the handshake (trusting `roots`) and EHLO again: from
/// here on the session talks TLS. An error when STARTTLS is not offered,
/// not answered with [`READY`], or the handshake fails.
pub fn starttls(s: &mut SmtpSession, roots: RootCertStore) -> Result<Started, SqError> {
    let ehlo = s.cmd(b"EHLO client.example")?;
    if !offers_starttls(&ehlo) {
        return Err(SqError::Protocol(format!(
            "qmail-smtpd does not offer STARTTLS: {:?}",
            ehlo.text
        )));
    }
    let ready = s.cmd(b"STARTTLS")?;
    if ready.text != READY {
        return Err(SqError::Protocol(format!(
            "STARTTLS answered {:?}",
            ready.text
        )));
    }
    s.layer(|pipes| handshake(pipes, roots))?;
    let ehlo_tls = s.cmd(b"EHLO client.example")?;
    Ok(Started {
        ehlo,
        ready,
        ehlo_tls,
    })
}

/// S's verdicts ([`super::sq::smtp_verdict`]) with every RCPT inside a
/// STARTTLS session (`home` must hold the certificate,
/// [`TlsCerts::install`]); `None` for addresses SMTP cannot carry.
pub fn ask_smtp_tls(
    sq: &SqBuild,
    home: &Path,
    opts: &SqOptions,
    certs: &TlsCerts,
    addrs: &[Vec<u8>],
) -> Result<Vec<Option<String>>, SqError> {
    ask_smtp_by(addrs, |batch| {
        let mut s = sq.smtp(home, opts)?;
        if s.greeting().code == 421 {
            let g = s.greeting().clone();
            let _ = s.finish();
            return Ok(SmtpAnswer::Greeting(g));
        }
        starttls(&mut s, certs.roots())?;
        let env = s.envelope(SENDER_SMTP, batch, None)?;
        s.finish()?;
        Ok(SmtpAnswer::Rcpts(env.rcpt))
    })
}

/// Whether the qmail-smtpd of `sq` offers STARTTLS once
/// `control/servercert.pem` exists (the patch only looks whether it is
/// there; a placeholder does): asked in a minimal qmail home made under
/// `dir`.
pub fn probe(sq: &SqBuild, dir: &Path) -> Result<bool, SqError> {
    let home = tempfile::Builder::new()
        .prefix("tls-probe")
        .tempdir_in(dir)
        .map_err(io(format!("creating a probe home in {}", dir.display())))?;
    let control = home.path().join("control");
    std::fs::create_dir_all(&control).map_err(io("creating the probe's control dir"))?;
    std::fs::write(control.join("me"), format!("{SERVER_NAME}\n"))
        .map_err(io("writing the probe's control/me"))?;
    std::fs::write(control.join("servercert.pem"), b"placeholder: not read\n")
        .map_err(io("writing the probe's control/servercert.pem"))?;
    let mut s = sq.smtp(home.path(), &SqOptions::default())?;
    let ehlo = s.cmd(b"EHLO client.example")?;
    s.finish()?;
    Ok(offers_starttls(&ehlo))
}
