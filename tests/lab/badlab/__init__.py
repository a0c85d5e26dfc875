"""The badgateway.k8s lab: an emulated Kubernetes API server in front of real processes."""
