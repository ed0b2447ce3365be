//! What an uploaded file really is, from its bytes (the client's content type is not trusted),
//! and which kinds of file may be what.

use crate::verification::FileKind;

/// The content types idshare accepts.
pub const JPEG: &str = "image/jpeg";
pub const PNG: &str = "image/png";
pub const PDF: &str = "application/pdf";

/// Sniffs the content type from the leading bytes; `None` for anything not accepted.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(JPEG)
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some(PNG)
    } else if bytes.starts_with(b"%PDF-") {
        Some(PDF)
    } else {
        None
    }
}

/// Whether a file of `content_type` may serve as `kind`: photos must be images, a proof of
/// address may also be a PDF.
pub fn allowed(kind: FileKind, content_type: &str) -> bool {
    match kind {
        FileKind::GovernmentIdFront | FileKind::GovernmentIdBack | FileKind::Selfie => {
            content_type == JPEG || content_type == PNG
        }
        FileKind::ProofOfAddress => {
            content_type == JPEG || content_type == PNG || content_type == PDF
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_from_bytes_not_names() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some(JPEG));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some(PNG));
        assert_eq!(sniff(b"%PDF-1.7\n"), Some(PDF));
        assert_eq!(sniff(b"MZ\x90\x00 this is an exe"), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"GIF89a"), None);
    }

    #[test]
    fn photos_must_be_images() {
        assert!(allowed(FileKind::Selfie, JPEG));
        assert!(!allowed(FileKind::Selfie, PDF));
        assert!(allowed(FileKind::ProofOfAddress, PDF));
    }
}
