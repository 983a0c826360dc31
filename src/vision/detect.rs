//! YuNet face detector: boxes, scores and 5 keypoints for every face, at any image size.
