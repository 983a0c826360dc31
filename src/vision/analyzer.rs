//! [`FaceAnalyzer`]: all four networks on one image.

/// Runs detection, landmarks, alignment, embedding and anti-spoofing on an image.
pub struct FaceAnalyzer {}
