"""CNN Studio in the browser: ONNX Runtime Web's files (`runtime`), the model files the Draw page's pad runs
(`live`) and the static share page (`static_page`). The browser code itself is static/cnn_studio/live.mjs."""
