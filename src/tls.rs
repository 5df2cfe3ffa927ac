//! What runonce's two TLS clients share (the fleet's database connection
//! and `--ping`): one crypto provider, *ring*, and the system's CA roots.
//! Nothing here runs unless a run connects somewhere.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;

/// The crypto provider of every TLS connection runonce makes.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The system's CA certificates (`/etc/ssl/certs` on Debian, or where
/// `SSL_CERT_FILE`/`SSL_CERT_DIR` point); an error if there are none.
pub fn system_roots() -> Result<Vec<CertificateDer<'static>>, String> {
    let found = rustls_native_certs::load_native_certs();
    if found.certs.is_empty() {
        let why = found.errors.first().map(|e| format!(": {e}")).unwrap_or_default();
        return Err(format!("no CA certificates in the system's store{why}"));
    }
    Ok(found.certs)
}
