//! Alignment: a similarity transform from the detector's keypoints onto dlib's 150x150 face chip.
