"""A TensorFlow-Serving-compatible REST service for end-to-end task SavedModels.

`electra-tf serve MODEL_DIR` speaks TensorFlow Serving's REST API (same URLs and
JSON bodies), batches concurrent requests dynamically and exports Prometheus
metrics. The HTTP stack (FastAPI, uvicorn, prometheus-client) is the `serve`
extra: `pip install "electra-tf[serve]"`.
"""
