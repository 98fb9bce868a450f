//! TCP endpoints with TLS, as the docker CLI's `--tls`/`--tlsverify` (`DOCKER_TLS_VERIFY`,
//! `DOCKER_CERT_PATH`): the daemon's certificate checked against `--tlscacert` (or not at all
//! with plain `--tls`), and a client certificate presented when given.

use crate::error::{Error, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::path::PathBuf;
use std::sync::Arc;

/// TLS settings for a `tcp://` daemon address.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Verify the daemon's certificate (`--tlsverify`); without it (`--tls`) any is accepted.
    pub verify: bool,
    /// CA certificates (PEM) that sign the daemon's certificate.
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) and key (PEM), presented when both are set.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

fn tls_err(context: impl Into<String>, msg: impl std::fmt::Display) -> Error {
    Error::Io {
        context: context.into(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, msg.to_string()),
    }
}

/// Accepts any server certificate (docker's `--tls` without `--tlsverify`).
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Build the rustls client configuration for `o`.
pub fn client_config(o: &TlsOptions) -> Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("TLS setup", e))?;
    let builder = if o.verify {
        let ca = o.ca.as_ref().ok_or_else(|| {
            tls_err(
                "TLS setup",
                "--tlsverify needs a CA certificate (--tlscacert or DOCKER_CERT_PATH/ca.pem)",
            )
        })?;
        let mut roots = rustls::RootCertStore::empty();
        let iter = CertificateDer::pem_file_iter(ca)
            .map_err(|e| tls_err(format!("reading {}", ca.display()), e))?;
        for c in iter {
            let c = c.map_err(|e| tls_err(format!("parsing {}", ca.display()), e))?;
            roots
                .add(c)
                .map_err(|e| tls_err(format!("loading {}", ca.display()), e))?;
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
    };
    let cfg = match (&o.cert, &o.key) {
        (Some(cert), Some(key)) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .map_err(|e| tls_err(format!("reading {}", cert.display()), e))?
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| tls_err(format!("parsing {}", cert.display()), e))?;
            let k = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| tls_err(format!("reading {}", key.display()), e))?;
            builder
                .with_client_auth_cert(certs, k)
                .map_err(|e| tls_err("loading the client certificate", e))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}
