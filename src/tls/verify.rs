//! Client certificate verification that accepts X.509 v1 certificates, as Java does.
//!
//! rustls' webpki verifier refuses any certificate that is not version 3
//! (`UnsupportedCertVersion`), while Java's PKIX validation accepts v1 end-entity
//! certificates (pyOpenSSL and many test PKIs still issue them). A chain made only of v3
//! certificates goes to webpki unchanged; a chain with a v1 certificate is checked here:
//! each certificate valid now and signed by the next one (an intermediate the client
//! sent, or a trust anchor from the truststore), ending at a trust anchor. For such
//! chains the handshake signature is checked against the certificate's public key
//! directly, since webpki will not parse the certificate for that either.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use x509_parser::prelude::{FromDer, X509Certificate, X509Version};

/// How many certificates a v1 chain may have at most, end entity included.
const CHAIN_DEPTH_MAX: usize = 8;

/// webpki for v3 chains, the checks above for chains with a v1 certificate.
#[derive(Debug)]
pub struct ClientVerifier {
    /// The webpki verifier over the same trust anchors.
    pub webpki: Arc<dyn ClientCertVerifier>,
    /// The truststore's certificates (DER).
    pub anchors: Vec<CertificateDer<'static>>,
    /// Whether a client must present a certificate (`ssl.clientAuth=need`).
    pub mandatory: bool,
    /// The signature algorithms of the crypto provider.
    pub algorithms: WebPkiSupportedAlgorithms,
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, Error> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))
}

fn is_v3(der: &[u8]) -> bool {
    matches!(parse(der), Ok(c) if c.version() == X509Version::V3)
}

impl ClientVerifier {
    /// Checks a chain holding a v1 certificate (see the module documentation).
    fn verify_v1_chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), Error> {
        let now_s = now.as_secs() as i64;
        let mut current = parse(end_entity)?;
        for _ in 0..CHAIN_DEPTH_MAX {
            let validity = current.validity();
            if now_s < validity.not_before.timestamp() {
                return Err(Error::InvalidCertificate(CertificateError::NotValidYet));
            }
            if now_s > validity.not_after.timestamp() {
                return Err(Error::InvalidCertificate(CertificateError::Expired));
            }
            let signed_by = |issuer: &X509Certificate<'_>| {
                issuer.subject().as_raw() == current.issuer().as_raw()
                    && current.verify_signature(Some(issuer.public_key())).is_ok()
            };
            for anchor in &self.anchors {
                // A client certificate that is itself in the truststore is trusted.
                if anchor.as_ref() == current.as_raw() {
                    return Ok(());
                }
                if let Ok(a) = parse(anchor) {
                    if signed_by(&a) {
                        return Ok(());
                    }
                }
            }
            let next = intermediates
                .iter()
                .filter_map(|d| parse(d).ok())
                .find(|i| i.as_raw() != current.as_raw() && signed_by(i));
            match next {
                Some(i) => current = i,
                None => return Err(Error::InvalidCertificate(CertificateError::UnknownIssuer)),
            }
        }
        Err(Error::InvalidCertificate(CertificateError::UnknownIssuer))
    }

    /// The handshake signature of a v1 certificate's key: TLS 1.3 through the raw-key
    /// path of rustls; TLS 1.2 through ring with the scheme's algorithms.
    fn verify_v1_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
        tls13: bool,
    ) -> Result<HandshakeSignatureValid, Error> {
        let c = parse(cert)?;
        if tls13 {
            let spki = SubjectPublicKeyInfoDer::from(c.public_key().raw);
            return rustls::crypto::verify_tls13_signature_with_raw_key(
                message,
                &spki,
                dss,
                &self.algorithms,
            );
        }
        use ring::signature as sig;
        let algs: &[&dyn sig::VerificationAlgorithm] = match dss.scheme {
            SignatureScheme::RSA_PKCS1_SHA256 => &[&sig::RSA_PKCS1_2048_8192_SHA256],
            SignatureScheme::RSA_PKCS1_SHA384 => &[&sig::RSA_PKCS1_2048_8192_SHA384],
            SignatureScheme::RSA_PKCS1_SHA512 => &[&sig::RSA_PKCS1_2048_8192_SHA512],
            SignatureScheme::RSA_PSS_SHA256 => &[&sig::RSA_PSS_2048_8192_SHA256],
            SignatureScheme::RSA_PSS_SHA384 => &[&sig::RSA_PSS_2048_8192_SHA384],
            SignatureScheme::RSA_PSS_SHA512 => &[&sig::RSA_PSS_2048_8192_SHA512],
            SignatureScheme::ECDSA_NISTP256_SHA256 => {
                &[&sig::ECDSA_P256_SHA256_ASN1, &sig::ECDSA_P384_SHA256_ASN1]
            }
            SignatureScheme::ECDSA_NISTP384_SHA384 => {
                &[&sig::ECDSA_P384_SHA384_ASN1, &sig::ECDSA_P256_SHA384_ASN1]
            }
            SignatureScheme::ED25519 => &[&sig::ED25519],
            _ => {
                return Err(Error::PeerIncompatible(
                    rustls::PeerIncompatible::NoSignatureSchemesInCommon,
                ))
            }
        };
        let key = &c.public_key().subject_public_key.data;
        for alg in algs {
            if sig::UnparsedPublicKey::new(*alg, key)
                .verify(message, dss.signature())
                .is_ok()
            {
                return Ok(HandshakeSignatureValid::assertion());
            }
        }
        Err(Error::InvalidCertificate(CertificateError::BadSignature))
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        if is_v3(end_entity) && intermediates.iter().all(|i| is_v3(i)) {
            return self
                .webpki
                .verify_client_cert(end_entity, intermediates, now);
        }
        self.verify_v1_chain(end_entity, intermediates, now)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        if is_v3(cert) {
            return self.webpki.verify_tls12_signature(message, cert, dss);
        }
        self.verify_v1_signature(message, cert, dss, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        if is_v3(cert) {
            return self.webpki.verify_tls13_signature(message, cert, dss);
        }
        self.verify_v1_signature(message, cert, dss, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}
