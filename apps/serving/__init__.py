"""Serving app: TF Serving config and compose file for the exported SavedModel, and a REST/gRPC client."""
