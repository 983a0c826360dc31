//! Decoding images from files and uploads: size limits checked before decoding, EXIF orientation applied,
//! every pixel format converted to 8-bit RGB.
