//! MediaPipe FaceMesh: 468 landmarks on a face crop, and the eye aspect ratio used for blinks.
