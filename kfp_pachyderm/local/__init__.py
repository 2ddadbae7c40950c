"""The embedded local Pachyderm server: gRPC PFS API, S3 gateway, durable store."""
