//! MiniFASNet V2 + V1SE passive anti-spoofing: probability that a face is live, from 80x80 crops.
