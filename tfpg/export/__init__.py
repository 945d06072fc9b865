"""SavedModel export and loading, LiteRT and ONNX conversion."""
