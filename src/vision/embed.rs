//! dlib ResNet (face_recognition_resnet_model_v1, from the face-api tfjs port): 150x150 chip -> 128-d embedding.
